"""Fidelity stories: exact expectations for what MQTT over (simulated) TCP must do.

DESIGN.md, "Fidelity rules": over TCP a lost segment becomes delay, never a lost or
duplicated message; messages are lost (QoS 0) or duplicated (QoS 1) only around connection
breaks; persistent sessions resend on reconnect [MQTT-4.4.0-1]; QoS 2 is exactly once.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import encode
from mqttsim.protocol.packets import Puback, Pubcomp, Publish, Pubrec, Pubrel
from simstories import outcomes_by_qos, publisher, run, scenario, subscriber

PUBLISHERS = [publisher("p0", "t/0", 0, 20), publisher("p1", "t/1", 1, 20),
              publisher("p2", "t/2", 2, 20)]


def test_without_loss_every_message_arrives_once_with_the_spec_packets_and_codec_sizes():
    res = run(scenario([subscriber("sub", "t/#", qos=2)] + PUBLISHERS, duration=30,
                       link={"latency": 0.01}), seed=1)
    assert outcomes_by_qos(res) == {0: {"delivered": 20}, 1: {"delivered": 20},
                                    2: {"delivered": 20}}
    p = res.packets
    flows = p[p["type"].isin(["PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP"])]
    per_hop = flows.groupby(["src", "dst", "type"]).size().to_dict()
    # QoS 0: one packet per hop; QoS 1: two; QoS 2: four -- on each of the two hops.
    assert per_hop == {
        ("p0", "broker", "PUBLISH"): 20,
        ("p1", "broker", "PUBLISH"): 20, ("broker", "p1", "PUBACK"): 20,
        ("p2", "broker", "PUBLISH"): 20, ("broker", "p2", "PUBREC"): 20,
        ("p2", "broker", "PUBREL"): 20, ("broker", "p2", "PUBCOMP"): 20,
        ("broker", "sub", "PUBLISH"): 60, ("sub", "broker", "PUBACK"): 20,
        ("sub", "broker", "PUBREC"): 20, ("broker", "sub", "PUBREL"): 20,
        ("sub", "broker", "PUBCOMP"): 20}
    # Sizes are the codec's: a PUBLISH of this topic and payload, and 4-byte acks.
    payload = res.published.iloc[0]["payload"]
    for qos in (0, 1, 2):
        expected = len(encode(Publish(f"t/{qos}", payload, qos, packet_id=qos or None), 4))
        sizes = set(p[(p["src"] == f"p{qos}") & (p["type"] == "PUBLISH")]["bytes"])
        assert sizes == {expected}
    for cls in (Puback, Pubrec, Pubrel, Pubcomp):
        name = cls.__name__.upper()
        assert set(p[p["type"] == name]["bytes"]) == {len(encode(cls(1), 4))}
    assert not p["dup"].any() and not p["dropped"].any()
    assert (res.segments["retransmission"] == False).all()  # noqa: E712


def test_tcp_turns_moderate_segment_loss_into_delay_never_into_lost_or_duplicate_messages():
    clients = [subscriber("sub", "t/#", qos=2)] + PUBLISHERS
    clean = run(scenario(clients, duration=40, link={"latency": 0.01}), seed=3)
    lossy = run(scenario(clients, duration=40, link={"latency": 0.01, "loss": 0.05}), seed=3)
    assert outcomes_by_qos(lossy) == {0: {"delivered": 20}, 1: {"delivered": 20},
                                      2: {"delivered": 20}}
    assert lossy.connections["t_down"].isna().all()  # no connection broke
    assert lossy.segments["retransmission"].sum() > 0
    assert (lossy.segments["dropped"] == "loss").sum() > 0
    for qos in (0, 1, 2):  # repaired within a few round trips (RACK-TLP, RFC 8985), or an RTO
        assert (lossy.summary().loc[qos, "p99_latency"]
                > clean.summary().loc[qos, "p99_latency"] + 0.01)
    assert lossy.outcomes["latency"].mean() > clean.outcomes["latency"].mean()


def outage_story(clean: bool):
    """The subscriber's link is down from 30 to 60 s; keepalive 10 s (broker: 15 s)."""
    sub = subscriber("sub", "t/#", qos=2, keepalive=10, clean=clean,
                     link={"latency": 0.01, "outages": [[30.0, 60.0]]})
    pubs = [publisher(f"p{q}", f"t/{q}", q, 80, start=1.0) for q in (0, 1, 2)]
    return run(scenario([sub] + pubs, duration=120, link={"latency": 0.01}), seed=2)


def test_v311_MQTT_3_1_2_24_outage_longer_than_one_and_a_half_keepalives_disconnects_at_the_broker():
    res = outage_story(clean=False)
    first = res.connections[res.connections["client"] == "sub"].iloc[0]
    assert first["reason"] == "keepalive" and first["side"] == "broker"
    assert first["rule"] == "MQTT-3.1.2-24" and first["outage"]
    # Exactly 1.5 x keepalive after the last bytes the broker received from the subscriber.
    p = res.packets
    last_heard = p[(p["src"] == "sub") & (p["t_recv"] < 30.1)]["t_recv"].max()
    assert first["t_down"] == pytest.approx(last_heard + 15.0)
    assert any("Client sub disconnected: keepalive expired [MQTT-3.1.2-24]" in line
               for line in res.broker_log())


