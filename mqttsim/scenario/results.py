"""``Results``: one run's tables as pandas DataFrames, the same whichever backend ran it.

Tables (DESIGN.md): ``outcomes`` (one row per message and subscriber), ``packets`` (one
row per MQTT packet, with the time its last byte reached the peer's engine), ``connections``
(one row per transport connection, with the reason it ended, named by whichever side learned
it first), ``segments`` (every TCP segment or datagram on the path, with its fate), ``links``
(per link direction: traffic, drops, utilisation), ``received`` (every copy a subscriber
got, like ``sub -v`` prints it), ``published`` and ``drops``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any

import pandas as pd

from ..protocol.packets import Subscription
from .outcomes import OUTCOME_COLUMNS, outcome_rows

QOS_OF_ACK = {"PUBACK": 1, "PUBREC": 2, "PUBREL": 2, "PUBCOMP": 2}
TABLES = ("outcomes", "packets", "connections", "segments", "links", "received", "published",
          "drops")
BROKER_PORT = 1883


class Results:
    """What one run produced. Build with ``mqttsim.run``; read the tables, ``summary()``."""

    def __init__(self, scenario: Any, seed: int, backend: str,
                 tables: Mapping[str, pd.DataFrame | Callable[[], pd.DataFrame]],
                 broker_events: list | None = None, payloads: list | None = None,
                 stats: dict | None = None):
        self.scenario, self.seed, self.backend = scenario, seed, backend
        missing = set(TABLES) - set(tables)
        if missing:
            raise ValueError(f"Results needs every table; missing: {', '.join(sorted(missing))}")
        # A table may come as a function that builds it: a large run then pays for a
        # million-row DataFrame only if someone reads it.
        self._unbuilt = dict(tables)
        self.broker_events = broker_events or []
        self._payloads = payloads
        self.stats = stats or {}

    def _build(self, name: str) -> pd.DataFrame:
        table = self._unbuilt.pop(name)
        return table() if callable(table) else table

    # The tables: built on first read, then kept (cached_property), and real attributes of
    # the class, so dir(res) and a notebook's tab completion list them with these docs.

    @cached_property
    def outcomes(self) -> pd.DataFrame:
        """One row per message and subscriber that should (or did) get it: the outcome
        (delivered, duplicate, lost), copies and latency."""
        return self._build("outcomes")

    @cached_property
    def packets(self) -> pd.DataFrame:
        """One row per MQTT packet, with the time its last byte reached the peer's engine."""
        return self._build("packets")

    @cached_property
    def connections(self) -> pd.DataFrame:
        """One row per transport connection, with the reason it ended (named by whichever
        side learned it first)."""
        return self._build("connections")

    @cached_property
    def segments(self) -> pd.DataFrame:
        """Every TCP segment or datagram on the path, with its fate."""
        return self._build("segments")

    @cached_property
    def links(self) -> pd.DataFrame:
        """Per link direction: traffic, drops, utilisation."""
        return self._build("links")

    @cached_property
    def received(self) -> pd.DataFrame:
        """Every copy a subscriber got, like ``sub -v`` prints it."""
        return self._build("received")

    @cached_property
    def published(self) -> pd.DataFrame:
        """Every message a client published."""
        return self._build("published")

    @cached_property
    def sys(self) -> pd.DataFrame:
        """The broker's ``$SYS/broker/...`` tree at every update (scenario
        ``[broker] sys_interval``; empty without it): one row per update with ``t``,
        ``broker`` and a numeric column per topic under ``$SYS/broker/`` (mosquitto's names:
        ``clients/connected``, ``publish/messages/dropped``, ``load/bytes/received/1min``,
        ...; ``uptime`` in seconds), to plot next to the outcomes."""
        table = self._unbuilt.pop("sys", None)
        if table is None:
            return pd.DataFrame(columns=["t", "broker"])
        return table() if callable(table) else table

    @cached_property
    def drops(self) -> pd.DataFrame:
        """Every message dropped on purpose (e.g. a full queue): which side, why, when."""
        return self._build("drops")

    def __repr__(self) -> str:
        return (f"<Results {self.scenario.name!r} seed={self.seed} backend={self.backend}: "
                f"{len(self.published)} messages, {len(self.outcomes)} outcomes, "
                f"{len(self.packets)} packets, {len(self.connections)} connections>")

    def summary(self) -> pd.DataFrame:
        """Per QoS (as published): messages sent; expected deliveries; delivered once,
        duplicated and lost; latency percentiles (s); MQTT bytes of that QoS's packets and
        per delivered copy."""
        out = self.outcomes.loc[self.outcomes["expected"].astype(bool)]
        packets = self.packets
        qos_of_packet = packets["qos"].where(packets["type"] == "PUBLISH",
                                             packets["type"].map(QOS_OF_ACK))
        rows = []
        for qos in (0, 1, 2):
            o = out[out["qos_pub"] == qos]
            sent = int((self.published["qos"] == qos).sum())
            if not sent and o.empty:
                continue
            copies = int(o["copies"].sum())
            latency = o["latency"].dropna()
            mqtt_bytes = int(packets.loc[qos_of_packet == qos, "bytes"].sum())
            rows.append({
                "qos": qos, "sent": sent, "expected": len(o),
                "delivered": int((o["outcome"] == "delivered").sum()),
                "duplicates": int((o["outcome"] == "duplicate").sum()),
                "lost": int((o["outcome"] == "lost").sum()),
                "delivery_ratio": float((o["copies"] > 0).mean()) if len(o) else float("nan"),
                "p50_latency": float(latency.quantile(0.5)) if len(latency) else float("nan"),
                "p99_latency": float(latency.quantile(0.99)) if len(latency) else float("nan"),
                "mqtt_bytes": mqtt_bytes,
                "bytes_per_copy": mqtt_bytes / copies if copies else float("nan"),
            })
        return pd.DataFrame(rows).set_index("qos") if rows else pd.DataFrame()

    def to_csv(self, directory: str | os.PathLike) -> list[Path]:
        """Write every table as ``<table>.csv`` (and ``summary.csv``) into ``directory``,
        with ``run.json`` (scenario, seed, backend) so the run can be reported on later."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        about = folder / "run.json"
        about.write_text(json.dumps({"scenario": self.scenario.to_dict(),
                                     "source": self.scenario.source, "seed": self.seed,
                                     "backend": self.backend}, indent=1, default=str))
        written = [about]
        for name in TABLES:
            path = folder / f"{name}.csv"
            getattr(self, name).to_csv(path, index=False)
            written.append(path)
        path = folder / "summary.csv"
        self.summary().to_csv(path)
        return written + [path]

    def to_pcap(self, path: str | os.PathLike) -> int:
        """The simulated TCP traffic as a pcap file: synthetic IPv4/TCP headers around the
        real MQTT bytes, each segment at the time it was sent (lost ones included, as a
        capture at the sender would show them). Returns the number of packets written."""
        from .pcap import CapturedSegment, write_pcap
        if self._payloads is None:
            raise ValueError("this run kept no segment payloads: run it with capture=True")
        if self.scenario.transport != "tcp":
            raise ValueError("only the tcp transport has TCP segments to capture; the "
                             "datagram transport is a teaching model with no packet format")
        broker = self.scenario.broker.name
        captured = []
        for row, payload in zip(self.segments.itertuples(index=False), self._payloads):
            client_port = 1024 + row.conn % 64000
            from_broker = row.src == broker
            src_port, dst_port = ((BROKER_PORT, client_port) if from_broker
                                  else (client_port, BROKER_PORT))
            flags, seq, ack = _FLAGS[row.kind], int(row.seq), _int_or_none(row.ack)
            captured.append(CapturedSegment(float(row.t), row.src, row.dst, src_port, dst_port,
                                            seq, ack, payload or b"", flags))
        return write_pcap(path, captured)

    def broker_log(self) -> list[str]:
        """The broker's ``-v`` log lines, stamped with scenario time."""
        from ..net.log import BrokerLog
        log = BrokerLog(peer=self._peer_name, port=lambda conn: BROKER_PORT)
        return [f"{event.t:.3f}: {line}" for event in self.broker_events
                for line in log.lines(event)]

    def _peer_name(self, conn: Any) -> str:
        match = self.connections[self.connections["conn"] == conn]
        return f"{match['client'].iloc[0]}:{conn}" if len(match) else str(conn)


