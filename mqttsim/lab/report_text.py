"""The words of a report, written from the numbers of the run or sweep.

A figure without a sentence leaves a student to guess what matters; a canned sentence
("QoS 2 is exactly once") can contradict the figure above it. Every sentence here is built
from the tables (``Results.summary()``, ``connections``, a sweep's ``aggregate``) and says
what *this* run shows: "QoS 1 delivered 98 of 100 messages, 3 of them more than once". When
nothing happened worth noticing (no loss, no duplicate), it says that too.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .report_format import (column_title, format_count, format_general, format_seconds,
                            format_share, format_value, kind_of,
                            parameter_words)

__all__ = ["join_words", "outcome_sentences", "latency_sentences", "connection_sentences",
           "bytes_sentences", "topology_sentences", "run_question", "sweep_question",
           "sweep_metric_sentences", "sweep_outcome_sentences", "qos_list"]


def join_words(items: Sequence[str], last: str = "and") -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def qos_list(levels: Sequence[Any]) -> str:
    """``[1, 2]`` -> ``"QoS 1 and QoS 2"``."""
    return join_words([f"QoS {int(q)}" for q in levels])


def _plural(n: float, word: str, plural: str | None = None) -> str:
    return f"{format_count(n)} {word if n == 1 else (plural or word + 's')}"


# --- One run -------------------------------------------------------------------------------

def outcome_sentences(summary: pd.DataFrame,
                      copies: Mapping[int, int] | None = None,
                      one_subscriber: bool = True) -> list[str]:
    """What happened to the messages, per QoS, then what to notice across QoS.

    ``summary``: ``Results.summary()`` (indexed by qos). ``copies``: per QoS the most copies
    one subscriber got of a duplicated message (2: "twice"). ``one_subscriber``: every
    message had one subscriber, so a delivery is a message ("messages", else "deliveries")."""
    if summary is None or summary.empty:
        return ["No message was published to a subscriber in this run, so there are no "
                "outcomes to count."]
    noun = "messages" if one_subscriber else "deliveries"
    sentences = []
    for qos, row in summary.iterrows():
        expected, once = int(row["expected"]), int(row["delivered"])
        dup, lost = int(row["duplicates"]), int(row["lost"])
        arrived = once + dup
        if expected == 0:
            sentences.append(f"QoS {int(qos)}: {_plural(row['sent'], 'message')} published, "
                             "none of them to a subscriber.")
            continue
        if arrived == expected and dup == 0:
            text = (f"QoS {int(qos)} delivered all {format_count(expected)} {noun} exactly once"
                    if expected > 1 else f"QoS {int(qos)} delivered its one "
                    f"{noun[:-1] if noun == 'messages' else 'delivery'} exactly once")
        else:
            text = (f"QoS {int(qos)} delivered {format_count(arrived)} of "
                    f"{format_count(expected)} {noun}")
            if dup:
                times = (copies or {}).get(int(qos))
                how = "twice" if times == 2 else "more than once"
                text += (f", {format_count(dup)} of them {how}" if dup > 1
                         else f", one of them {how}")
            if lost:
                text += f"; {format_count(lost)} {'was' if lost == 1 else 'were'} lost"
        sentences.append(text + ".")
    levels = list(summary.index)
    lost_at = [q for q in levels if summary.loc[q, "lost"] > 0]
    dup_at = [q for q in levels if summary.loc[q, "duplicates"] > 0]
    notice = []
    if lost_at and 1 < len(levels) and len(lost_at) < len(levels):
        notice.append(f"Only {qos_list(lost_at)} lost messages")
    if dup_at:
        clean = [q for q in levels if q not in dup_at and summary.loc[q, "expected"] > 0]
        notice.append(f"{qos_list(dup_at)} delivered duplicates"
                      + (f", {qos_list(clean)} none" if clean else ""))
    if not lost_at and not dup_at:
        notice.append("Nothing was lost or duplicated: every QoS level held its promise "
                      "trivially, because nothing in this run put it to the test"
                      if len(levels) > 1 else "Nothing was lost or duplicated")
    notice = [n for n in notice if n]
    if notice:
        sentences.append("; ".join(notice) + ".")
    return sentences


def latency_sentences(summary: pd.DataFrame, outages: Sequence[tuple[float, float]] = (),
                      curves_alike: Sequence[Sequence[int]] = ()) -> list[str]:
    """Median and tail latency per QoS, where each curve levels off, and the tail set
    against the longest link outage when there was one."""
    if summary is None or summary.empty or summary["p50_latency"].isna().all():
        return ["Nothing was delivered, so there is no latency to show."]
    rows = summary.dropna(subset=["p50_latency"])
    medians = {q: format_seconds(v) for q, v in rows["p50_latency"].items()}
    if len(set(medians.values())) == 1:
        median = (f"Half of the messages arrived within {next(iter(medians.values()))}"
                  + (" at every QoS" if len(medians) > 1 else ""))
    else:
        median = "Half of the messages arrived within " + join_words(
            [f"{text} at QoS {int(q)}" for q, text in medians.items()])
    sentences = [median + "."]
    tails = []
    for qos, row in rows.iterrows():
        p50, p99 = row["p50_latency"], row["p99_latency"]
        if p50 > 0 and p99 / p50 >= 10:
            tails.append((qos, p99, p99 / p50))
    if tails:
        parts = [f"{format_seconds(p99)} at QoS {int(q)} ({format_general(r, 2)} times its "
                 f"median)" for q, p99, r in tails]
        text = f"The slowest 1 % took much longer: {join_words(parts)}"
        if outages:
            longest = max(end - start for start, end in outages)
            worst = max(p99 for _, p99, _ in tails)
            if 0.3 * longest <= worst <= 2 * longest:
                text += (f", about as long as the longest link outage ({format_seconds(longest)}"
                         f"): those messages waited for the link to come back")
        sentences.append(text + ".")
    else:
        sentences.append("The tail is short: the slowest 1 % arrived within "
                         + join_words([f"{format_seconds(v)} at QoS {int(q)}"
                                       for q, v in rows["p99_latency"].items()]) + ".")
    levels = [format_share(v) + f" for QoS {int(q)}" for q, v in
              summary["delivery_ratio"].items() if not pd.isna(v)]
    if len(levels) > 1 or (levels and summary["delivery_ratio"].min() < 1):
        sentences.append("Each curve levels off at the share of messages that arrived at "
                         f"all: {join_words(levels)}.")
    for group in curves_alike:
        sentences.append(f"The {qos_list(group)} curves coincide: they are drawn in "
                         "different line styles so each stays visible.")
    return sentences


def connection_sentences(connections: pd.DataFrame) -> list[str]:
    """How many connections ended, why, who noticed, and how many reconnects resumed a
    session; taken from the connections table, whose ``detail`` is the engine's own words."""
    if connections is None or connections.empty:
        return ["No connection was made."]
    opened = len(connections)
    clients = connections["client"].nunique() if "client" in connections else opened
    ended = connections.dropna(subset=["reason"]) if "reason" in connections else \
        connections.iloc[0:0]
    if ended.empty:
        return [f"{_plural(clients, 'client')} connected once each and stayed connected "
                "for the whole run."]
    parts = []
    for (reason, side), group in ended.groupby(["reason", "side"], sort=False, dropna=False):
        detail = group["detail"].dropna().iloc[0] if "detail" in group and \
            group["detail"].notna().any() else ""
        why = [detail] if detail else []
        if isinstance(side, str) and side:
            why.append(f"noticed by the {side}")
        parts.append(f"{len(group)} {str(reason).replace('_', ' ')}"
                     + (f" ({'; '.join(why)})" if why else ""))
    sentences = [f"{_plural(len(ended), 'connection')} of {opened} ended before the run did: "
                 f"{join_words(parts)}."]
    reconnects = opened - clients
    if reconnects > 0:
        resumed = int(connections.get("session_present", pd.Series(dtype=bool))
                      .fillna(False).astype(bool).sum())
        text = f"The clients reconnected {_plural(reconnects, 'time')}"
        if resumed:
            text += (f"; {format_count(resumed)} of those reconnects found their session "
                     "still on the broker")
        sentences.append(text + ".")
    return sentences


