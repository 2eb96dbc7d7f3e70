"""The TCP sender's congestion states and their table (mqttsim/netmodel/tcp_state.py)."""

from __future__ import annotations

import pytest

from mqttsim.netmodel.tcp_state import CA_TRANSITIONS, LOSS, OPEN, RECOVERY, CaState, ca_advance


def test_each_congestion_state_has_its_linux_ways_out():
    assert set(CA_TRANSITIONS) == set(CaState)
    assert CA_TRANSITIONS[OPEN] == {RECOVERY, LOSS}  # tcp_enter_recovery, tcp_enter_loss
    assert OPEN in CA_TRANSITIONS[RECOVERY] and OPEN in CA_TRANSITIONS[LOSS]  # recovered
    assert LOSS in CA_TRANSITIONS[LOSS]  # another RTO while in Loss
    assert RECOVERY not in CA_TRANSITIONS[LOSS]  # Linux leaves Loss only for Open


def test_a_move_the_table_lacks_is_a_named_error():
    assert ca_advance(OPEN, RECOVERY) is RECOVERY
    with pytest.raises(RuntimeError, match="from loss to recovery"):
        ca_advance(LOSS, RECOVERY)
    with pytest.raises(RuntimeError, match="from open to open"):
        ca_advance(OPEN, OPEN)
