"""The simulator's TCP against Linux's: one matrix, both backends, one table (issue 16).

Each case is the issue's yardstick workload -- three publishers (QoS 0, 1, 2), 64-byte
messages at 10/s each, a subscriber on ``t/#`` -- across one network condition:

- loss {0, 5, 15, 25 %} x one-way latency {1, 50, 300 ms}, bandwidth unlimited;
- bandwidth {64, 9.6 kbit/s} at 50 ms (9.6 kbit/s is below the offered ~26 kbit/s);
- a 20 s outage of the publishers' links, keepalive 10 s (connections break) and 60 s
  (they survive);
- an overloaded uplink: 200 B every 13 ms (150 kbit/s) into 100 kbit/s with a 10-packet
  queue, QoS 0 (the issue's finding 2).

Per case and QoS it reports expected and delivered messages, the messages neither delivered
nor lost with a broken connection (``in_flight_at_end``: over TCP a message is delivered or
a connection breaks, so these are still on their way when the run stops -- a slower TCP has
more), latency p50/p90/p99, goodput and the first disconnect time, for ``sim`` and for
``kernel`` (Linux's
TCP in network namespaces, issue 15), and whether each pair meets the issue's targets:
delivered within 2 %, p50 and p90 within 25 %, p99 within 50 %, goodput within 20 %,
disconnect times within 10 %, identical outcome classes.

The kernel column needs ``mqttsim.run(..., backend="kernel")`` (root, /dev/net/tun). When
this tree has no kernel backend, ``--kernel-tree DIR`` runs that column with the package in
DIR (a checkout of the kernel backend's branch) in a subprocess; without either, the
column is left empty and marked. Kernel runs take real time (about 40 s a case).

    python benchmarks/fidelity.py                        # sim only, 3 seeds, the full matrix
    python benchmarks/fidelity.py --kernel --seeds 1     # both (needs the kernel backend)
    python benchmarks/fidelity.py --kernel --kernel-tree /tmp/k15 --cases loss15-50ms,outage-ka10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MESSAGES, RATE, SIZE = 200, 10.0, 64
START = 2.0

TARGETS = {  # metric: relative tolerance (what the issue asks)
    "delivered_pct": 0.02, "p50": 0.25, "p90": 0.25, "p99": 0.50, "goodput": 0.20,
    "t_disconnect": 0.10,
}
# The kernel column's latencies include the user-space link emulator's own forwarding delay
# and jitter (a few ms on a loaded machine: benchmarks/kernel_emulator.py on the kernel
# branch). A latency difference smaller than this is marked "~" (within the emulator's
# noise) rather than judged against a relative target that a 2 ms path cannot meet.
NOISE_FLOOR = {"p50": 0.005, "p90": 0.01, "p99": 0.02}


def _publishers(link: dict | None = None, qos: tuple = (0, 1, 2), count: int = MESSAGES,
                interval: float = 1 / RATE, size: int = SIZE, start: float = START) -> list[dict]:
    out = []
    for q in qos:
        client = {"name": f"p{q}", "publish": {"topic": f"t/{q}", "qos": q, "count": count,
                                                "interval": interval, "start": start,
                                                "size": size}}
        if link:
            client["link"] = link
        out.append(client)
    return out


def cases() -> dict[str, dict]:
    """name -> scenario dict (the loader checks it)."""
    subscriber = {"name": "sub", "subscribe": [{"topic": "t/#", "qos": 2}]}
    found: dict[str, dict] = {}
    for loss in (0.0, 0.05, 0.15, 0.25):
        for latency in (0.001, 0.05, 0.3):
            name = f"loss{round(loss * 100)}-{round(latency * 1000)}ms"
            slow = loss > 0.1 or latency > 0.1  # time to drain what loss held back
            # At 15 % loss and more a handshake may need SYN retries (1, 3, 7, 15 s):
            # publishing starts once the subscription stands on either backend.
            start = 16.0 if loss > 0.1 else START
            found[name] = {"link": {"latency": latency, "loss": loss},
                           "duration": (60.0 if slow else 35.0) + start - START,
                           "clients": [subscriber] + _publishers(start=start)}
    for bandwidth in (64_000, 9_600):
        found[f"bw{bandwidth // 1000 if bandwidth >= 1000 else bandwidth}k-50ms".replace(
            "9k", "9.6k")] = {"link": {"latency": 0.05, "bandwidth": bandwidth},
                               "duration": 90.0, "clients": [subscriber] + _publishers()}
    for keepalive in (10, 60):
        outage = {"outages": [[8.0, 28.0]], "latency": 0.02}
        found[f"outage-ka{keepalive}"] = {
            "link": {"latency": 0.02}, "keepalive": keepalive, "clean": False,
            "duration": 80.0,
            "clients": [dict(subscriber, session_expiry=3600)]
            + [dict(p, session_expiry=3600) for p in _publishers(link=outage)]}
    found["overload-100k"] = {
        "link": {"latency": 0.02}, "duration": 45.0,
        "clients": [subscriber] + _publishers(link={"up": {"bandwidth": 100_000, "queue": 10}},
                                              qos=(0,), count=1519, interval=0.013,
                                              size=200)}
    return found


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def metrics(res: Any) -> dict[str, dict[str, Any]]:
    """Per QoS: what the table compares, from a ``Results`` of any backend. ``expected``
    (not judged) depends on when a lossy handshake let the subscription in, so delivery is
    compared as a share of it."""
    o = res.outcomes
    o = o[o["expected"]]
    conns = res.connections
    broke = conns[conns["t_down"].notna()]
    first_down = float(broke["t_down"].min()) if len(broke) else None
    out = {}
    for qos, group in o.groupby("qos_pub"):
        delivered = group[group["outcome"].isin(["delivered", "duplicate"])]
        lost = group[group["outcome"] == "lost"]
        publisher = str(group["publisher"].iloc[0])
        involved = broke[broke["client"].isin([publisher, "sub"])]
        latencies = [float(x) for x in delivered["latency"].dropna()]
        span = (float(delivered["t_first_delivery"].max()) - float(group["t_pub"].min())
                if len(delivered) else 0)
        out[str(int(qos))] = {
            "expected": int(len(group)), "delivered": int(len(delivered)),
            "delivered_pct": 100.0 * len(delivered) / len(group) if len(group) else None,
            "in_flight_at_end": 0 if len(involved) else int(len(lost)),
            "p50": _quantile(latencies, 0.5), "p90": _quantile(latencies, 0.9),
            "p99": _quantile(latencies, 0.99),
            "goodput": (8 * float(delivered["bytes"].sum()) / span
                        if "bytes" in delivered and span > 0 else
                        8 * SIZE * len(delivered) / span if span > 0 else None),
            "t_disconnect": first_down, "disconnects": int(len(broke)),
        }
    return out


def run_one(name: str, seed: int, backend: str) -> dict:
    from mqttsim import Scenario, run
    scenario = Scenario.from_dict({"name": name, **cases()[name]})
    return metrics(run(scenario, seed=seed, backend=backend, capture=False))


def kernel_available() -> bool:
    try:
        from mqttsim.scenario.run import BACKENDS
    except ImportError:
        return False
    return "kernel" in BACKENDS


def run_kernel(name: str, seed: int, tree: str | None) -> dict | str:
    """The kernel column: in this process if the backend is here, else with ``tree``'s
    package in a subprocess, else a note saying why not."""
    if kernel_available():
        try:
            return run_one(name, seed, "kernel")
        except Exception as exc:  # a missing requirement: say it in the table
            return f"failed: {exc}".splitlines()[0]
    if tree is None:
        return "no kernel backend in this tree"
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, __file__, "--worker", name, str(seed)],
                          capture_output=True, text=True, env=env, cwd=tree, timeout=900)
    if done.returncode != 0:
        return f"failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def combine(runs: list[dict]) -> dict:
    """Seeds together: every figure is the mean over seeds (so that columns with different
    numbers of seeds compare)."""
    out: dict[str, dict] = {}
    for qos in sorted({q for r in runs for q in r}):
        rows = [r[qos] for r in runs if qos in r]
        out[qos] = {k: _mean([row[k] for row in rows]) for k in rows[0]}
    return out


def verdict(metric: str, sim: Any, kernel: Any) -> str:
    if kernel is None or isinstance(kernel, str):
        return ""
    if metric == "in_flight_at_end":  # the outcome class: all delivered, or some still on the way
        return "yes" if (sim == 0) == (kernel == 0) else "NO"
    if metric == "delivered_pct" and sim is not None and kernel is not None:
        return "yes" if abs(sim - kernel) <= 100 * TARGETS[metric] else "NO"
    if metric not in TARGETS:
        return ""
    if sim is None or kernel is None:
        return "yes" if sim is None and kernel is None else "NO"
    if kernel == 0:
        return "yes" if sim == 0 else "NO"
    if abs(sim - kernel) <= TARGETS[metric] * abs(kernel):
        return "yes"
    return "~" if abs(sim - kernel) <= NOISE_FLOOR.get(metric, 0.0) else "NO"


COLUMNS = ("expected", "delivered_pct", "in_flight_at_end", "p50", "p90", "p99", "goodput",
           "t_disconnect")


def table(sim: dict[str, dict], kernel: dict[str, dict | str]) -> str:
    head = f"{'case':<14} {'qos':>3} " + " ".join(
        f"{m[:13]:>27}" for m in COLUMNS)
    sub = f"{'':<14} {'':>3} " + " ".join(f"{'sim':>9}{'kernel':>10}{'ok':>8}" for _ in COLUMNS)
    lines = [head, sub]
    for name, by_qos in sim.items():
        k = kernel.get(name)
        for qos, row in by_qos.items():
            if qos == "seeds":
                continue
            cells = []
            for m in COLUMNS:
                kv = k.get(qos, {}).get(m) if isinstance(k, dict) else None
                cells.append(f"{_fmt(row[m]):>9}{_fmt(kv) if isinstance(k, dict) else '--':>10}"
                             f"{verdict(m, row[m], kv) if isinstance(k, dict) else '':>8}")
            lines.append(f"{name:<14} {qos:>3} " + " ".join(cells))
        if isinstance(k, str):
            lines.append(f"{'':<14}     kernel: {k}")
        elif isinstance(k, dict) and "seeds" in k:
            lines.append(f"{'':<14}     kernel seeds: {', '.join(k['seeds'])}")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--kernel", action="store_true", help="run the kernel column too")
    ap.add_argument("--kernel-tree", help="a tree with the kernel backend, for the column")
    ap.add_argument("--json", help="also write the raw numbers here")
    ap.add_argument("--kernel-from", action="append", default=[],
                    help="take the kernel column from --json files of earlier runs (kernel "
                         "runs take real time); several files: their seeds together")
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(run_one(args.worker[0], int(args.worker[1]), "kernel")))
        return 0
    names = args.cases.split(",") if args.cases else list(cases())
    unknown = [n for n in names if n not in cases()]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(cases())}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    sim = {n: combine([run_one(n, s, "sim") for s in seeds]) for n in names}
    runs: dict[str, dict[str, Any]] = {}  # case -> seed -> metrics (or a note)
    for path in args.kernel_from:
        text = Path(path).read_text().replace('"lost_without_disconnect"', '"in_flight_at_end"')
        for case, by_seed in json.loads(text)["kernel_runs"].items():
            for got in by_seed.values():  # files from before delivered_pct
                for row in (got.values() if isinstance(got, dict) else ()):
                    if "delivered_pct" not in row and row.get("expected"):
                        row["delivered_pct"] = 100.0 * row["delivered"] / row["expected"]
            runs.setdefault(case, {}).update(by_seed)
    kernel: dict[str, Any] = {}
    for n in names:
        if args.kernel and n not in runs:
            for seed in seeds:
                runs.setdefault(n, {})[str(seed)] = run_kernel(n, seed, args.kernel_tree)
            print(f"kernel {n}: done", file=sys.stderr, flush=True)
            if args.json:  # as it goes: kernel runs are slow and may be stopped
                Path(args.json).write_text(json.dumps({"kernel_runs": runs}, indent=1))
        got = list(runs.get(n, {}).values())
        notes = [g for g in got if isinstance(g, str)]
        kernel[n] = (notes[0] if notes else combine(got) if got
                     else "not run (--kernel)")
        if got and not notes:
            kernel[n]["seeds"] = sorted(runs[n])
    print(f"sim seeds {list(seeds)}; kernel seeds per case in the notes; targets: delivered +-2 %, p50/p90 +-25 %, p99 +-50 %, "
          f"goodput +-20 %, first disconnect +-10 %, same outcome class (in flight at the "
          f"end: none on both, or some on both); "
          f"'~': a latency gap within the emulator's noise (5/10/20 ms for p50/p90/p99)")
    print(table(sim, kernel))
    if args.json:
        Path(args.json).write_text(json.dumps({"kernel_runs": runs, "sim": sim}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
