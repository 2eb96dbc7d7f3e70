"""Outcomes traced end to end across bridged brokers (issue 18).

With several brokers, a message published at one broker reaches subscribers of another
through bridges, remapped (``sensors/t`` at the edge is ``site1/sensors/t`` in the cloud).
The outcomes table keeps one row per (message, subscriber) for the scenario's own clients,
the bridges' two legs being means, not ends: a copy is traced by its payload's tag however
its topic was remapped.

Who expects a message is the broker's routing rule applied hop by hop (the one rule of
mqttsim.protocol.routing, as in outcomes.py): at the broker it was published to, from the
subscriptions in force when it arrived there; when a bridge leg is among the targets, the
message goes on to the leg's other broker under the bridge's remapped topic (the Bridge's
own mapping), published there by the other leg (so No Local keeps it from coming back), at
the QoS the subscriptions along the way allowed, and is routed again from the subscriptions
in force when it arrived there (or, if it never did, when it reached the previous broker).

A lost pair's reason names where the message stopped: ``publisher:...`` (never reached the
first broker), ``broker:...`` (a broker did not deliver it: to the subscriber, or to the
bridge's leg), or ``bridge:...`` (the bridge got it but it never reached the next broker:
``bridge:qos0_offline`` dropped while the remote leg was away, ``bridge:queue_full``,
``bridge:qos0_connection_lost`` in a connection that broke, ``bridge:undelivered_at_end``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import NamedTuple

from ..protocol.bridge import local_topic, remote_topic
from ..protocol.packets import Subscription
from ..protocol.routing import recipients
from .outcomes import (OUTCOME_COLUMNS, _Granted, _Identify, _in_force, _matching,
                       _online_intervals, _row, _why_lost, granted_subscriptions,
                       received_copies, share_group_member)

_QOS, _REASON = OUTCOME_COLUMNS.index("qos"), OUTCOME_COLUMNS.index("reason")
_OUTCOME = OUTCOME_COLUMNS.index("outcome")


class Leg(NamedTuple):
    """A bridge leg as a subscriber: where what it receives goes on, and as whom."""

    broker: str  # the broker it is a client of
    onward_broker: str  # the broker the message goes on to
    onward_publisher: str  # the other leg, which publishes it there
    remap: Callable[[str], str | None]  # topic here -> topic there (None: not carried)


class _Hop(NamedTuple):
    broker: str
    topic: str
    cap: int  # the highest QoS the hops so far allow
    publisher: str  # who published it to this broker
    moment: tuple[float, int]
    reached: float | None  # when it got to this broker (None: it never did)
    stopped: str | None  # why it stopped upstream, if it did


def bridged_outcome_rows(publishes: list[tuple], receipts: Iterable[tuple],
                         accepts: Iterable[tuple], drops: Iterable[tuple],
                         subscriptions: Iterable[tuple], connections: Iterable[dict],
                         clean: dict[str, bool], home: Mapping[str, str],
                         legs: Mapping[str, Leg], transport: str = "tcp",
                         options: Mapping[tuple[str, str], Subscription] | None = None,
                         versions: Mapping[str, int] | None = None) -> list[tuple]:
    """One row per expected or received (message, scenario client) pair (OUTCOME_COLUMNS).

    ``home``: each client's and leg's broker; ``legs``: the bridges' legs by name. The other
    arguments are outcome_rows's."""
    vanished = "qos0_datagram_lost" if transport == "datagram" else "qos0_connection_lost"
    tcp = transport != "datagram"
    identify = _Identify(publishes)
    copies = received_copies(identify, receipts)
    accepted: dict[tuple[int, str], tuple[float, int]] = {}
    for publisher, topic, payload, _qos, _dup, t, order in accepts:
        index = identify.find(publisher, topic, payload, t, f"accept-{publisher}")
        if index is not None:
            accepted.setdefault((index, publisher), (t, order))
    client_drop: dict[tuple[int, str], str] = {}
    broker_drop: dict[tuple[int, str], str] = {}
    for side, client, topic, payload, _qos, reason, t in drops:
        index = identify.find(client, topic, payload, t, f"drop-{side}-{client}")
        if index is not None:
            (client_drop if side == "client" else broker_drop).setdefault((index, client),
                                                                           reason)
    options, versions = options or {}, versions or {}
    granted: dict[str, list[tuple[str, str, _Granted]]] = defaultdict(list)
    for client, f, entry in granted_subscriptions(subscriptions, options):
        granted[home.get(client, "")].append((client, f, entry))
    matches: dict[tuple[str, str], tuple[list, dict]] = {}
    online = _online_intervals(connections)

    rows = []
    for index, (publisher, seq, topic, payload, qos, retain, t_pub) in enumerate(publishes):
        first = accepted.get((index, publisher))
        reached_first = None if first is None else first[0]
        own_drop = {index: client_drop[(index, publisher)]} \
            if (index, publisher) in client_drop else {}
        frontier = [_Hop(home.get(publisher, ""), topic, qos, publisher,
                         first or (t_pub, 0), reached_first, None)]
        seen = set()
        while frontier:
            hop = frontier.pop(0)
            if (hop.broker, hop.topic) in seen:  # a loop in the configuration: once is enough
                continue
            seen.add((hop.broker, hop.topic))
            key = (hop.broker, hop.topic)
            if key not in matches:
                matches[key] = _matching(granted[hop.broker], hop.topic, versions)
            plain, groups = matches[key]
            who = recipients(_in_force(plain, hop.moment),
                             {g: _in_force(m, hop.moment) for g, m in groups.items()},
                             hop.publisher)
            pub_online = online.get(hop.publisher, ()) if tcp else None
            for sub, (code, _, _) in who.targets.items():
                effective = min(hop.cap, code)
                leg = legs.get(sub)
                if leg is not None:
                    onward = _onward(index, hop, sub, leg, effective, copies, accepted,
                                     client_drop, broker_drop, online, vanished, tcp,
                                     own_drop if hop.publisher == publisher else {})
                    if onward is not None:
                        frontier.append(onward)
                    continue
                row = _row(index, publisher, seq, topic, qos, retain, t_pub, hop.reached,
                           sub, code, True, copies.pop((index, sub), None),
                           own_drop if hop.publisher == publisher else {}, broker_drop,
                           online.get(sub, ()), clean.get(sub, True), vanished, pub_online)
                rows.append(_finish(row, effective, hop, reached_first))
            for group, members in who.groups.items():
                members = [(m, e) for m, e in members if m not in legs]
                if not members:
                    continue
                sub, code, spans, all_clean = share_group_member(index, group, members,
                                                                 copies, online, clean)
                row = _row(index, publisher, seq, topic, qos, retain, t_pub, hop.reached, sub,
                           code, True, copies.pop((index, sub), None),
                           own_drop if hop.publisher == publisher else {}, broker_drop, spans,
                           all_clean, vanished, pub_online)
                rows.append(_finish(row, min(hop.cap, code), hop, reached_first))
    for (index, sub), got in sorted(copies.items()):  # copies nobody expected (retained...)
        if sub in legs:
            continue
        publisher, seq, topic, _payload, qos, retain, t_pub = publishes[index]
        first = accepted.get((index, publisher))
        rows.append(_row(index, publisher, seq, topic, qos, retain, t_pub,
                         None if first is None else first[0], sub, None, False, got, {}, {},
                         (), True, vanished, None))
    return rows