_FLAGS = {"syn": "S", "synack": "S", "ack": "", "data": "", "fin": "F", "rst": "R",
          "datagram": ""}


def _int_or_none(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def from_recording(recording: Any, backend: str = "sim") -> Results:
    """Tables from a ``Recording`` (the simulator's, or the sockets backend's)."""
    from ..world.recorder import (CONNECTION_COLUMNS, DROP_COLUMNS,
                                PACKET_COLUMNS, PUBLISH_COLUMNS, RECEIPT_COLUMNS,
                                SEGMENT_COLUMNS)
    rec, sc = recording.recorder, recording.scenario
    connections = list(rec.connections.values())

    def outcomes() -> pd.DataFrame:
        clean = {c.name: c.clean for c in sc.clients}
        options = {(c.name, s.topic): Subscription(s.topic, s.qos, s.no_local,
                                                   s.retain_as_published)
                   for c in sc.clients for s in c.subscribe}
        if getattr(sc, "bridges", ()):
            from .outcomes_bridged import bridged_outcomes
            return _frame(bridged_outcomes(sc, rec, connections, clean, options),
                          OUTCOME_COLUMNS)
        return _frame(outcome_rows(rec.publishes, rec.receipts, rec.accepts, rec.drops,
                                   rec.subscriptions, connections, clean, sc.transport,
                                   options, {c.name: c.version for c in sc.clients}),
                      OUTCOME_COLUMNS)

    def packets() -> pd.DataFrame:
        table = _frame(rec.packets, PACKET_COLUMNS)
        table["dropped"] = table["t_recv"].isna()
        return table

    def segments() -> pd.DataFrame:
        table = _frame(rec.segments, SEGMENT_COLUMNS)
        losses = rec.losses
        table["t_arrival"] = list(rec.arrivals)
        table["dropped"] = [losses[i][0] if i in losses else None for i in range(len(table))]
        table["hop"] = [losses[i][1] if i in losses else None for i in range(len(table))]
        return table

    def connection_table() -> pd.DataFrame:
        table = pd.DataFrame(connections, columns=CONNECTION_COLUMNS)
        table["outage"] = [_saw_outage(sc, recording.outages, row) for row in connections]
        return table

    tables = {
        "outcomes": outcomes,
        "packets": packets,
        "connections": connection_table,
        "segments": segments,
        "links": lambda: pd.DataFrame(recording.links),
        "received": lambda: _frame(rec.receipts, RECEIPT_COLUMNS),
        "published": lambda: _frame(rec.publishes, PUBLISH_COLUMNS),
        "drops": lambda: _frame(rec.drops, DROP_COLUMNS),
        "sys": lambda: sys_table(rec.sys_updates),
    }
    stats = {"events": recording.events_processed, "segments": len(rec.segments),
             "retransmitted_segments": sum(map(_RETRANSMISSION, rec.segments)),
             "packets": len(rec.packets)}
    return Results(sc, recording.seed, backend, tables, rec.broker_events if rec.capture else None,
                   rec.payloads if rec.capture else None, stats)


def sys_table(updates: list[tuple]) -> pd.DataFrame:
    """``Results.sys`` from (t, broker, {topic: payload}) rows: numbers, one column per
    topic without the ``$SYS/broker/`` prefix ("12 seconds" -> 12)."""
    rows = []
    for t, broker, values in updates:
        row = {"t": t, "broker": broker}
        for topic, payload in values.items():
            name = topic.removeprefix("$SYS/broker/")
            try:
                row[name] = float(payload.split()[0])
            except (ValueError, IndexError):
                continue
        rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["t", "broker"])


_RETRANSMISSION = itemgetter(8)  # of a segment row (a bool: summed, the count of True)


def _frame(rows: list, columns: tuple[str, ...]) -> pd.DataFrame:
    """A DataFrame from row lists, built column by column (several times faster than
    letting pandas infer types row by row on 100,000s of rows)."""
    if not rows:
        return pd.DataFrame(columns=list(columns))
    return pd.DataFrame({name: list(values) for name, values in zip(columns, zip(*rows))})


def _saw_outage(scenario: Any, outages: dict[str, list], row: dict) -> bool:
    """Did a link on this client's path go down while the connection was open?"""
    start = row["t_open"]
    end = row["t_down"] if row["t_down"] is not None else scenario.duration
    return any(o.start <= end and start < o.end for o in outages.get(row["client"], ()))
