"""The simulated broker publishes the same ``$SYS`` tree as the real one, on simulated
time (scenario ``[broker] sys_interval``), and ``Results.sys`` has every update, so a lesson
can plot the broker's own counters next to the outcomes table."""

from __future__ import annotations

from simstories import publisher, run, scenario, subscriber


def queue_story(**broker):
    sub = subscriber("sub", "t", qos=1, clean=False, disconnect_at=2.0)
    pub = publisher("pub", "t", 1, 30, start=3.0, interval=0.1, size=100)
    return scenario([sub, pub], duration=10,
                    broker={"max_queued_bytes": 1000, **broker}, link={"latency": 0.01})


def test_sys_counters_agree_with_the_outcomes_table_on_simulated_time():
    res = run(queue_story(sys_interval=2), seed=1)
    table = res.sys
    assert list(table["t"]) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0][:len(table)]
    assert len(table) >= 5 and (table["broker"] == "broker").all()
    last = table.iloc[-1]
    dropped = (res.outcomes["reason"] == "broker:queue_full").sum()
    assert dropped == 20 and last["publish/messages/dropped"] == dropped
    assert last["publish/messages/received"] == 30
    assert last["clients/connected"] == 1 and last["clients/disconnected"] == 1
    assert last["uptime"] == last["t"]
    assert table["load/publish/received/1min"].iloc[-1] > 0


def test_a_subscriber_to_sys_gets_the_tree_and_hash_does_not():
    watcher = {"name": "watcher", "subscribe": [{"topic": "$SYS/broker/uptime", "qos": 0},
                                                {"topic": "#", "qos": 0}]}
    res = run(scenario([watcher], duration=5, broker={"sys_interval": 1}), seed=1)
    got = res.received
    uptimes = got[got["topic"] == "$SYS/broker/uptime"]
    assert list(uptimes["payload"])[:5] == [b"%d seconds" % n for n in range(5)]
    assert set(got["topic"]) == {"$SYS/broker/uptime"}  # "#" matches no $SYS topic


def test_without_sys_interval_there_is_no_tree_and_no_table():
    watcher = {"name": "watcher", "subscribe": [{"topic": "$SYS/#", "qos": 0}]}
    res = run(scenario([watcher], duration=5), seed=1)
    assert res.sys.empty and res.received.empty
