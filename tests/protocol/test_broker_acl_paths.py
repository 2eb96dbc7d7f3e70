"""The ACL holds on every path a message takes: live, retained, will, queued and in flight.

Issue 13's setup, at engine level: ``allow_anonymous false``, users admin/alice/bob, and the
ACL below (mosquitto's acl_file syntax, read by mqttsim.net.acl). Each finding of the issue
is a test that failed before the fix: a retained message sent on SUBSCRIBE skipped the read
check, a will skipped the write check, and a persistent session (with its queue) could be
resumed by another user. Shared subscriptions are checked on their filter part, and
``%c``/``%u`` rules cannot be widened by a client id or user name holding a wildcard.
tests/net/test_server_acl.py plays the same stories on real sockets, beside mosquitto.
"""

from __future__ import annotations

import pytest

from mqttsim.net.acl import AclFile
from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import StaticUsers, TopicRules
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.packets import (Connect, Disconnect, Puback, Publish, Subscribe,
                                      Subscription, Will)
from mqttsim.protocol.properties import Properties

from support.peer import Peer, online, publishes
from support.classroom_acl import ACL, PASSWORDS



def broker(authz=None) -> BrokerEngine:
    return BrokerEngine(auth=StaticUsers(PASSWORDS), authz=authz or AclFile.parse(ACL))


def login(b: BrokerEngine, client_id: str, user: str, version: int = 4, **fields) -> Peer:
    return online(b, client_id, version=version, username=user,
                  password=PASSWORDS[user].encode(), **fields)


def subscribe(peer: Peer, *filters: str, qos: int = 1) -> list:
    """SUBSCRIBE; returns (granted codes, packets that followed the SUBACK)."""
    reply = peer.send(Subscribe(1, tuple(Subscription(f, qos) for f in filters)))
    return list(reply[0].reason_codes), reply[1:]


# -- 1. retained messages pass the read check, per subscriber and per topic ---------------

@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("topic_filter", ["public/#", "public/+/ret", "public/+/+"])
def test_retained_messages_sent_on_subscribe_pass_the_read_check(topic_filter, version):
    b = broker()
    admin = login(b, "admin", "admin")
    admin.send(Publish("public/secret/ret", b"SECRET", 1, retain=True, packet_id=1),
               Publish("public/news/ret", b"NEWS", 1, retain=True, packet_id=2))
    alice = login(b, "alice", "alice", version)
    codes, after = subscribe(alice, topic_filter)
    assert codes == [1]  # the filter is partly readable: granted, filtered per message
    assert [(p.topic, p.payload) for p in publishes(after)] == [("public/news/ret", b"NEWS")]
    # admin may read everything: the same subscription gets both, so the check is per user
    admin_sub = login(b, "admin-sub", "admin", version)
    _, after = subscribe(admin_sub, topic_filter)
    assert sorted(p.topic for p in publishes(after)) == ["public/news/ret", "public/secret/ret"]
    # and live messages on the secret topic are withheld from alice as before
    admin.send(Publish("public/secret/ret", b"LIVE", 0))
    assert publishes(alice.read()) == []


# -- 2. a will is a publish by its client: write check at CONNECT and when published ------

@pytest.mark.parametrize("version, code", [(3, 0x05), (4, 0x05), (5, 0x87)])
def test_will_on_a_topic_the_user_may_not_write_is_refused_at_connect(version, code):
    b = broker()
    bob = login(b, "bob", "bob")
    subscribe(bob, "bob/#")
    alice = Peer(b, version=version)
    reply = alice.send(Connect("alice", username="alice",
                               password=b"alice-pw",
                               will=Will("bob/cmd", b"ALICE-WILL", 1, True)))
    assert reply[0].reason_code == code and alice.closed
    refused = [e for e in alice.events if isinstance(e, ev.ConnectionRefused)]
    assert refused and refused[0].reason_code == code
    alice.lose()
    assert publishes(bob.read()) == []
    assert list(b.retained.match_filter("#")) == []
    # the same client with a will on its own topic is welcome
    login(b, "alice", "alice", version, will=Will("alice/status", b"gone", 1, False))


class Switchable:
    """An authorizer whose answer for one (user, topic) changes: an ACL reloaded between
    CONNECT and the will's publication."""

    def __init__(self, rules: TopicRules):
        self.rules, self.revoked = rules, set()

    def authorize(self, client_id, username, topic, access):
        if (username, topic) in self.revoked and access == "write":
            return False
        return self.rules.authorize(client_id, username, topic, access)


