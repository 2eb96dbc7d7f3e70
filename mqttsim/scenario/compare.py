"""Do two backends agree? One scenario, run on two backends (simulated and on real sockets by
default; ``backends=("sim", "kernel")`` against Linux's own TCP), side by side.

What must agree (a disagreement is a bug in one of them):

- every message's outcome class (delivered once / duplicate / lost) for every subscriber,
  and so the counts per QoS;
- how many connections ended, and why (per reason, as the side that learned first named it,
  and as the client and the broker each saw it);
- the MQTT packets per message, per QoS (the spec fixes them: 1, 2 and 4 per hop, plus
  whatever a broken connection makes an engine resend).

What may differ, within a stated tolerance: latencies. Real sockets add the loopback, the
event loop and Python's work to every hop, and a run at ``time_scale`` k stretches that
real delay k times in scenario time. The median latency per QoS agrees when
``|sim - sockets| <= absolute + per_scale * time_scale + relative * sim``.
Tail latencies are shown, not judged: with loss they depend on which segments the random
draws hit, and the two runs put segments on the links at slightly different moments.

What per-message agreement cannot promise: a link draws its losses in the order packets
meet it, and two events due at the very same instant run in scheduling order in the
simulator but in whatever order the operating system delivers them on sockets. Where
packets tie and random loss decides a message's fate (the datagram transport, or TCP
give-ups under random loss), the two backends are two draws of the same experiment: their
counts agree in distribution, not message by message -- compare them over seeds. Races
closer than the real-time jitter of the machine times the time scale can also go either
way; pick the time scale so the scenario's closest race stays wider than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .results import QOS_OF_ACK, Results

COLUMNS = ("metric", "qos", "sim", "sockets", "agree")  # the middle two: the backends' names
BACKEND_PAIRS = {("sim", "sockets"), ("sim", "kernel"), ("sockets", "kernel")}
ALL_THREE = ("sim", "sockets", "kernel")
# Rows listed only when one of the two runs has them (a reason nobody saw is not shown).
_LISTED_WHEN_SEEN = ("disconnect reason: ", "broker saw: ", "client saw: ")


@dataclass(frozen=True)
class LatencyTolerance:
    """How far the median latencies (scenario seconds) may be apart, and still agree."""

    absolute: float = 0.02
    per_scale: float = 0.02  # real seconds of overhead per delivery, times the time scale
    relative: float = 0.15

    def allows(self, sim: float, sockets: float, time_scale: float) -> bool:
        if pd.isna(sim) or pd.isna(sockets):
            return bool(pd.isna(sim) and pd.isna(sockets))
        limit = self.absolute + self.per_scale * time_scale + self.relative * abs(sim)
        return abs(sim - sockets) <= limit


@dataclass(frozen=True)
class Comparison:
    """Both runs and the side-by-side table (``COLUMNS``, with the backends' names); ``agree``
    is True when every row that must agree does. ``runs`` by backend name; ``sim``,
    ``sockets`` and ``kernel`` read them."""

    runs: dict[str, Results]
    table: pd.DataFrame
    time_scale: float

    @property
    def sim(self) -> Results:
        return self._run("sim")

    @property
    def sockets(self) -> Results:
        return self._run("sockets")

    @property
    def kernel(self) -> Results:
        return self._run("kernel")

    def _run(self, backend: str) -> Results:
        if backend not in self.runs:
            raise AttributeError(f"this comparison ran {', '.join(self.runs)}, not {backend}")
        return self.runs[backend]

    @property
    def agree(self) -> bool:
        return bool(self.table["agree"].fillna(True).all())

    @property
    def disagreements(self) -> pd.DataFrame:
        return self.table[self.table["agree"] == False]  # noqa: E712 - None means not judged

    def __str__(self) -> str:
        shown = self.table.copy()
        shown["agree"] = shown["agree"].map({True: "yes", False: "NO", None: ""})
        # Rows about the whole run (connections, the clock lag) have no QoS: a dash, not NaN.
        shown["qos"] = shown["qos"].map(_qos_cell)
        verdict = ("the backends agree" if self.agree else
                   f"the backends DISAGREE on {len(self.disagreements)} rows")
        with pd.option_context("display.width", 120, "display.max_rows", 500,
                               "display.float_format", "{:.4g}".format):
            return f"{shown.to_string(index=False)}\n\n{verdict}"


def _qos_cell(qos: Any) -> str:
    return "-" if qos is None or pd.isna(qos) else str(int(qos))


def compare(scenario: Any, seed: int = 1, time_scale: float = 1.0, broker: Any = None,
            tolerance: LatencyTolerance = LatencyTolerance(),
            backends: tuple[str, str] = ("sim", "sockets")) -> Comparison:
    """Run ``scenario`` on two backends with ``seed`` and compare what must agree.
    ``time_scale`` and ``broker`` are the sockets backend's; the kernel runs in real time."""
    from .run import run
    backends = tuple(backends)
    if backends not in BACKEND_PAIRS and backends != ALL_THREE:
        pairs = ", ".join(sorted(",".join(p) for p in BACKEND_PAIRS | {ALL_THREE}))
        raise ValueError(f"compare takes two backends (or all three), one of: {pairs}; not "
                         f"{','.join(backends)}")
    if "sockets" in backends and not time_scale > 0:
        raise ValueError(f"time_scale must be a positive number (scenario seconds per real "
                         f"second), not {time_scale!r}")
    runs = {}
    for backend in backends:
        options = ({"time_scale": time_scale, "broker": broker} if backend == "sockets" else {})
        runs[backend] = run(scenario, seed=seed, backend=backend, **options)
    scale = time_scale if "sockets" in backends else 1.0
    if backends == ALL_THREE:
        return Comparison(runs, _three_way(runs, scale, tolerance), scale)
    first, second = (runs[b] for b in backends)
    return Comparison(runs, agreement_table(first, second, scale, tolerance, backends), scale)


def _three_way(runs: dict[str, Results], time_scale: float,
               tolerance: LatencyTolerance) -> pd.DataFrame:
    """sim against sockets and sim against kernel, one row per metric: a row agrees when
    both pairs do (the kernel's latencies judged at its real time, scale 1)."""
    pairs = [agreement_table(runs["sim"], runs["sockets"], time_scale, tolerance,
                             ("sim", "sockets")),
             agreement_table(runs["sim"], runs["kernel"], 1.0, tolerance, ("sim", "kernel"))]
    pairs[0]["_first"] = range(len(pairs[0]))
    pairs[1]["_second"] = range(len(pairs[0]), len(pairs[0]) + len(pairs[1]))
    table = pairs[0].merge(pairs[1], on=["metric", "qos"], how="outer",
                           suffixes=("_sockets", "_kernel"))
    table = table.sort_values(by="_first", key=lambda first: first.fillna(
        table["_second"])).reset_index(drop=True)  # in the pairs' own order
    table["sim"] = table["sim_sockets"].combine_first(table["sim_kernel"])
    seen_only = table["metric"].str.startswith(_LISTED_WHEN_SEEN)
    for backend in ("sockets", "kernel"):
        missing = table[backend].isna() & seen_only
        table.loc[missing, backend] = 0  # neither run of that pair saw this reason
        table.loc[missing, f"agree_{backend}"] = table.loc[missing, "sim"] == 0

    def both(row: Any) -> Any:
        verdicts = [v for v in (row["agree_sockets"], row["agree_kernel"])
                    if v is not None and not pd.isna(v)]
        return all(verdicts) if verdicts else None

    table["agree"] = table.apply(both, axis=1) if len(table) else []
    return table[["metric", "qos", "sim", "sockets", "kernel", "agree"]]


def agreement_table(sim: Results, sockets: Results, time_scale: float = 1.0,
                    tolerance: LatencyTolerance = LatencyTolerance(),
                    names: tuple[str, str] = ("sim", "sockets")) -> pd.DataFrame:
    """The side-by-side rows of two runs (``sim`` and ``sockets`` are the first and second,
    whichever backends ran them; ``names`` heads their columns)."""
    rows: list[tuple] = []
    rows += _outcome_rows(sim, sockets)
    rows += _connection_rows(sim, sockets)
    rows += _packet_rows(sim, sockets)
    rows += _latency_rows(sim, sockets, time_scale, tolerance)
    lag = sockets.stats.get("max_lag")
    if lag is not None:
        rows.append((f"{names[1]} clock lag, max (s), not judged", None, 0.0, lag, None))
    return pd.DataFrame(rows, columns=["metric", "qos", names[0], names[1], "agree"])


def _expected(res: Results) -> pd.DataFrame:
    return res.outcomes.loc[res.outcomes["expected"].astype(bool)]


def _qos_levels(sim: Results, sockets: Results) -> list[int]:
    found = set(sim.published["qos"]) | set(sockets.published["qos"])
    return sorted(int(q) for q in found)


def _outcome_rows(sim: Results, sockets: Results) -> list[tuple]:
    rows = []
    a, b = _expected(sim), _expected(sockets)
    pairs = a.merge(b, on=["msg_id", "subscriber"], how="outer", suffixes=("_sim", "_so"),
                    indicator=True)
    for qos in _qos_levels(sim, sockets):
        sa, sb = a[a["qos_pub"] == qos], b[b["qos_pub"] == qos]
        sent = (int((sim.published["qos"] == qos).sum()),
                int((sockets.published["qos"] == qos).sum()))
        rows.append(("messages sent", qos, *sent, sent[0] == sent[1]))
        for outcome in ("delivered", "duplicate", "lost"):
            n = (int((sa["outcome"] == outcome).sum()), int((sb["outcome"] == outcome).sum()))
            rows.append((f"outcome: {outcome}", qos, *n, n[0] == n[1]))
        mine = pairs[(pairs["qos_pub_sim"] == qos) | (pairs["qos_pub_so"] == qos)]
        differ = int(((mine["_merge"] != "both")
                      | (mine["outcome_sim"] != mine["outcome_so"])).sum())
        rows.append(("messages with another outcome", qos, 0, differ, differ == 0))
    return rows


def _connection_rows(sim: Results, sockets: Results) -> list[tuple]:
    rows = []
    ended = [r.connections.dropna(subset=["reason"]) for r in (sim, sockets)]
    n = (len(ended[0]), len(ended[1]))
    rows.append(("disconnects", None, *n, n[0] == n[1]))
    opened = (len(sim.connections), len(sockets.connections))
    rows.append(("connections opened", None, *opened, opened[0] == opened[1]))
    for column, label in (("reason", "disconnect reason"), ("broker_reason", "broker saw"),
                          ("client_reason", "client saw")):
        counts = [e[column].dropna().value_counts() for e in ended]
        for reason in sorted(set(counts[0].index) | set(counts[1].index)):
            c = (int(counts[0].get(reason, 0)), int(counts[1].get(reason, 0)))
            rows.append((f"{label}: {reason}", None, *c, c[0] == c[1]))
    return rows


def _packet_rows(sim: Results, sockets: Results) -> list[tuple]:
    rows = []
    per_qos = []
    for res in (sim, sockets):
        packets = res.packets
        qos_of = packets["qos"].where(packets["type"] == "PUBLISH",
                                      packets["type"].map(QOS_OF_ACK))
        per_qos.append(qos_of.value_counts())
    for qos in _qos_levels(sim, sockets):
        sent = [int((r.published["qos"] == qos).sum()) for r in (sim, sockets)]
        ratio = [int(c.get(qos, 0)) / s if s else float("nan") for c, s in zip(per_qos, sent)]
        rows.append(("MQTT packets per message", qos, *ratio,
                     round(ratio[0], 6) == round(ratio[1], 6)))
    return rows


def _latency_rows(sim: Results, sockets: Results, time_scale: float,
                  tolerance: LatencyTolerance) -> list[tuple]:
    rows = []
    a, b = _expected(sim), _expected(sockets)
    for qos in _qos_levels(sim, sockets):
        la = a.loc[a["qos_pub"] == qos, "latency"].dropna().astype(float)
        lb = b.loc[b["qos_pub"] == qos, "latency"].dropna().astype(float)
        p50 = (la.median() if len(la) else float("nan"), lb.median() if len(lb) else float("nan"))
        rows.append(("p50 latency (s)", qos, *p50, tolerance.allows(*p50, time_scale)))
        p99 = (la.quantile(0.99) if len(la) else float("nan"),
               lb.quantile(0.99) if len(lb) else float("nan"))
        rows.append(("p99 latency (s), not judged", qos, *p99, None))
    return rows
