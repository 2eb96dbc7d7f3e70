"""The fate of every (message, subscriber) pair, from what the engines reported.

Backend-neutral: the simulator and the socket backend both hand over the same raw rows
(published messages, copies received, messages the broker accepted, drops with reasons,
subscriptions granted). A copy is traced to its message by the tag in a generated payload
(mqttsim.netmodel.workload); a fixed payload (``message = "12"``) carries no identity, so a
copy is matched to the oldest message with that topic and payload the subscriber has not
had yet, published before the copy arrived -- as well as anyone can tell them apart.

A pair is *expected* when the broker's routing rule (``mqttsim.protocol.routing``: the one
the broker engine applies) gives the subscriber a copy, from the subscriptions granted before
the message reached the broker (``order`` breaks ties between events of the same instant):
overlapping filters make one copy, No Local leaves out the publisher's own, and a shared
subscription group (MQTT 5 ``$share/...``) expects one copy for the whole group -- the row
names the member that got it, or the group's filter when none did. Outcomes: ``delivered``
(one copy), ``duplicate`` (more than one), ``lost`` (none, with the most specific reason the
events support).

Reasons of a lost pair, ``side:reason`` (side: where the message stopped, ``publisher`` or
``broker``):

- ``<drop reason>``: a configured limit dropped it, as the engine reported (a full queue,
  a denied publish, ...), counted where it happened;
- ``no_session``: the broker had no session for a clean-session subscriber that was away;
- ``queued_for_offline_session``: still held for a subscriber away at the end;
- ``qos0_connection_lost``: QoS 0 bytes that died with a TCP connection that broke (only a
  broken connection loses bytes over TCP);
- ``qos0_datagram_lost``: QoS 0 over the ``datagram`` contrast transport, lost on a link;
- ``in_flight_at_end``: QoS 0 still inside a TCP connection that was up when the run
  ended (sent, not yet arrived: not a loss of the network, a cut of the observation);
- ``undelivered_at_end``: QoS 1/2 not yet delivered when the run ended while its session
  lived (in TCP, or waiting in a full in-flight window).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from ..netmodel.workload import read_tag
from ..protocol.packets import Subscription
from ..protocol.routing import matching, recipients


class _Granted(NamedTuple):
    """A granted subscription as the routing rule reads it (``options``, ``identifier``)."""

    options: Subscription
    since: tuple[float, int]
    identifier: None = None

OUTCOME_COLUMNS = ("msg_id", "publisher", "subscriber", "topic", "qos_pub", "qos_granted",
                   "qos", "retain", "copies", "dup_copies", "outcome", "reason", "expected",
                   "t_pub", "t_broker", "t_first_delivery", "latency")


class _Identify:
    """Finds the message a copy (or an accept, or a drop) belongs to."""

    def __init__(self, publishes: list[tuple]):
        self.by_fixed: dict[tuple[str, bytes], list[int]] = defaultdict(list)
        self.ids: dict[tuple[str, int], int] = {}
        for index, (publisher, seq, topic, payload, *_rest) in enumerate(publishes):
            if read_tag(payload) is None:
                self.by_fixed[(topic, payload)].append(index)
            self.ids[(publisher, seq)] = index
        self.publishes = publishes
        self._taken: dict[tuple, set[int]] = defaultdict(set)

    def find(self, who: str, topic: str, payload: bytes, t: float, kind: str) -> int | None:
        tag = read_tag(payload)
        if tag is not None:
            return self.ids.get(tag)
        candidates = [i for i in self.by_fixed.get((topic, payload), ())
                      if self.publishes[i][6] <= t]
        if not candidates:
            return None
        taken = self._taken[(kind, who)]
        for index in candidates:
            if index not in taken:
                taken.add(index)
                return index
        return candidates[-1]  # every candidate already matched: a further copy


def received_copies(identify: _Identify, receipts: Iterable[tuple]
                    ) -> dict[tuple[int, str], list[tuple]]:
    """Each (message index, subscriber)'s copies as (t, qos, dup, retain), in arrival order."""
    copies: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    for sub, topic, payload, qos, dup, retain, t in receipts:
        index = identify.find(sub, topic, payload, t, "receipt")
        if index is not None:
            copies[(index, sub)].append((t, qos, dup, retain))
    return copies


