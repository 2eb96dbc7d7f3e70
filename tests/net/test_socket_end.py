"""How a real socket ended, named as the simulated transport names it (errno, read as Linux
sets it: tcp(7), ETIMEDOUT when "the retransmission timer expired" or the SYN retries ran out)."""

from __future__ import annotations

import errno

import pytest

from mqttsim.net.server import socket_end
from mqttsim.world.hosts import TRANSPORT_REASONS


@pytest.mark.parametrize(("exc", "how"), [
    (None, "eof"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "reset"),
    (BrokenPipeError(errno.EPIPE, "Broken pipe"), "reset"),
    (TimeoutError(errno.ETIMEDOUT, "Connection timed out"), "tcp_timeout"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "refused"),
])
def test_errno_names_the_end_as_the_model_does(exc, how) -> None:
    assert socket_end(exc) == how
    assert how in TRANSPORT_REASONS  # a word the tables already use
