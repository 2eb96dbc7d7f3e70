"""Sweep speed-up: the same 60-run sweep on one process and on local worker processes.

lossy-2g (five 2G sensors at QoS 1 through 5 % loss), run for 600 s instead of 300 so that
a run takes ~0.5 s, over link.loss x qos (3 x 2 points) with 10 seeds: 60 runs.
``workers=1`` runs them one after the other in this process; ``workers=2`` on two worker
processes, their start-up included in the wall time.
No cache, so every run is really run. Both sweeps must give the same table; the script
says so and fails otherwise. Prints both wall times and the speed-up, then one JSON line.

A shared machine rarely gives a process every core it has, so the same call also measures
a yardstick: a pure-Python loop on 1 process, then on N processes at once (pool started
before the clock). Its speed-up is what the machine could give at that moment; the sweep's
speed-up over it is the part of the ideal that the sweep reached.

    python benchmarks/sweep.py                      # the issue's figure (2 cores: >= 1.7x)
    python benchmarks/sweep.py --seeds 3 --workers 1 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from mqttsim.lab.sweep import sweep
from mqttsim.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent
GRID = {"link.loss": [0.02, 0.05, 0.1], "qos": [1, 2]}
LONGER = {"duration": 600.0, "clients.field.publish.0.stop": 580.0}  # lossy-2g's own keys


def _burn(n: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i
    return time.perf_counter() - start


def yardstick(workers: int, n: int = 5_000_000) -> float:
    """Speed-up of ``workers`` processes over one on pure CPU work, measured now."""
    import multiprocessing
    one = _burn(n)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_burn, [1] * workers)  # started and warm before the clock
        start = time.perf_counter()
        pool.map(_burn, [n] * workers, chunksize=1)
        together = time.perf_counter() - start
    return round(workers * one / together, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(ROOT / "data" / "scenarios" / "lossy-2g.toml"))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="worker counts to compare; the first is the reference")
    ap.add_argument("--no-yardstick", action="store_true")
    a = ap.parse_args(argv)

    scenario = Scenario.load(a.scenario)
    if scenario.name == "lossy-2g":
        scenario = scenario.with_(**LONGER)
    runs = 3 * 2 * a.seeds
    walls: dict[int, float] = {}
    machine: dict[int, float] = {}
    tables = []
    for workers in a.workers:
        if workers > 1 and not a.no_yardstick:
            machine[workers] = yardstick(workers)
        t0 = time.perf_counter()
        result = sweep(scenario, GRID, seeds=a.seeds, workers=workers, cache_dir=False,
                       progress=False)
        walls[workers] = time.perf_counter() - t0
        if result.failures or not result.complete:
            print(f"workers={workers}: {result!r}: {result.failures[:3]}", file=sys.stderr)
            return 1
        tables.append(result.table)
        print(f"workers={workers}: {runs} runs in {walls[workers]:.2f} s "
              f"({walls[workers] / runs:.3f} s a run)")
    for table in tables[1:]:
        pd.testing.assert_frame_equal(tables[0], table)
    print("every worker count gave the same table")
    reference = a.workers[0]
    speedups = {w: round(walls[reference] / walls[w], 2) for w in a.workers[1:]}
    for workers, speedup in speedups.items():
        print(f"speed-up with {workers} workers over {reference}: {speedup:.2f}x")
        if workers in machine:
            print(f"  the machine gave {workers} processes {machine[workers]:.2f}x just before "
                  f"(yardstick): the sweep reached {speedup / machine[workers]:.0%} of that")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(json.dumps({"benchmark": "sweep", "scenario": scenario.name, "runs": runs,
                      "grid": GRID, "seeds": a.seeds, "cpus": os.cpu_count(),
                      "wall_s": {str(w): round(t, 2) for w, t in walls.items()},
                      "speedup": {str(w): s for w, s in speedups.items()},
                      "machine_speedup": {str(w): s for w, s in machine.items()},
                      "load_average_1min_after": load}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
