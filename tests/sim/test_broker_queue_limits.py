"""The scenario's broker keys reach the engine: ``max_queued_bytes`` bounds a session's queue
in payload bytes (mosquitto's max_queued_bytes) and the drops show in the outcomes table;
``hold_acks_when_congested`` is off unless a scenario asks for it (issue 13)."""

from __future__ import annotations

from simstories import publisher, run, scenario, subscriber


def test_max_queued_bytes_bounds_an_offline_session_and_the_table_says_queue_full():
    sub = subscriber("sub", "t", qos=1, clean=False, disconnect_at=2.0)
    pub = publisher("pub", "t", 1, 30, start=3.0, interval=0.1, size=100)
    sc = scenario([sub, pub], duration=10, broker={"max_queued_bytes": 1000},
                  link={"latency": 0.01})
    assert sc.broker.max_queued_bytes == 1000 and sc.broker.hold_acks_when_congested is False
    out = run(sc, seed=1).outcomes
    out = out[out["expected"]]
    assert len(out) == 30 and (out["outcome"] == "lost").all()  # it never came back
    reasons = out["reason"].value_counts().to_dict()
    assert reasons == {"broker:queue_full": 20, "broker:queued_for_offline_session": 10}