def bytes_sentences(data: pd.DataFrame, header: str = "TCP/IP") -> list[str]:
    """MQTT and wire bytes per delivered copy per QoS, and what the highest QoS costs
    against the lowest. ``data``: ``mqttsim.lab.bytes_by_qos(res)``."""
    data = data[data["copies"] > 0] if data is not None and len(data) else data
    if data is None or data.empty:
        return ["No copy was delivered, so there is nothing to divide the bytes by."]
    mqtt = join_words([f"{format_general(v)}{' bytes' * (i == 0)} at QoS {int(q)}"
                       for i, (q, v) in enumerate(data["mqtt_per_copy"].items())])
    wire = join_words([f"{format_general(v)}" for v in data["wire_per_copy"]])
    sentences = [f"Each delivered copy cost {mqtt} in MQTT packets; with the {header} "
                 f"segments that carried them, {wire} bytes."]
    if len(data) > 1:
        low, high = data.index.min(), data.index.max()
        ratio = data.loc[high, "wire_per_copy"] / data.loc[low, "wire_per_copy"]
        sentences.append(f"On the wire, QoS {int(high)} costs {format_general(ratio, 2)} "
                         f"times as much as QoS {int(low)} per copy: the acknowledgements "
                         "are packets too.")
    return sentences


def topology_sentences(scenario: Any) -> list[str]:
    """The network in words: how clients attach and which links they share."""
    from .topology import describe_link
    clients = list(scenario.clients)
    by_link: dict[str, list[str]] = {}
    for client in clients:
        up, down = describe_link(client.link.up), describe_link(client.link.down)
        text = up if up == down else f"up {up}; down {down}"
        by_link.setdefault(text, []).append(client.name)
    brokers = getattr(scenario, "brokers", (scenario.broker,))
    where = ("all attached directly to the broker" if not scenario.routers and len(brokers) == 1
             else "each attached directly to its broker" if not scenario.routers else
             f"behind {_plural(len(scenario.routers), 'router')} "
             f"({', '.join(scenario.routers)})")
    sentences = [f"{_plural(len(clients), 'client')}, {where}."]
    for b in getattr(scenario, "bridges", ()):  # several brokers (issue 18)
        carried = "; ".join(f"{t.local_prefix + t.pattern} {t.direction} at QoS {t.qos}"
                            for t in b.topics)
        sentences.append(f"Bridge {b.name} from broker {b.broker} to broker {b.remote}: "
                         f"{carried}.")
    for text, names in by_link.items():
        who = (names[0] if len(names) == 1 else
               f"{names[0]} … {names[-1]} ({len(names)} clients)" if len(names) > 4 else
               join_words(names))
        sentences.append(f"Access link of {who}: {text}.")
    return sentences


