"""Packets and events are values: equal by content, hashable, copyable, picklable; frozen
except the per-message ones, which are plain slotted dataclasses for speed (packets.py)."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.packets import (Connect, Puback, Pubcomp, Publish, Pubrec, Pubrel,
                                      Subscription, Will)
from mqttsim.protocol.properties import NO_PROPERTIES, Properties

PUBLISH = Publish("a/b", b"payload", 1, True, False, 7, Properties(content_type="text"))
CASES = [
    (Publish, ("a/b", b"payload", 1, True, False, 7, Properties(content_type="text"))),
    (Publish, ("a/b",)),  # every default
    (Puback, (9,)),
    (Pubrel, (9, 0x92)),
    (Connect, ("id", True, 60)),
    (ev.MessageReceived, (1.5, "a/b", PUBLISH, "conn-1", "client")),
    (ev.MessageAcknowledged, (2.0, 3, 7, 1)),
    (ev.ConnectionClosed, (3.0, "client", "clean")),
]
PER_MESSAGE = (Publish, Puback, Pubrec, Pubrel, Pubcomp, ev.PacketSent, ev.PacketReceived,
               ev.MessageReceived, ev.MessageAcknowledged)


@pytest.mark.parametrize("cls, args", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_values_are_equal_by_content_hashable_and_copyable(cls, args):
    value, twin = cls(*args), cls(*args)
    assert value == twin and hash(value) == hash(twin) and repr(value) == repr(twin)
    assert [getattr(value, f.name) for f in dataclasses.fields(cls)][:len(args)] == list(args)
    assert copy.copy(value) == value and pickle.loads(pickle.dumps(value)) == value
    same = dataclasses.replace(value)
    assert same == value and type(same) is cls
    assert len({value, twin}) == 1
    assert not hasattr(value, "__dict__")  # slotted: no per-instance dict


@pytest.mark.parametrize("cls", [Connect, Subscription, Will, Properties, ev.ConnectionClosed,
                                 ev.Connected, ev.MessageDropped])
def test_values_built_once_per_connection_or_subscription_are_frozen(cls):
    value = {Connect: Connect("id"), Subscription: Subscription("t"), Will: Will("t", b""),
             Properties: NO_PROPERTIES, ev.Connected: ev.Connected(1.0, "c", 0, False),
             ev.ConnectionClosed: ev.ConnectionClosed(3.0, "client", "clean"),
             ev.MessageDropped: ev.MessageDropped(1.0, "c", "t", 0, "queue_full")}[cls]
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, None)


@pytest.mark.parametrize("cls", PER_MESSAGE, ids=lambda c: c.__name__)
def test_per_message_values_are_not_frozen_but_still_hash_by_content(cls):
    params = cls.__dataclass_params__
    assert not params.frozen and params.unsafe_hash  # the measured choice in packets.py
