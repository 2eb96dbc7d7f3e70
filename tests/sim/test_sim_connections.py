"""Why connections end, and what happens next: each disconnect names its cause."""

from __future__ import annotations

import pytest

from simstories import outcomes_by_qos, publisher, run, scenario, subscriber


@pytest.mark.parametrize("clean", [True, False])
def test_tcp_gives_up_after_its_retransmission_budget_and_the_client_reconnects(clean):
    # Three retransmissions (not Linux's 15) so the give-up comes long before keepalive.
    pub = publisher("pub", "t", 1, 60, clean=clean,
                    link={"latency": 0.01, "outages": [[10.0, 40.0]]})
    res = run(scenario([subscriber("sub", "t", qos=1), pub], duration=90,
                       tcp={"max_retransmits": 3}, link={"latency": 0.01}), seed=1)
    conns = res.connections[res.connections["client"] == "pub"]
    first = conns.iloc[0]
    assert (first["reason"], first["side"]) == ("tcp_timeout", "client")
    assert first["outage"]
    assert 10.0 < first["t_down"] < 40.0
    assert len(conns) >= 2 and conns.iloc[-1]["t_up"] > 40.0  # back after the outage
    lost = res.outcomes[res.outcomes["outcome"] == "lost"]
    if clean:
        # A clean session starts afresh: the unacknowledged messages are discarded, and
        # reported as such (they were sent into the outage before TCP gave up).
        assert len(lost) > 0 and set(lost["reason"]) == {"publisher:clean_session"}
        assert (lost["t_pub"] < first["t_down"]).all()
    else:
        # A persistent session resends them on reconnect [MQTT-4.4.0-1]: nothing lost.
        assert len(lost) == 0
        assert res.packets[(res.packets["src"] == "pub") & res.packets["dup"]]["t"].min() > 40


def test_a_client_crash_resets_its_connection_and_the_broker_publishes_its_will():
    watcher = subscriber("watcher", "status/#", qos=1)
    device = {"name": "device", "keepalive": 10, "crashes": [{"at": 5.0, "down": 3.0}],
              "will": {"topic": "status/device", "message": "offline", "qos": 1}}
    res = run(scenario([watcher, device], duration=20, link={"latency": 0.01}), seed=1)
    conns = res.connections[res.connections["client"] == "device"]
    assert conns.iloc[0]["reason"] == "client_crash"
    assert conns.iloc[0]["broker_reason"] == "reset"  # the RST reached the broker
    assert len(conns) == 2 and conns.iloc[1]["t_up"] > 8.0  # restarted after 3 s
    got = res.received[res.received["subscriber"] == "watcher"]
    assert list(got["payload"]) == [b"offline"]
    assert 5.0 < got.iloc[0]["t"] < 5.1
    assert any("Client device closed its connection." in line or "Socket error" in line
               for line in res.broker_log())


def test_a_broker_restart_keeps_persistent_sessions_and_reports_what_clean_ones_lose():
    keeper = subscriber("keeper", "t", qos=1, clean=False, session_expiry=600,
                        link={"latency": 0.5})
    # Far away and one message in flight at a time: the broker holds a queue for each
    # subscriber when it goes down.
    loser = subscriber("loser", "t", qos=1, link={"latency": 0.5})
    pub = publisher("pub", "t", 1, 40, interval=0.25, clean=False)
    res = run(scenario([keeper, loser, pub], duration=90, link={"latency": 0.01},
                       broker={"restarts": [{"at": 10.0, "down": 5.0}], "max_inflight": 1}),
              seed=1)
    c = res.connections
    ended = c[c["t_down"].notna() & c["t_up"].notna()]
    assert set(ended["reason"]) == {"broker_restart"}
    assert (ended["t_down"] == 10.0).all()
    assert (res.outcomes[res.outcomes["subscriber"] == "keeper"]["copies"] >= 1).all()
    assert set(ended["client"]) == {"keeper", "loser", "pub"}
    counts = {sub: g["outcome"].value_counts().to_dict()
              for sub, g in res.outcomes[res.outcomes["expected"]].groupby("subscriber")}
    assert counts["keeper"].get("lost", 0) == 0  # its session survived the restart
    lost = res.outcomes[(res.outcomes["subscriber"] == "loser")
                        & (res.outcomes["outcome"] == "lost")]
    assert len(lost) > 0 and set(lost["reason"]) <= {"broker:no_session",
                                                     "broker:broker_restart"}
    again = c[(c["client"] == "keeper") & c["t_up"].notna()].iloc[1]
    assert bool(again["session_present"])
    # While the broker is down, connection attempts are refused (RST) and retried.
    refused = c[c["reason"] == "refused"]
    assert len(refused) > 0 and refused["t_open"].between(10.0, 15.0).all()
    assert set(c[c["t_up"].isna()]["reason"]) == {"refused"}


