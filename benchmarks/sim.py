"""Simulator speed: 100 publishers + 100 subscribers through one broker, QoS 1, 1 ms links,
1% segment loss, until 200,000 deliveries -- the real codec, engines and TCP model.

Runs ``../shared/bench/simpy_baseline.py`` (a bare SimPy model of the same exchange, no codec,
no engines) in the same call when it is there and reports the ratio, because machines are
noisy and only a ratio measured side by side means anything. Prints deliveries and events
per wall second and ends with one JSON line (``deliveries_per_wall_s`` is the baseline's key).

    python benchmarks/sim.py                      # the issue's figure
    python benchmarks/sim.py --deliveries 20000   # a quick look
    python benchmarks/sim.py --clients 10000 --deliveries 10000 --no-baseline   # memory
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from mqttsim.scenario import Scenario, run

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT.parent / "shared" / "bench" / "simpy_baseline.py"


def build(pubs: int, subs: int, deliveries: int, interval: float, loss: float,
          latency: float) -> Scenario:
    """Publisher i publishes to topic t/(i mod subs); subscriber j subscribes to t/j:
    each message has exactly one receiver, as in the baseline."""
    per_pub = -(-deliveries // pubs)
    duration = per_pub * interval * 1.2 + 10.0  # Poisson spread plus time to drain
    clients = [{"name": f"s{j}", "subscribe": [f"t/{j}"]} for j in range(subs)]
    clients += [{"name": f"p{i}", "publish": {"topic": f"t/{i % subs}", "pattern": "poisson",
                                              "interval": interval, "count": per_pub,
                                              "start": 1.0}}
                for i in range(pubs)]
    return Scenario.from_dict({"name": "bench", "duration": duration, "qos": 1,
                               "link": {"latency": latency, "loss": loss},
                               "clients": clients})


def baseline(deliveries: int) -> dict | None:
    if not BASELINE.exists():
        return None
    out = subprocess.run([sys.executable, str(BASELINE), "--deliveries", str(deliveries)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deliveries", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=100, help="publishers (= subscribers)")
    ap.add_argument("--interval", type=float, default=0.01, help="mean s between messages")
    ap.add_argument("--loss", type=float, default=0.01, help="segment loss per link")
    ap.add_argument("--latency", type=float, default=0.001)
    ap.add_argument("--capture", action="store_true",
                    help="keep segment payloads and broker events (pcap, -v log)")
    ap.add_argument("--no-baseline", action="store_true")
    a = ap.parse_args(argv)

    scenario = build(a.clients, a.clients, a.deliveries, a.interval, a.loss, a.latency)
    t0 = time.perf_counter()
    res = run(scenario, seed=1, capture=a.capture)
    wall = time.perf_counter() - t0
    delivered = int(res.outcomes["copies"].sum())
    lost = int((res.outcomes["outcome"] == "lost").sum())
    events = res.stats["events"]
    ours = {
        "model": f"{a.clients}pub/{a.clients}sub/1broker QoS 1, real codec+engines, TCP model",
        "deliveries": delivered, "lost": lost,
        "duplicates": int((res.outcomes["outcome"] == "duplicate").sum()),
        "retransmitted_segments": res.stats["retransmitted_segments"],
        "sim_time_s": scenario.duration, "wall_s": round(wall, 2),
        "deliveries_per_wall_s": round(delivered / wall),
        "events_per_wall_s": round(events / wall),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(f"mqttsim: {ours['deliveries_per_wall_s']:,} deliveries/s, "
          f"{ours['events_per_wall_s']:,} events/s, {delivered:,} deliveries in {wall:.1f} s, "
          f"{lost} lost, max RSS {ours['max_rss_mb']} MB")
    ref = None if a.no_baseline else baseline(a.deliveries)
    if ref is not None:
        ours["baseline_deliveries_per_wall_s"] = ref["deliveries_per_wall_s"]
        ours["ratio_to_baseline"] = round(ours["deliveries_per_wall_s"]
                                          / ref["deliveries_per_wall_s"], 3)
        print(f"bare SimPy baseline: {ref['deliveries_per_wall_s']:,} deliveries/s -> "
              f"ratio {ours['ratio_to_baseline']}x (issue 16 asks >= 0.7x)")
    print(json.dumps(ours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