@pytest.mark.parametrize("delay", [0, 5])
def test_will_is_checked_again_when_it_is_published(delay):
    authz = Switchable(TopicRules({"alice": [("alice/#", "readwrite")],
                                   "admin": [("#", "readwrite")]}))
    b = broker(authz)
    watcher = login(b, "watcher", "admin")
    subscribe(watcher, "alice/#")
    alice = login(b, "alice", "alice", 5,
                  session_expiry_interval=60,
                  will=Will("alice/status", b"gone", 1, True,
                            Properties(will_delay_interval=delay or None)))
    authz.revoked.add(("alice", "alice/status"))
    alice.lose(now=1.0)
    events = alice.events + b.on_timer(1.0 + delay)
    assert publishes(watcher.read()) == []
    assert list(b.retained.match_filter("#")) == []
    assert not any(isinstance(e, ev.WillPublished) for e in events)
    dropped = [e for e in events if isinstance(e, ev.MessageDropped)]
    assert [(e.topic, e.reason) for e in dropped] == [("alice/status", "not_authorized")]


# -- 3. a persistent session belongs to the user who made it -------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_another_user_resuming_a_session_gets_a_fresh_one_with_nothing_queued(version):
    b = broker()
    fields = ({"clean_start": False} if version == 4 else
              {"clean_start": False, "session_expiry_interval": 600})
    alice = login(b, "alice-persist", "alice", version, **fields)
    subscribe(alice, "alice/#")
    alice.send(Disconnect())
    admin = login(b, "admin", "admin")
    admin.send(Publish("alice/private", b"ALICE-ONLY", 1, packet_id=1))
    bob = login(b, "alice-persist", "bob", version, **fields)
    assert bob.connack.session_present is False
    assert publishes(bob.after_connack) == []
    dropped = [e for e in bob.events if isinstance(e, ev.MessageDropped)]
    assert [(e.topic, e.reason) for e in dropped] == [("alice/private", "session_owner_changed")]
    # nothing of alice's stays: not her subscription either
    admin.send(Publish("alice/private", b"LATER", 1, packet_id=2))
    assert publishes(bob.read()) == []
    assert b.sessions["alice-persist"].subscriptions == {}


def test_in_flight_messages_do_not_follow_the_session_to_another_user():
    b = broker()
    alice = login(b, "alice-persist", "alice", clean_start=False)
    subscribe(alice, "alice/#")
    admin = login(b, "admin", "admin")
    admin.send(Publish("alice/private", b"ALICE-ONLY", 1, packet_id=1))
    (sent,) = publishes(alice.read())  # in flight, never acknowledged
    alice.lose()
    bob = login(b, "alice-persist", "bob", clean_start=False)
    assert bob.connack.session_present is False and publishes(bob.after_connack) == []
    bob.send(Puback(sent.packet_id))  # an ack for alice's id does not reach anything
    # alice's own resumption, same user, still gets her resends
    alice = login(b, "alice-persist", "alice", clean_start=False)
    assert alice.connack.session_present is False  # bob's session was the last one


def test_queued_and_in_flight_messages_are_checked_again_on_resume():
    """Same user, but the ACL changed while the session was away (a restart with a new
    acl_file): what is no longer readable is dropped, reported, never sent."""
    authz = Switchable(TopicRules({"alice": [("alice/#", "readwrite")],
                                   "admin": [("#", "readwrite")]}))
    reads_revoked = set()
    plain = authz.authorize
    authz.authorize = lambda c, u, t, a: (False if (u, t) in reads_revoked and a == "read"
                                          else plain(c, u, t, a))
    b = broker(authz)
    alice = login(b, "alice-persist", "alice", clean_start=False)
    subscribe(alice, "alice/#")
    admin = login(b, "admin", "admin")
    admin.send(Publish("alice/a", b"1", 1, packet_id=1))  # in flight, unacknowledged
    alice.lose()
    admin.send(Publish("alice/b", b"2", 1, packet_id=2),  # queued while offline
               Publish("alice/c", b"3", 1, packet_id=3))
    reads_revoked.update({("alice", "alice/a"), ("alice", "alice/b")})
    again = login(b, "alice-persist", "alice", clean_start=False)
    assert again.connack.session_present is True
    assert [p.topic for p in publishes(again.after_connack)] == ["alice/c"]
    dropped = [(e.topic, e.reason) for e in again.events if isinstance(e, ev.MessageDropped)]
    assert sorted(dropped) == [("alice/a", "not_authorized"), ("alice/b", "not_authorized")]