def _onward(index, hop: _Hop, sub: str, leg: Leg, effective: int, copies, accepted,
            client_drop, broker_drop, online, vanished, tcp, own_drop) -> _Hop | None:
    """The next hop of a message a bridge leg ``sub`` should get at ``hop``'s broker."""
    topic = leg.remap(hop.topic)
    if topic is None:
        return None
    stopped = hop.stopped
    if stopped is None and (index, sub) not in copies:
        # The broker did not deliver it to the bridge (or it never reached the broker).
        stopped = _why_lost(index, sub, effective, effective, hop.reached, own_drop,
                            broker_drop, online.get(sub, ()), False, vanished,
                            online.get(hop.publisher, ()) if tcp else None, hop.moment[0])
    arrived = accepted.get((index, leg.onward_publisher))
    if stopped is None and arrived is None:
        # The bridge had it and it never reached the next broker.
        drop = client_drop.get((index, leg.onward_publisher))
        got = copies[(index, sub)][0][0]
        stopped = "bridge:" + _why_lost(
            index, leg.onward_publisher, effective, effective, None,
            {index: drop} if drop else {}, {}, (), False, vanished,
            online.get(leg.onward_publisher, ()) if tcp else None, got).split(":", 1)[1]
    return _Hop(leg.onward_broker, topic, effective, leg.onward_publisher,
                arrived or hop.moment, None if arrived is None else arrived[0], stopped)


def _finish(row: tuple, effective: int, hop: _Hop, reached_first: float | None) -> tuple:
    """A row of ``_row``, made end to end: the QoS all hops allowed, the reason upstream
    when the message stopped before this broker, the time it reached the first broker."""
    row = list(row)
    row[_QOS] = effective
    if row[_OUTCOME] == "lost" and hop.stopped is not None:
        row[_REASON] = hop.stopped
    row[OUTCOME_COLUMNS.index("t_broker")] = reached_first
    return tuple(row)


def bridged_outcomes(sc, rec, connections: list[dict], clean: dict[str, bool],
                     options: dict[tuple[str, str], Subscription]) -> list[tuple]:
    """``bridged_outcome_rows`` for a scenario with bridges and its recorder's rows: the
    legs' subscriptions as the Bridge makes them (No Local locally; remotely No Local in
    MQTT 5, or the try_private bit, which makes the broker set it)."""
    home = {c.name: sc.broker_of(c) for c in sc.clients}
    versions = {c.name: c.version for c in sc.clients}
    legs, options = {}, dict(options)
    for b in sc.bridges:
        home[b.local_name], home[b.name] = b.broker, b.remote
        versions[b.local_name], versions[b.name] = 5, b.version
        legs[b.local_name] = Leg(b.broker, b.remote, b.name, partial(remote_topic, b.topics))
        legs[b.name] = Leg(b.remote, b.broker, b.local_name, partial(local_topic, b.topics))
        clean[b.local_name] = clean[b.name] = b.clean
        for t in b.topics:
            if t.goes_out:
                options[(b.local_name, t.local_filter)] = Subscription(t.local_filter, t.qos,
                                                                       True, True)
            if t.comes_in:
                private = b.version == 5 or b.try_private
                options[(b.name, t.remote_filter)] = Subscription(t.remote_filter, t.qos,
                                                                  private, private)
    return bridged_outcome_rows(rec.publishes, rec.receipts, rec.accepts, rec.drops,
                                rec.subscriptions, connections, clean, home, legs,
                                sc.transport, options, versions)