def run_question(scenario: Any) -> str:
    """The question a single run answers, from the scenario's QoS levels."""
    levels = sorted({p.qos for c in scenario.clients for p in c.publish})
    what = f"at {qos_list(levels)}" if levels else "in this scenario"
    return (f"What happens to messages published {what}: how many arrive, how many twice "
            "or never, how late, and at what cost in bytes?")


def sweep_question(result: Any) -> str:
    keys = [parameter_words(k) for k in result.grid]
    values = [join_words([_value_text(k, v) for v in vs]) for k, vs in result.grid.items()]
    varied = join_words([f"{k} ({v})" for k, v in zip(keys, values)])
    return (f"How do delivery, latency and bytes per message change with {varied}, "
            f"at each QoS, over {_plural(len(result.seeds), 'seed')}?")


def _value_text(key: str, value: Any) -> str:
    kind = kind_of(key)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return format_value(value, kind)
    return str(value)


# --- A sweep --------------------------------------------------------------------------------

def _trend(first: float, last: float, kind: str) -> str:
    a, b = format_value(first, kind), format_value(last, kind)
    if a == b:
        return f"stays at {a}"
    return f"{'rises' if last > first else 'falls'} from {a} to {b}"


def sweep_metric_sentences(aggregate: pd.DataFrame, key: str, metric: str,
                           others: Mapping[str, Any] | None = None,
                           spread: bool | None = None) -> list[str]:
    """How ``metric`` moves along ``key``, per QoS (QoS levels that give the same numbers
    together), for one combination of the other grid keys (``others``)."""
    data = aggregate
    for column, value in (others or {}).items():
        data = data[data[column] == value]
    kind = kind_of(metric)
    name = column_title(metric)
    name = name[0].lower() + name[1:] if name[1:2].islower() else name
    series: dict[tuple, list[int]] = {}
    for qos, group in data.groupby("qos", sort=True):
        group = group.sort_values(key)
        values = tuple(np.round(pd.to_numeric(group[metric], errors="coerce")
                                .to_numpy(dtype=float), 12))
        series.setdefault(values, []).append(qos)
    xs = sorted(data[key].unique(), key=lambda v: (isinstance(v, str), v))
    if not xs or not series:
        return []
    first, last = _value_text(key, xs[0]), _value_text(key, xs[-1])
    parts = []
    for values, levels in series.items():
        finite = [v for v in values if not np.isnan(v)]
        if not finite:
            parts.append(f"has no value at {qos_list(levels)} (nothing arrived)")
            continue
        parts.append(f"{_trend(values[0], values[-1], kind)} at {qos_list(levels)}"
                     if len(values) > 1 else f"is {format_value(values[0], kind)} at "
                     f"{qos_list(levels)}")
    where = (" (with " + ", ".join(f"{parameter_words(k)} = {_value_text(k, v)}"
                                   for k, v in others.items()) + ")") if others else ""
    span = f" as {parameter_words(key)} goes from {first} to {last}" if len(xs) > 1 else ""
    sentences = [f"The {name}{where} {join_words(parts, 'and')}{span}."]
    together = [levels for levels in series.values() if len(levels) > 1]
    if together:
        sentences.append(" ".join(f"{qos_list(levels)} give the same numbers: their lines "
                                  "lie on top of each other, told apart by line style and "
                                  "marker." for levels in together))
    if spread is False:
        sentences.append("Every seed gave the same result, so there is no band.")
    elif spread:
        sentences.append("The shaded band is the 95 % confidence interval over the seeds, "
                         "cut off where the quantity cannot go.")
    return sentences


