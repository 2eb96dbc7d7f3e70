"""Packets and events built by the fast constructors are ordinary frozen dataclass values."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol._frozen import frozen
from mqttsim.protocol.packets import Puback, Publish, Pubrel
from mqttsim.protocol.properties import Properties

PUBLISH = Publish("a/b", b"payload", 1, True, False, 7, Properties(content_type="text"))
CASES = [
    (Publish, ("a/b", b"payload", 1, True, False, 7, Properties(content_type="text"))),
    (Publish, ("a/b",)),  # every default
    (Puback, (9,)),
    (Pubrel, (9, 0x92)),
    (ev.MessageReceived, (1.5, "a/b", PUBLISH, "conn-1", "client")),
    (ev.MessageAcknowledged, (2.0, 3, 7, 1)),
    (ev.ConnectionClosed, (3.0, "client", "clean")),
]


@pytest.mark.parametrize("cls, args", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_new_and_constructor_make_the_same_value(cls, args):
    made, built = cls._new(*args), cls(*args)
    assert type(made) is cls and type(built) is cls
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert [getattr(made, f.name) for f in dataclasses.fields(cls)][:len(args)] == list(args)


@pytest.mark.parametrize("cls, args", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_values_stay_frozen_and_copyable(cls, args):
    value = cls._new(*args)
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(value, name)
    assert copy.copy(value) == value and pickle.loads(pickle.dumps(value)) == value
    same = dataclasses.replace(value)
    assert same == value and type(same) is cls


def test_keyword_arguments_and_defaults_match_the_dataclass():
    assert Publish._new("t", qos=2, packet_id=5) == Publish(topic="t", qos=2, packet_id=5)
    with pytest.raises(TypeError):
        Publish._new()  # topic has no default
    with pytest.raises(TypeError):
        Puback(1, 0, Properties(), "extra")


def test_a_subclass_with_its_own_slots_still_builds():
    class Tagged(Puback):
        __slots__ = ("tag",)

    value = Tagged(5, 0x10)
    assert type(value) is Tagged and (value.packet_id, value.reason_code) == (5, 0x10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.packet_id = 6


def test_a_field_init_cannot_skip_is_refused():
    with pytest.raises(TypeError, match="every field must be set by __init__"):
        @frozen
        class Odd:
            a: int
            b: int = dataclasses.field(default=0, init=False)
