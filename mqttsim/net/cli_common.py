"""Checks the network commands share, each said in one line: a port number, a PEM file.

argparse's ``type=int`` takes any integer; the socket layer then fails far from the option
that was wrong: ``-p 99999`` raises OverflowError in ``bind`` or wraps to another port, and
``connect`` answers "Connection refused". TCP ports are 16-bit (RFC 9293 3.1), so anything
outside 0..65535 is refused before a socket is made, naming the option.
"""

from __future__ import annotations

import ssl

MAX_PORT = 65535  # a 16-bit field in the TCP header (RFC 9293 3.1)


def port_problem(port: int | None, *, zero_allowed: bool) -> str | None:
    """Why ``port`` cannot be used (a sentence without a full stop), or None when it can
    (None itself means "the default"). A listener may ask for 0 (the kernel picks a free
    port); a client connects to a real port, 1 to 65535."""
    if port is None:
        return None
    low = 0 if zero_allowed else 1
    if low <= port <= MAX_PORT:
        return None
    extra = " (0 picks a free port)" if zero_allowed else ""
    return f"invalid port {port}: a TCP port is from {low} to {MAX_PORT}{extra}"


def pem_error(exc: Exception) -> str:
    """What went wrong loading a PEM file (--cafile, --cert, --key): the OS's words for a
    file that cannot be read, OpenSSL's reason for one that is not what it should be."""
    if isinstance(exc, ssl.SSLError):
        return f"OpenSSL: {exc.reason or exc}"
    return getattr(exc, "strerror", None) or str(exc)
