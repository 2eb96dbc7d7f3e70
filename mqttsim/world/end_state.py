"""The life of a connection end, as every backend's ends report it to the hosts.

A host asks one thing of an end's state: may data flow now (``ESTABLISHED``)? The rest says
how the end got there and that nothing comes back from ``DEAD``. The states are those of
RFC 9293's connection diagram (section 3.3.2) that an MQTT client or broker can tell apart:
the closing states collapse into ``DEAD``, because once either side has closed, reset or
given up, the MQTT session over that connection is over (the engines learn it through
``App.on_closed``). The simulated transport (``world/transport.py``), the bridge's
in-broker leg (``world/bridges.py``) and the real sockets of the sockets and kernel backends
(``backends/sockets/runner.py``) all move through ``TRANSITIONS`` with ``advance``.
"""

from __future__ import annotations

from enum import Enum


class EndState(Enum):
    CONNECTING = "connecting"  # the client's SYN is out; a datagram end: nothing heard yet
    SYN_RECEIVED = "syn_received"  # the broker's end: SYN-ACK sent, the ACK not yet in
    ESTABLISHED = "established"  # data flows both ways
    DEAD = "dead"  # closed, reset, refused or given up: nothing more in or out


CONNECTING, SYN_RECEIVED, ESTABLISHED, DEAD = EndState  # the hot paths compare with ``is``

#: Where each state may go next. An end closed by its own application goes to DEAD from
#: any live state; a handshake ends in ESTABLISHED or, refused or timed out, in DEAD.
TRANSITIONS: dict[EndState, frozenset[EndState]] = {
    CONNECTING: frozenset({ESTABLISHED, DEAD}),
    SYN_RECEIVED: frozenset({ESTABLISHED, DEAD}),
    ESTABLISHED: frozenset({DEAD}),
    DEAD: frozenset(),
}


class EndStateError(RuntimeError):
    """A move the connection diagram has no arrow for: a bug in a backend, never input."""


def advance(current: EndState, new: EndState) -> EndState:
    """``new``, if an end in ``current`` may move there (else ``EndStateError``)."""
    if new not in TRANSITIONS[current]:
        raise EndStateError(f"a connection end cannot go from {current.value} to {new.value}")
    return new
