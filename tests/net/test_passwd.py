"""Password files: our hashes against Debian's mosquitto_passwd and a real mosquitto broker."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from mqttsim.cli import main
from mqttsim.net.passwd import (PasswordFile, PasswordFileError, PasswordHash, hash_password,
                                verify)
from mqttsim.protocol.auth import ACCEPTED, BAD_CREDENTIALS, NOT_AUTHORIZED
from support.mosquitto import mosquitto_broker, require_mosquitto


def mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd")
    if found is None:
        pytest.skip("mosquitto_passwd not installed; apt-get install -y mosquitto")
    return found


def test_hash_has_mosquitto_2_layout() -> None:
    encoded = hash_password("secret")
    empty, kind, iterations, salt, digest = encoded.split("$")
    assert (empty, kind, iterations) == ("", "7", "101")
    assert len(base64.b64decode(salt)) == 12 and len(base64.b64decode(digest)) == 64
    assert encoded != hash_password("secret")  # a fresh salt each time


def test_hash_is_pbkdf2_sha512_over_the_salt() -> None:
    salt = bytes(range(12))
    encoded = hash_password("pässword", salt=salt, iterations=5)
    expected = hashlib.pbkdf2_hmac("sha512", "pässword".encode(), salt, 5)
    assert encoded == (f"$7$5${base64.b64encode(salt).decode()}"
                       f"${base64.b64encode(expected).decode()}")


def test_verify_right_and_wrong_password() -> None:
    encoded = hash_password("secret")
    assert verify("secret", encoded)
    assert verify(b"secret", encoded)
    assert not verify("Secret", encoded)
    assert not verify("secret", "plain-text")
    assert not verify("secret", encoded[:-8])


def test_legacy_sha512_hash_is_read() -> None:
    salt = b"0123456789ab"
    digest = hashlib.sha512(b"old" + salt).digest()
    encoded = f"$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert PasswordHash.parse(encoded).kind == "6"
    assert verify("old", encoded) and not verify("new", encoded)


def test_file_from_debian_mosquitto_passwd_is_accepted(tmp_path: Path) -> None:
    tool = mosquitto_passwd()
    path = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(path), "alice", "s3cret"], check=True, timeout=10)
    subprocess.run([tool, "-b", str(path), "bob", "hunter2"], check=True, timeout=10)
    users = PasswordFile.load(path)
    assert set(users.users) == {"alice", "bob"}
    assert users.authenticate("c", "alice", b"s3cret") == ACCEPTED
    assert users.authenticate("c", "bob", b"hunter2") == ACCEPTED
    assert users.authenticate("c", "alice", b"hunter2") == BAD_CREDENTIALS


def test_authenticator_answers() -> None:
    closed = PasswordFile({"alice": PasswordHash.parse(hash_password("pw"))})
    assert closed.authenticate("c", "alice", b"pw") == ACCEPTED
    assert closed.authenticate("c", "alice", b"nope") == BAD_CREDENTIALS
    assert closed.authenticate("c", "alice", None) == BAD_CREDENTIALS
    assert closed.authenticate("c", "mallory", b"pw") == BAD_CREDENTIALS
    assert closed.authenticate("c", None, None) == NOT_AUTHORIZED
    open_ = PasswordFile(closed.users, anonymous=True)
    assert open_.authenticate("c", None, None) == ACCEPTED
    assert open_.authenticate("c", "alice", b"nope") == BAD_CREDENTIALS  # still checked


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(f"# users\nalice:{hash_password('a')}\n\nbob:$7$101$bad$worse\n")
    with pytest.raises(PasswordFileError, match=r"pw:4: user 'bob': salt or hash is not"):
        PasswordFile.load(path)
    path.write_text("carol:plaintext\n")
    with pytest.raises(PasswordFileError, match=r"pw:1: user 'carol': not a mosquitto hash"):
        PasswordFile.load(path)


def test_cli_batch_create_update_delete(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    assert main(["passwd", "-c", "-b", str(path), "alice", "one"]) == 0
    assert main(["passwd", "-b", str(path), "bob", "two"]) == 0
    assert main(["passwd", "-b", str(path), "alice", "three"]) == 0  # replaces alice
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["alice", "bob"]
    users = PasswordFile.load(path)
    assert users.authenticate("c", "alice", b"three") == ACCEPTED
    assert users.authenticate("c", "alice", b"one") == BAD_CREDENTIALS
    assert main(["passwd", "-D", str(path), "bob"]) == 0
    assert set(PasswordFile.load(path).users) == {"alice"}
    assert path.stat().st_mode & 0o077 == 0


def test_cli_refuses_missing_file_and_bad_user(tmp_path: Path, capsys) -> None:
    path = tmp_path / "pw"
    assert main(["passwd", "-b", str(path), "alice", "x"]) == 1
    assert "no such file (use -c" in capsys.readouterr().err
    assert main(["passwd", "-c", "-b", str(path), "a:b", "x"]) == 1
    assert "invalid user name" in capsys.readouterr().err
    assert not path.exists()


def test_cli_prompts_twice(tmp_path: Path, monkeypatch, capsys) -> None:
    path = tmp_path / "pw"
    answers = iter(["typed", "typed", "first", "second"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["passwd", "-c", str(path), "alice"]) == 0
    assert PasswordFile.load(path).authenticate("c", "alice", b"typed") == ACCEPTED
    assert main(["passwd", str(path), "alice"]) == 1
    assert "do not match" in capsys.readouterr().err
    assert PasswordFile.load(path).authenticate("c", "alice", b"typed") == ACCEPTED


@pytest.mark.timeout(60)
def test_file_made_by_us_works_in_real_mosquitto(tmp_path: Path) -> None:
    require_mosquitto("mosquitto_pub")
    path = tmp_path / "pw"
    assert main(["passwd", "-c", "-b", str(path), "alice", "s3cret"]) == 0
    extra = f"password_file {path}\nallow_anonymous false\n"
    with mosquitto_broker(tmp_path / "broker", extra) as broker:
        def publish(*credentials: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port),
                                   "-t", "t", "-m", "m", *credentials],
                                  capture_output=True, text=True, timeout=10)

        good = publish("-u", "alice", "-P", "s3cret")
        assert good.returncode == 0, good.stderr + broker.log()
        wrong = publish("-u", "alice", "-P", "guess")
        assert wrong.returncode != 0
        assert "not authorised" in wrong.stderr or "bad user name or password" in wrong.stderr
        anonymous = publish()
        assert anonymous.returncode != 0 and "not authorised" in anonymous.stderr