def granted_subscriptions(subscriptions: Iterable[tuple],
                          options: Mapping[tuple[str, str], Subscription]
                          ) -> Iterator[tuple[str, str, _Granted]]:
    """(client, filter, granted) for every subscription the broker granted (code < 0x80),
    with the options the client asked for besides QoS."""
    for client, f, code, t, order in subscriptions:
        if code < 0x80:
            asked = options.get((client, f))
            yield client, f, _Granted(
                Subscription(f, code, asked.no_local, asked.retain_as_published)
                if asked is not None else Subscription(f, code), (t, order))


def share_group_member(index: int, group: str, members: list, copies: Mapping,
                       online: Mapping, clean: Mapping[str, bool]
                       ) -> tuple[str, int, list, bool]:
    """Who stands for a shared subscription group in message ``index``'s row, and with what:
    the member that got it (its granted QoS, its online spans), or, when none did, the
    group's filter (the highest QoS granted, every member's spans); and whether every member
    had a clean session. A group expects one copy, which any member may get (MQTT 5 4.8.2),
    at that member's granted QoS [MQTT-4.8.2-3]."""
    got = [m for m, _ in members if (index, m) in copies]
    sub = got[0] if got else group
    code = (dict(members)[sub].options.qos if got
            else max(entry.options.qos for _, entry in members))
    spans = (online.get(sub, ()) if got
             else [span for m, _ in members for span in online.get(m, ())])
    return sub, code, spans, all(clean.get(m, True) for m, _ in members)


def outcome_rows(publishes: list[tuple], receipts: Iterable[tuple], accepts: Iterable[tuple],
                 drops: Iterable[tuple], subscriptions: Iterable[tuple],
                 connections: Iterable[dict], clean: dict[str, bool],
                 transport: str = "tcp",
                 options: Mapping[tuple[str, str], Subscription] | None = None,
                 versions: Mapping[str, int] | None = None) -> list[tuple]:
    """One row per expected or received (message, subscriber) pair (OUTCOME_COLUMNS).

    ``options``: per (subscriber, filter), the SUBSCRIBE options other than QoS (No Local,
    Retain As Published) when not the defaults; ``versions``: each client's protocol
    version (``$share/`` is a shared subscription in MQTT 5 only; default 4).

    A QoS 0 message that vanishes in transit is ``qos0_connection_lost`` over TCP (only a
    broken connection loses bytes) and ``qos0_datagram_lost`` over datagrams (any packet
    can be lost on its own)."""
    vanished = "qos0_datagram_lost" if transport == "datagram" else "qos0_connection_lost"
    tcp = transport != "datagram"
    identify = _Identify(publishes)
    copies = received_copies(identify, receipts)
    t_broker: dict[int, tuple[float, int]] = {}
    for publisher, topic, payload, _qos, _dup, t, order in accepts:
        index = identify.find(publisher, topic, payload, t, "accept")
        if index is not None and index not in t_broker:
            t_broker[index] = (t, order)
    client_drop: dict[int, str] = {}
    broker_drop: dict[tuple[int, str], str] = {}
    for side, client, topic, payload, _qos, reason, t in drops:
        index = identify.find(client, topic, payload, t, f"drop-{side}")
        if index is None:
            continue
        if side == "client":
            client_drop.setdefault(index, reason)
        else:
            broker_drop.setdefault((index, client), reason)
    options, versions = options or {}, versions or {}
    granted = list(granted_subscriptions(subscriptions, options))
    by_topic: dict[str, tuple[list, dict]] = {}  # topic -> matching (plain, share groups)
    online = _online_intervals(connections)

    rows = []
    for index, (publisher, seq, topic, payload, qos, retain, t_pub) in enumerate(publishes):
        at_broker = t_broker.get(index)
        reached = None if at_broker is None else at_broker[0]
        moment = (t_pub, 0) if at_broker is None else at_broker
        found = by_topic.get(topic)
        if found is None:
            found = by_topic[topic] = _matching(granted, topic, versions)
        plain, groups = found
        # The subscriptions in force when the message reached the broker: for each
        # (client, filter) the latest granted before then (a new SUBSCRIBE replaces it).
        who = recipients(_in_force(plain, moment), {g: _in_force(m, moment) for g, m in
                                                    groups.items()}, publisher)
        for sub, (code, _, _) in who.targets.items():
            rows.append(_row(index, publisher, seq, topic, qos, retain, t_pub, reached, sub,
                             code, True, copies.pop((index, sub), None), client_drop,
                             broker_drop, online.get(sub, ()), clean.get(sub, True), vanished,
                             online.get(publisher, ()) if tcp else None))
        for group, members in who.groups.items():
            if not members:
                continue
            sub, code, spans, all_clean = share_group_member(index, group, members, copies,
                                                             online, clean)
            rows.append(_row(index, publisher, seq, topic, qos, retain, t_pub, reached, sub,
                             code, True, copies.pop((index, sub), None), client_drop,
                             broker_drop, spans, all_clean, vanished,
                             online.get(publisher, ()) if tcp else None))
    for (index, sub), got in sorted(copies.items()):  # copies nobody expected (e.g. retained)
        publisher, seq, topic, _payload, qos, retain, t_pub = publishes[index]
        at_broker = t_broker.get(index)
        rows.append(_row(index, publisher, seq, topic, qos, retain, t_pub,
                         None if at_broker is None else at_broker[0], sub, None, False, got,
                         client_drop, broker_drop, (), True, vanished, None))
    return rows


