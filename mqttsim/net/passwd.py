"""Password files in mosquitto_passwd's format, and ``mqttsim passwd`` to write them.

One user per line, ``user:$7$ITERATIONS$SALT$HASH``: PBKDF2-HMAC-SHA512 over the UTF-8
password with a 12-byte random salt, SALT and HASH in standard base64 (what mosquitto 2.0's
``mosquitto_passwd`` writes, 101 iterations by default). The older ``$6$SALT$HASH`` lines
(one SHA-512 over password + salt, mosquitto 1.x) are still accepted when reading, as
mosquitto does. Lines starting with ``#`` and lines without a colon are skipped, also as
mosquitto does; a line with a colon that cannot be decoded is an error naming the file and
line, because a silently dropped user is a confusing way to find a typo.

Keeping the format means one file serves both brokers: a file from Debian's mosquitto_passwd
works here and a file from ``mqttsim passwd`` works in a real mosquitto (tests prove both).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import hashlib
import hmac
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..protocol.auth import ACCEPTED, BAD_CREDENTIALS, NOT_AUTHORIZED

PBKDF2_SHA512 = "7"
SHA512 = "6"
#: mosquitto 2.0's mosquitto_passwd default (its -I option changes it).
DEFAULT_ITERATIONS = 101
SALT_BYTES = 12  # mosquitto refuses salts of any other length
HASH_BYTES = 64  # SHA-512


class PasswordFileError(ValueError):
    """A password file (or a hash in it) that cannot be used; says where."""


def hash_password(password: str | bytes, salt: bytes | None = None,
                  iterations: int = DEFAULT_ITERATIONS) -> str:
    """``$7$iterations$salt$hash`` for ``password`` (a fresh random salt unless given)."""
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, not {iterations}")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise ValueError(f"mosquitto only reads {SALT_BYTES}-byte salts, not {len(salt)}")
    secret = password.encode("utf-8") if isinstance(password, str) else password
    digest = hashlib.pbkdf2_hmac("sha512", secret, salt, iterations)
    return (f"${PBKDF2_SHA512}${iterations}${base64.b64encode(salt).decode('ascii')}"
            f"${base64.b64encode(digest).decode('ascii')}")


@dataclass(frozen=True)
class PasswordHash:
    """A decoded hash: kind "6" or "7", iterations (1 for "6"), salt and digest."""

    kind: str
    iterations: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, encoded: str) -> PasswordHash:
        """Decode ``$7$...`` or ``$6$...``; ValueError says what is wrong."""
        parts = encoded.strip().split("$")
        if len(parts) < 2 or parts[0] != "" or parts[1] not in (PBKDF2_SHA512, SHA512):
            raise ValueError("not a mosquitto hash ($7$... or $6$...); plain-text passwords "
                             "are not accepted")
        kind = parts[1]
        if kind == PBKDF2_SHA512:
            if len(parts) != 5:
                raise ValueError("a $7$ hash has the form $7$ITERATIONS$SALT$HASH")
            try:
                iterations = int(parts[2])
            except ValueError:
                raise ValueError(f"iterations {parts[2]!r} is not an integer") from None
            if iterations < 1:
                raise ValueError(f"iterations must be at least 1, not {iterations}")
            salt_text, digest_text = parts[3], parts[4]
        else:
            if len(parts) != 4:
                raise ValueError("a $6$ hash has the form $6$SALT$HASH")
            iterations, salt_text, digest_text = 1, parts[2], parts[3]
        try:
            salt = base64.b64decode(salt_text, validate=True)
            digest = base64.b64decode(digest_text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("salt or hash is not valid base64") from None
        if len(salt) != SALT_BYTES:
            raise ValueError(f"the salt is {len(salt)} bytes; mosquitto uses {SALT_BYTES}")
        if len(digest) != HASH_BYTES:
            raise ValueError(f"the hash is {len(digest)} bytes; SHA-512 gives {HASH_BYTES}")
        return cls(kind, iterations, salt, digest)

    def matches(self, password: bytes) -> bool:
        if self.kind == PBKDF2_SHA512:
            computed = hashlib.pbkdf2_hmac("sha512", password, self.salt, self.iterations)
        else:
            computed = hashlib.sha512(password + self.salt).digest()
        return hmac.compare_digest(computed, self.digest)  # no timing hint about the prefix


def verify(password: str | bytes, encoded: str) -> bool:
    """Does ``password`` match the mosquitto hash ``encoded``? False for a malformed hash."""
    secret = password.encode("utf-8") if isinstance(password, str) else password
    try:
        return PasswordHash.parse(encoded).matches(secret)
    except ValueError:
        return False


@dataclass(frozen=True)
class PasswordFile:
    """An Authenticator (protocol/auth.py) backed by a mosquitto password file.

    Answers as the engine expects: 0 accepted; 4 bad user name or password (unknown user,
    missing or wrong password); 5 not authorized for a client without a user name when
    ``anonymous`` (mosquitto's ``allow_anonymous``) is false.
    """

    users: Mapping[str, PasswordHash] = field(default_factory=dict)
    anonymous: bool = False

    @classmethod
    def load(cls, path: str | os.PathLike, anonymous: bool = False) -> PasswordFile:
        """Read and decode every line now, so a bad file fails at start-up, not at CONNECT."""
        users: dict[str, PasswordHash] = {}
        text = Path(path).read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if line.startswith("#") or ":" not in line:
                continue
            user, _, encoded = line.partition(":")
            user = user.strip()
            if not user:
                raise PasswordFileError(f"{path}:{number}: empty user name")
            try:
                users[user] = PasswordHash.parse(encoded)
            except ValueError as exc:
                raise PasswordFileError(f"{path}:{number}: user {user!r}: {exc}") from None
        return cls(users, anonymous)

    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> int:
        if username is None:
            return ACCEPTED if self.anonymous else NOT_AUTHORIZED
        known = self.users.get(username)
        if known is None or password is None or not known.matches(password):
            return BAD_CREDENTIALS
        return ACCEPTED


def set_password(path: str | os.PathLike, user: str, password: str, create: bool = False,
                 iterations: int = DEFAULT_ITERATIONS) -> None:
    """Add or replace ``user`` in the file (``create``: start a new file), keeping the rest."""
    check_user_name(user)
    lines: list[str] = []
    target = Path(path)
    if not create:
        if not target.exists():
            raise PasswordFileError(f"{path}: no such file (use -c to create it)")
        lines = target.read_text(encoding="utf-8").splitlines()
    entry = f"{user}:{hash_password(password, iterations=iterations)}"
    for index, line in enumerate(lines):
        if not line.startswith("#") and line.partition(":")[0].strip() == user and ":" in line:
            lines[index] = entry
            break
    else:
        lines.append(entry)
    _write(target, lines)


def delete_user(path: str | os.PathLike, user: str) -> None:
    """Remove ``user`` from the file (mosquitto_passwd -D)."""
    target = Path(path)
    lines = target.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines
            if line.startswith("#") or ":" not in line or line.partition(":")[0].strip() != user]
    if len(kept) == len(lines):
        raise PasswordFileError(f"{path}: user {user!r} not in the file")
    _write(target, kept)


def check_user_name(user: str) -> None:
    """A colon would end the user name early when the file is read back."""
    if not user or ":" in user:
        raise PasswordFileError(f"invalid user name {user!r}: it must be non-empty and "
                                "contain no ':'")


def _write(target: Path, lines: list[str]) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.chmod(temporary, 0o600)  # hashes are still worth keeping private
    os.replace(temporary, target)


# -- mqttsim passwd -------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options as mosquitto_passwd's: ``[-c | -D] FILE USER`` or ``-b FILE USER PASSWORD``."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-c", dest="create", action="store_true",
                      help="create a new file (overwriting an existing one)")
    mode.add_argument("-D", dest="delete", action="store_true", help="delete USER")
    parser.add_argument("-b", dest="batch", action="store_true",
                        help="batch mode: take the password from the command line")
    parser.add_argument("-I", dest="iterations", type=int, default=DEFAULT_ITERATIONS,
                        metavar="ITERATIONS",
                        help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS}, as mosquitto)")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("user", metavar="USER")
    parser.add_argument("password", metavar="PASSWORD", nargs="?",
                        help="only with -b")


def run(args: argparse.Namespace) -> int:
    """Update the file; 0 on success, 1 with a message on stderr otherwise."""
    try:
        if args.delete:
            delete_user(args.file, args.user)
            return 0
        if args.batch != (args.password is not None):
            print("mqttsim passwd: give PASSWORD exactly when -b is used", file=sys.stderr)
            return 1
        check_user_name(args.user)
        if args.iterations < 1:
            print("mqttsim passwd: -I must be at least 1", file=sys.stderr)
            return 1
        password = args.password
        if password is None:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Reenter password: ") != password:
                print("mqttsim passwd: passwords do not match", file=sys.stderr)
                return 1
        set_password(args.file, args.user, password, create=args.create,
                     iterations=args.iterations)
    except (OSError, PasswordFileError) as exc:
        print(f"mqttsim passwd: {exc}", file=sys.stderr)
        return 1
    return 0