# -- $share: the filter part is what is checked ---------------------------------------------

def test_shared_subscription_is_checked_against_its_filter_part():
    b = broker()
    alice = login(b, "alice", "alice", 5)
    codes, _ = subscribe(alice, "$share/g/public/secret/#", "$share/g/alice/#", "$share/g/#")
    assert codes == [0x87, 1, 0x87]
    # the same with the engine's own TopicRules, where the whole string used to be matched
    rules = TopicRules({"alice": [("alice/#", "readwrite")], "*": [("%c/#", "readwrite")]})
    b = broker(rules)
    alice = login(b, "alice", "alice", 5)
    codes, _ = subscribe(alice, "$share/g/alice/#")
    assert codes == [1]
    sneaky = login(b, "$share/g", "bob", 5)  # %c/# would read as $share/g/#: the share of #
    codes, _ = subscribe(sneaky, "$share/g/#")
    assert codes == [0x87]


# -- %c / %u cannot be widened into wildcards ---------------------------------------------

@pytest.mark.parametrize("make_authz", [
    lambda: TopicRules({"*": [("devices/%c/#", "readwrite"), ("users/%u/#", "readwrite")]}),
    lambda: AclFile.parse("pattern readwrite devices/%c/#\npattern readwrite users/%u/#\n"),
], ids=["TopicRules", "AclFile"])
def test_pattern_rules_cannot_be_widened_by_a_client_id_or_user_name(make_authz):
    authz = make_authz()
    assert authz.authorize("dev1", "bob", "devices/dev1/temp", "write")
    assert not authz.authorize("dev1", "bob", "devices/dev2/temp", "write")
    for client_id in ("+", "#", "a/+", "x/#"):
        assert not authz.authorize(client_id, "bob", "devices/dev2/temp", "write"), client_id
        assert not authz.authorize(client_id, "bob", "devices/dev2/temp", "read"), client_id
        assert not authz.authorize(client_id, "bob", "devices/#", "subscribe"), client_id
    for user in ("+", "#"):
        assert not authz.authorize("c", user, "users/alice/x", "read"), user
    # "/" is allowed, as in mosquitto: a/b gets devices/a/b/#, a part of a's own space
    assert authz.authorize("a/b", "bob", "devices/a/b/x", "write")
    assert not authz.authorize("a/b", "bob", "devices/a/x", "write")


def test_engine_with_pattern_rules_refuses_a_wildcard_client_id_everything():
    b = broker(TopicRules({"*": [("devices/%c/#", "readwrite")],
                           "admin": [("#", "readwrite")]}))
    watcher = login(b, "watcher", "admin")
    subscribe(watcher, "devices/#")
    sneaky = login(b, "#", "bob")
    codes, _ = subscribe(sneaky, "devices/dev1/#")
    assert codes == [0x80]
    sneaky.send(Publish("devices/dev1/cmd", b"x", 1, packet_id=1))
    assert publishes(watcher.read()) == []


@pytest.mark.parametrize("live", [False, True])
def test_a_delayed_will_goes_out_as_its_user_when_another_user_ends_the_session(live):
    """bob taking alice's client id ends alice's session, so her delayed will is due now
    (MQTT 5 3.1.3.2: delayed until the interval passes or the session ends), published with
    alice's rights, never cancelled as if alice had come back, and never bob's."""
    b = broker()
    watcher = login(b, "watcher", "admin")
    subscribe(watcher, "alice/#")
    alice = login(b, "alice-persist", "alice", 5,
                  session_expiry_interval=600,
                  will=Will("alice/status", b"gone", 0, False,
                            Properties(will_delay_interval=30)))
    if not live:
        alice.lose(now=1.0)
        assert publishes(watcher.read()) == []  # delayed
    bob = login(b, "alice-persist", "bob", 5, clean_start=False,
                session_expiry_interval=600)
    assert bob.connack.session_present is False
    assert [(p.topic, p.payload) for p in publishes(watcher.read())] == [
        ("alice/status", b"gone")]
    b.on_timer(100.0)
    assert publishes(watcher.read()) == []  # once
