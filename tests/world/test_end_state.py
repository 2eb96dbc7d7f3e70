"""A connection end's life (mqttsim/world/end_state.py): the table, and the moves the
simulated transport really makes through it."""

from __future__ import annotations

import pytest

import mqttsim.world.transport as transport_module
from mqttsim.scenario import Scenario, run
from mqttsim.world.end_state import (CONNECTING, DEAD, ESTABLISHED, SYN_RECEIVED,
                                     TRANSITIONS, EndState, EndStateError, advance)


def test_every_live_state_can_end_and_nothing_comes_back_from_dead():
    assert set(TRANSITIONS) == set(EndState)
    assert TRANSITIONS[DEAD] == frozenset()
    for state in (CONNECTING, SYN_RECEIVED, ESTABLISHED):
        assert DEAD in TRANSITIONS[state]
    assert all(CONNECTING not in targets and SYN_RECEIVED not in targets
               for targets in TRANSITIONS.values())  # a handshake is never entered again


def test_a_move_the_diagram_lacks_is_a_named_error():
    assert advance(CONNECTING, ESTABLISHED) is ESTABLISHED
    with pytest.raises(EndStateError, match="from dead to established"):
        advance(DEAD, ESTABLISHED)
    with pytest.raises(EndStateError, match="from established to established"):
        advance(ESTABLISHED, ESTABLISHED)


def _moves_of(monkeypatch: pytest.MonkeyPatch, scenario: dict) -> set[tuple[str, str]]:
    """The (from, to) moves the simulated transport's ends make in ``scenario``."""
    moves: set[tuple[str, str]] = set()

    def recording_advance(current: EndState, new: EndState) -> EndState:
        moves.add((current.value, new.value))
        return advance(current, new)

    monkeypatch.setattr(transport_module, "advance", recording_advance)
    run(Scenario.from_dict({"name": "ends", **scenario}), seed=1)
    return moves


def test_tcp_ends_move_through_the_handshake_and_every_way_out(monkeypatch):
    """A client crash (RST), a broker down (refused SYNs) and a clean close, over TCP."""
    clients = [{"name": "sub", "subscribe": [{"topic": "t", "qos": 1}]},
               {"name": "device", "crashes": [{"at": 3.0, "down": 1.0}],
                "publish": {"topic": "t", "qos": 1, "count": 20, "interval": 0.5,
                            "start": 0.5}},
               {"name": "leaver", "disconnect_at": 2.0}]
    moves = _moves_of(monkeypatch, {
        "duration": 12, "clients": clients, "link": {"latency": 0.01},
        "broker": {"restarts": [{"at": 6.0, "down": 2.0}]}})
    assert moves == {("connecting", "established"),  # the client's SYN-ACK arrived
                     ("syn_received", "established"),  # the broker's: the ACK or data did
                     ("established", "dead"),  # crash, reset, close
                     ("connecting", "dead")}  # refused while the broker was down


def test_a_datagram_end_is_up_at_once_and_the_broker_learns_of_it_from_its_first_datagram(
        monkeypatch):
    moves = _moves_of(monkeypatch, {
        "duration": 3, "transport": "datagram", "link": {"latency": 0.01},
        "clients": [{"name": "sub", "subscribe": [{"topic": "t", "qos": 0}]}]})
    assert moves == {("connecting", "established")}