def test_a_clean_disconnect_is_named_clean_and_no_will_is_published():
    watcher = subscriber("watcher", "status/#", qos=1)
    device = {"name": "device", "disconnect_at": 5.0,
              "will": {"topic": "status/device", "message": "offline"}}
    res = run(scenario([watcher, device], duration=10, link={"latency": 0.01}), seed=1)
    conn = res.connections[res.connections["client"] == "device"].iloc[0]
    assert (conn["reason"], conn["side"]) == ("clean", "client")
    assert conn["t_down"] == pytest.approx(5.0)
    assert len(res.received) == 0  # [MQTT-3.14.4-3]: DISCONNECT discards the will


def test_v311_MQTT_3_1_4_2_two_clients_with_one_client_id_take_each_other_over_and_flap():
    first = {"name": "device-a", "client_id": "device"}
    second = {"name": "device-b", "client_id": "device", "connect_at": 5.0}
    res = run(scenario([first, second], duration=30, link={"latency": 0.01}), seed=1)
    c = res.connections
    a = c[c["client"] == "device-a"].iloc[0]
    assert (a["reason"], a["side"]) == ("takeover", "broker")
    assert 5.0 < a["t_down"] < 5.1  # when device-b's CONNECT arrived
    # Each reconnects and throws the other out: the classic flapping of a shared id.
    assert (c["reason"] == "takeover").sum() >= 4
    assert set(c[c["reason"] == "takeover"]["client"]) == {"device-a", "device-b"}


def test_a_client_with_a_short_ping_timeout_notices_a_dead_link_before_the_broker():
    sub = subscriber("sub", "t", keepalive=10, ping_timeout=2.0,
                     link={"latency": 0.01, "outages": [[20.0, 60.0]]})
    res = run(scenario([sub], duration=40), seed=1)
    first = res.connections.iloc[0]
    assert (first["reason"], first["side"]) == ("pingresp_timeout", "client")
    # Idle since its SUBSCRIBE, it pings every 10 s; the ping at 20 s gets no answer.
    assert first["t_down"] == pytest.approx(22.0, abs=0.1)
    assert first["broker_reason"] == "keepalive"  # the broker finds out later, by itself


def test_a_client_behind_a_dead_link_sends_its_syns_on_linux_schedule_then_gives_up():
    # Linux (tcp_syn_retries, TCP_TIMEOUT_INIT doubling): with 2 retries and no linear
    # timeouts (kernels before 6.5) the SYNs go at 0, 1 and 3 s after the attempt starts, and
    # it fails at 7 s (net/ipv4/tcp_timer.c tcp_model_timeout(2, 1 s)); with Linux 6.5's
    # default tcp_syn_linear_timeouts = 4 they go at 0, 1, 2, 3, 4, 5 and 7 s and it fails at
    # 11 s. The client then retries after its reconnect delay.
    pub = publisher("pub", "t", 1, 60, link={"latency": 0.01, "outages": [[0.0, 30.0]]})
    for linear, times, fails in ((0, [0.0, 1.0, 3.0], 7.0),
                                 (4, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0], 11.0)):
        res = run(scenario([pub], duration=20,
                           tcp={"syn_retries": 2, "syn_linear_timeouts": linear},
                           link={"latency": 0.01}), seed=1)
        conns = res.connections[res.connections["client"] == "pub"]
        first = conns.iloc[0]
        assert first["reason"] == "syn_timeout" and first["t_down"] == first["t_open"] + fails
        syns = res.segments[(res.segments["kind"] == "syn")
                            & (res.segments["conn"] == first["conn"])]
        assert list(syns["t"] - first["t_open"]) == times
        assert len(conns) >= 2 and conns.iloc[1]["t_open"] > first["t_down"]
