"""Small scenario builders for the simulator's stories (tests/sim)."""

from __future__ import annotations

from mqttsim.scenario import Scenario, run


def scenario(clients: list[dict], duration: float = 30.0, **top) -> Scenario:
    """A scenario from plain dicts, checked by the real loader."""
    return Scenario.from_dict({"name": "story", "duration": duration, "clients": clients,
                               **top})


PLAN_KEYS = {"size", "message", "pattern", "retain", "stop", "burst"}


def publisher(name: str, topic: str, qos: int, count: int, interval: float = 1.0,
              start: float = 1.0, **extra) -> dict:
    """A client with one periodic workload; plan keys (size, retain...) go to the plan."""
    plan = {"topic": topic, "qos": qos, "count": count, "interval": interval, "start": start}
    plan.update({k: v for k, v in extra.items() if k in PLAN_KEYS})
    client = {k: v for k, v in extra.items() if k not in PLAN_KEYS}
    return {"name": name, "publish": plan, **client}


def subscriber(name: str, topic_filter: str, qos: int = 2, **extra) -> dict:
    return {"name": name, "subscribe": [{"topic": topic_filter, "qos": qos}], **extra}


def outcomes_by_qos(res) -> dict[int, dict[str, int]]:
    """{qos: {outcome: count}} over the expected (message, subscriber) pairs."""
    o = res.outcomes[res.outcomes["expected"]]
    return {int(q): group["outcome"].value_counts().to_dict() for q, group in o.groupby("qos_pub")}


__all__ = ["scenario", "publisher", "subscriber", "outcomes_by_qos", "run"]
