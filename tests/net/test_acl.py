"""ACL files in mosquitto's syntax, alone and plugged into the broker engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqttsim.net.acl import AclError, AclFile, filter_covers
from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.packets import (Connack, Connect, Puback, Publish, Suback, Subscribe,
                                      Subscription)

EXAMPLE = """\
# anonymous clients
topic read $SYS/#
topic read public/#

user alice
topic readwrite sensors/#
topic deny sensors/secret
topic write   commands/with space

user bob
topic sensors/+/temp

pattern write devices/%c/state
pattern readwrite home/%u/#
"""


@pytest.fixture
def acl() -> AclFile:
    return AclFile.parse(EXAMPLE, "acl")


def test_lines_before_any_user_are_for_anonymous_clients(acl: AclFile) -> None:
    assert acl.authorize("c", None, "public/news", "read")
    assert acl.authorize("c", None, "$SYS/broker/uptime", "read")
    assert not acl.authorize("c", None, "public/news", "write")
    assert not acl.authorize("c", "alice", "public/news", "read")  # not alice's
    assert not acl.authorize("c", "carol", "public/news", "read")  # no section: nothing


def test_user_rules_and_access_words(acl: AclFile) -> None:
    assert acl.authorize("c", "alice", "sensors/a/temp", "read")
    assert acl.authorize("c", "alice", "sensors/a/temp", "write")
    assert acl.authorize("c", "alice", "commands/with space", "write")
    assert not acl.authorize("c", "alice", "commands/with space", "read")
    # No access word: read and write.
    assert acl.authorize("c", "bob", "sensors/kitchen/temp", "read")
    assert acl.authorize("c", "bob", "sensors/kitchen/temp", "write")
    assert not acl.authorize("c", "bob", "sensors/kitchen/humidity", "read")


def test_deny_beats_a_broader_grant(acl: AclFile) -> None:
    assert not acl.authorize("c", "alice", "sensors/secret", "read")
    assert not acl.authorize("c", "alice", "sensors/secret", "write")
    assert acl.authorize("c", "alice", "sensors/secret/not", "read")


def test_patterns_substitute_client_id_and_user(acl: AclFile) -> None:
    assert acl.authorize("dev1", "bob", "devices/dev1/state", "write")
    assert not acl.authorize("dev1", "bob", "devices/dev2/state", "write")
    assert not acl.authorize("dev1", "bob", "devices/dev1/state", "read")
    assert acl.authorize("x", "bob", "home/bob/lamp", "read")
    assert not acl.authorize("x", "bob", "home/alice/lamp", "read")
    # Patterns apply to anonymous clients too, but not those that need %u.
    assert acl.authorize("dev9", None, "devices/dev9/state", "write")
    assert not acl.authorize("dev9", None, "home//lamp", "read")


def test_wildcards_in_client_id_or_user_are_refused_everything(acl: AclFile) -> None:
    assert not acl.authorize("#", "bob", "devices/#/state", "write")
    assert not acl.authorize("x", "+", "home/+/lamp", "read")
    assert not acl.authorize("x", "b#b", "sensors/a/temp", "read")


def test_subscribe_needs_read_access_to_the_whole_filter(acl: AclFile) -> None:
    assert acl.authorize("c", "alice", "sensors/#", "subscribe")
    assert acl.authorize("c", "alice", "sensors/+/temp", "subscribe")
    assert not acl.authorize("c", "alice", "#", "subscribe")
    assert not acl.authorize("c", "alice", "commands/with space", "subscribe")  # write only
    assert not acl.authorize("c", "alice", "sensors/secret", "subscribe")  # denied
    assert acl.authorize("c", "bob", "sensors/+/temp", "subscribe")
    assert not acl.authorize("c", "bob", "sensors/#", "subscribe")
    assert acl.authorize("c", "alice", "$share/g/sensors/+", "subscribe")
    assert not acl.authorize("c", "alice", "$share/g/other", "subscribe")


@pytest.mark.parametrize("grant, wanted, covered", [
    ("a/#", "a/#", True), ("a/#", "a", True), ("a/#", "a/+/b", True), ("#", "a/#", True),
    ("a/+", "a/+", True), ("a/+", "a/b", True), ("a/+", "a/#", False), ("a/b", "a/+", False),
    ("+/b", "+/b", True), ("a/+/#", "a/#", False), ("#", "$SYS/#", False),
    ("$SYS/#", "$SYS/+", True), ("a/b", "a/b/#", False), ("a/+", "a/b/c", False),
])
def test_filter_covers(grant: str, wanted: str, covered: bool) -> None:
    assert filter_covers(grant, wanted) is covered


@pytest.mark.parametrize("text, message", [
    ("topic read a\nuser\n", r"acl:2: user: missing user name"),
    ("topic sometimes a/b\n", r"acl:1: topic: access 'sometimes' is not one of"),
    ("\n\npattern read a/#/b\n", r"acl:3: pattern: invalid topic filter 'a/#/b'"),
    ("topic\n", r"acl:1: topic: missing topic filter"),
    ("group admins\n", r"acl:1: unknown keyword 'group'"),
])
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(AclError, match=message):
        AclFile.parse(text, "acl")


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "aclfile"
    path.write_text(EXAMPLE)
    assert AclFile.load(path).authorize("c", "alice", "sensors/x", "write")
    path.write_text("topic read a\nbogus\n")
    with pytest.raises(AclError, match=f"{path}:2: unknown keyword"):
        AclFile.load(path)


# -- end to end in the broker engine --------------------------------------------------------

def connect(broker: BrokerEngine, conn: str, client_id: str, username: str | None,
            version: int = 4) -> Decoder:
    decoder = Decoder(version)
    broker.connection_made(conn, 0)
    broker.receive(conn, encode(Connect(client_id, username=username,
                                        password=b"x" if username else None), version), 0)
    [connack] = decoder.feed(broker.take_output(conn)[0])
    assert isinstance(connack, Connack) and connack.reason_code == 0
    return decoder


def exchange(broker: BrokerEngine, conn: str, decoder: Decoder, packet, version: int = 4):
    broker.receive(conn, encode(packet, version), 0)
    return decoder.feed(broker.take_output(conn)[0])


@pytest.mark.parametrize("version, refused", [(4, 0x80), (5, 0x87)])
def test_engine_refuses_subscription_and_filters_delivery(acl: AclFile, version: int,
                                                          refused: int) -> None:
    broker = BrokerEngine(authz=acl)
    sub = connect(broker, "s", "sub", "alice", version)
    replies = exchange(broker, "s", sub, Subscribe(1, (Subscription("sensors/#", 1),
                                                       Subscription("#", 1))), version)
    assert replies == [Suback(1, (1, refused))]
    pub = connect(broker, "p", "pub", "alice")
    # alice may write sensors/a but not read sensors/secret: the second is not delivered.
    assert exchange(broker, "p", pub, Publish("sensors/a", b"1", 1, packet_id=7)) == [Puback(7)]
    assert exchange(broker, "p", pub, Publish("sensors/secret", b"2", 1, packet_id=8)) \
        == [Puback(8)]  # 3.1.1: acknowledged and dropped [MQTT-3.3.5-2]
    delivered = sub.feed(broker.take_output("s")[0])
    assert [(p.topic, p.payload) for p in delivered] == [("sensors/a", b"1")]


def test_engine_drops_a_publish_the_acl_does_not_allow() -> None:
    acl = AclFile.parse("topic read public/#\nuser writer\ntopic write public/#\n")
    broker = BrokerEngine(authz=acl)
    sub = connect(broker, "s", "sub", None)
    assert exchange(broker, "s", sub, Subscribe(1, (Subscription("public/#", 0),))) \
        == [Suback(1, (0,))]
    anon = connect(broker, "p", "pub", None)
    exchange(broker, "p", anon, Publish("public/news", b"anonymous may only read"))
    assert sub.feed(broker.take_output("s")[0]) == []
    writer = connect(broker, "w", "w1", "writer")
    exchange(broker, "w", writer, Publish("public/news", b"ok"))
    assert [p.payload for p in sub.feed(broker.take_output("s")[0])] == [b"ok"]