def _row(index, publisher, seq, topic, qos, retain, t_pub, reached, sub, qos_granted,
         expected, got, client_drop, broker_drop, online, clean, vanished,
         pub_online) -> tuple:
    effective = qos if qos_granted is None else min(qos, qos_granted)
    if got:
        got.sort()
        first = got[0][0]
        outcome, reason = ("duplicate" if len(got) > 1 else "delivered"), ""
        count, dups = len(got), sum(1 for c in got if c[2])
    else:
        first, count, dups, outcome = None, 0, 0, "lost"
        reason = _why_lost(index, sub, qos, effective, reached, client_drop, broker_drop,
                           online, clean, vanished, pub_online, t_pub)
    return (f"{publisher}#{seq}", publisher, sub, topic, qos, qos_granted, effective, retain,
            count, dups, outcome, reason, expected, t_pub, reached, first,
            None if first is None else first - t_pub)


def _why_lost(index, sub, qos, effective, reached, client_drop, broker_drop, online,
              clean, vanished, pub_online, t_pub) -> str:
    """``pub_online``: the publisher's connections over TCP (None: over datagrams), to tell
    a QoS 0 message still in flight at the end from one lost with its connection."""
    if reached is None:  # it never got to the broker
        if index in client_drop:
            return f"publisher:{client_drop[index]}"
        if qos:
            return "publisher:undelivered_at_end"
        if pub_online is not None and any(up <= t_pub and down == float("inf")
                                          for up, down in pub_online):
            return "publisher:in_flight_at_end"
        return f"publisher:{vanished}"
    if (index, sub) in broker_drop:
        return f"broker:{broker_drop[(index, sub)]}"
    connected = any(up <= reached < down for up, down in online)
    if not connected and clean:
        return "broker:no_session"  # a clean-session subscriber away: nothing kept for it
    if effective == 0:
        if pub_online is not None and any(up <= reached and down == float("inf")
                                          for up, down in online):
            return "broker:in_flight_at_end"
        return f"broker:{vanished}"
    if not any(down == float("inf") for _up, down in online):
        return "broker:queued_for_offline_session"  # still held for a subscriber away at the end
    return "broker:undelivered_at_end"


def _matching(granted: list[tuple[str, str, _Granted]], topic: str,
              versions: Mapping[str, int]) -> tuple[list, dict]:
    """The granted subscriptions matching ``topic``, split as the broker splits them."""
    plain, groups = [], {}
    for version in sorted({versions.get(client, 4) for client, _, _ in granted}):
        mine = [g for g in granted if versions.get(g[0], 4) == version]
        more_plain, more_groups = matching(mine, topic, version)
        plain += more_plain
        for group, members in more_groups.items():
            groups.setdefault(group, []).extend(members)
    return plain, groups


def _in_force(entries: list[tuple], moment: tuple[float, int]) -> list[tuple]:
    """Of ``(client, [filter,] granted)`` entries, those granted before ``moment``, the
    latest per client and filter."""
    latest: dict[tuple, tuple] = {}
    for entry in entries:
        granted = entry[-1]
        if granted.since <= moment:
            key = entry[:-1] if len(entry) == 3 else (entry[0], granted.options.topic_filter)
            if key not in latest or latest[key][-1].since <= granted.since:
                latest[key] = entry
    return list(latest.values())


def _online_intervals(connections: Iterable[dict]) -> dict[str, list[tuple[float, float]]]:
    """Per client, when it had an MQTT connection up (CONNACK to the end)."""
    found: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in connections:
        if row["t_up"] is not None:
            down = row["t_down"] if row["t_down"] is not None else float("inf")
            found[row["client"]].append((row["t_up"], down))
    return found