def test_outage_with_a_persistent_session_loses_qos0_keeps_qos1_and_delivers_qos2_once():
    res = outage_story(clean=False)
    out = res.outcomes[res.outcomes["expected"]]
    q0 = out[out["qos_pub"] == 0]
    lost_q0 = q0[q0["outcome"] == "lost"]
    assert len(lost_q0) > 0
    assert lost_q0["t_pub"].between(29.0, 75.0).all()  # only around the break
    assert set(lost_q0["reason"]) <= {"broker:qos0_offline", "broker:qos0_connection_lost"}
    q1 = out[out["qos_pub"] == 1]
    assert (q1["copies"] >= 1).all()  # QoS 1 loses nothing...
    q2 = out[out["qos_pub"] == 2]
    assert (q2["copies"] == 1).all() and len(q2) == 80  # ...and QoS 2 is exactly once
    # After the reconnect the broker resends what was unacknowledged, marked DUP=1.
    p = res.packets
    resent = p[(p["src"] == "broker") & (p["dst"] == "sub") & p["dup"]]
    assert len(resent) > 0 and set(resent["type"]) == {"PUBLISH"}
    assert resent["t"].min() > 60.0
    again = res.connections[res.connections["client"] == "sub"].iloc[1]
    assert bool(again["session_present"])


def test_outage_with_a_clean_session_loses_the_queued_messages_and_says_why():
    res = outage_story(clean=True)
    out = res.outcomes[res.outcomes["expected"]]
    lost = out[(out["outcome"] == "lost") & (out["qos_pub"] > 0)]
    assert len(lost) > 0
    # In flight or queued when the session ended, or published while it had no session.
    assert set(lost["reason"]) <= {"broker:session_ended", "broker:no_session"}
    assert "broker:no_session" in set(lost["reason"])
    assert (out[out["qos_pub"] > 0]["copies"] <= 1).all()
    again = res.connections[res.connections["client"] == "sub"].iloc[1]
    assert not bool(again["session_present"])


def test_datagram_transport_loses_qos0_and_the_31_timer_retry_recovers_qos1_and_qos2():
    clients = [subscriber("sub", "t/#", qos=2)] + [
        publisher(f"p{q}", f"t/{q}", q, 40, retry_interval=2.0) for q in (0, 1, 2)]
    res = run(scenario(clients, duration=90, transport="datagram", version="3.1",
                       link={"latency": 0.01, "loss": 0.1}), seed=4)
    counts = outcomes_by_qos(res)
    assert counts[0].get("lost", 0) > 0  # each datagram is lost on its own
    lost_q0 = res.outcomes[(res.outcomes["qos_pub"] == 0) & (res.outcomes["outcome"] == "lost")]
    assert set(lost_q0["reason"]) <= {"publisher:qos0_datagram_lost", "broker:qos0_datagram_lost"}
    for qos in (1, 2):
        assert counts[qos].get("lost", 0) == 0  # resent on the 3.1 timer, with DUP
    assert counts[2].get("duplicate", 0) == 0
    assert res.packets[res.packets["type"] == "PUBLISH"]["dup"].any()
    assert set(res.segments["kind"]) == {"datagram"}
    assert set(res.segments["bytes"] - res.segments["payload_bytes"]) == {28}


def test_the_same_scenario_and_seed_give_identical_tables_and_another_seed_does_not():
    sc = scenario([subscriber("sub", "t/#")] + PUBLISHERS, duration=30,
                  link={"latency": 0.01, "loss": 0.05, "jitter": 0.005})
    first, again, other = run(sc, seed=7), run(sc, seed=7), run(sc, seed=8)
    for table in ("outcomes", "packets", "connections", "segments", "links"):
        assert getattr(first, table).equals(getattr(again, table)), table
    assert not first.segments.equals(other.segments)


def test_an_offline_persistent_session_overflows_its_queue_and_says_so():
    sub = subscriber("sub", "t", qos=1, clean=False, disconnect_at=2.0)
    res = run(scenario([sub, publisher("pub", "t", 1, 30, start=3.0, interval=0.1)],
                       duration=10, broker={"max_queued": 10}, link={"latency": 0.01}), seed=1)
    out = res.outcomes[res.outcomes["expected"]]
    assert len(out) == 30 and (out["outcome"] == "lost").all()  # it never came back
    reasons = out["reason"].value_counts().to_dict()
    assert reasons == {"broker:queue_full": 20, "broker:queued_for_offline_session": 10}


def test_the_broker_resends_to_a_31_subscriber_on_its_own_retry_interval():
    # Datagrams to the subscriber are lost on their own; MQTT 3.1's timer retry is the only
    # recovery, and on the broker's hop it runs on the broker's retry_interval. (Seed 7: the
    # subscriber's own CONNECT and SUBSCRIBE get through at once; with most seeds one of
    # them is lost and it only subscribes after its 30 s connect timeout.)
    clients = [subscriber("sub", "t", qos=1, link={"latency": 0.01, "loss": 0.3}),
               publisher("pub", "t", 1, 30, interval=0.5, link={"latency": 0.01})]
    late = {}
    for interval in (2.0, 20.0):
        res = run(scenario(clients, duration=60, transport="datagram", version="3.1",
                           broker={"retry_interval": interval}), seed=7)
        got = res.outcomes[res.outcomes["copies"] > 0]
        assert len(got) == 30  # every message recovered
        late[interval] = got["latency"].max()
    assert 2.0 <= late[2.0] < 8.0  # resent after 2 s (a few times at worst)
    assert late[20.0] >= 20.0  # the default: 20 s