def sweep_outcome_sentences(aggregate: pd.DataFrame, key: str,
                            others: Mapping[str, Any] | None = None) -> list[str]:
    """Per QoS, what share was lost and duplicated at the first and last swept value."""
    data = aggregate
    for column, value in (others or {}).items():
        data = data[data[column] == value]
    xs = sorted(data[key].unique(), key=lambda v: (isinstance(v, str), v))
    sentences = []
    for qos, group in data.groupby("qos", sort=True):
        group = group.set_index(key)
        expected = pd.to_numeric(group["expected"], errors="coerce")
        shares = {o: pd.to_numeric(group[o], errors="coerce") / expected.replace(0, np.nan)
                  for o in ("lost", "duplicates")}
        if all((s.fillna(0) == 0).all() for s in shares.values()):
            sentences.append(f"QoS {int(qos)} delivered every message exactly once at every "
                             f"{parameter_words(key)}.")
            continue
        parts = []
        for outcome, word in (("lost", "lost"), ("duplicates", "duplicated")):
            s = shares[outcome]
            if (s.fillna(0) == 0).all():
                parts.append(f"none {word}")
                continue
            worst = s.idxmax()
            parts.append(f"{format_share(s.loc[xs[0]])} {word} at {_value_text(key, xs[0])}"
                         + (f", {format_share(s.loc[xs[-1]])} at {_value_text(key, xs[-1])}"
                            if len(xs) > 1 else "")
                         + (f" (most: {format_share(s.max())} at {_value_text(key, worst)})"
                            if worst not in (xs[0], xs[-1]) else ""))
        sentences.append(f"QoS {int(qos)}: {'; '.join(parts)}.")
    return sentences
