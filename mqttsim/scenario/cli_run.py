"""``mqttsim run SCENARIO.toml``: run a scenario, print what happened, write the tables.

What it prints, in order: with ``-v`` the broker's log (as ``mqttsim broker -v`` would
print it, stamped with scenario time); what the subscribers received (as ``sub -v`` prints
it: topic, space, payload), the first few; how connections ended; the per-QoS summary.
"""

from __future__ import annotations

import argparse
import sys

EXIT_BAD_SCENARIO = 2
SHOWN_MESSAGES = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO.toml", help="the scenario file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a key, e.g. --set link.loss=0.1 --set qos=1 "
                             "--set clients.sub.keepalive=30 (repeatable)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--backend", choices=("sim",), default="sim",
                        help="sim: the SimPy simulator (the default)")
    parser.add_argument("--out", metavar="DIR",
                        help="write every table as DIR/<table>.csv (and summary.csv)")
    parser.add_argument("--pcap", metavar="FILE",
                        help="write the simulated TCP traffic as a pcap file (Wireshark)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the broker's log, like mqttsim broker -v")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from . import Scenario, ScenarioError
    from . import run as run_scenario
    from .load import parse_set

    try:
        scenario = Scenario.load(args.scenario)
        if args.overrides:
            scenario = scenario.with_(**parse_set(args.overrides))
    except (ScenarioError, OSError) as exc:
        print(f"mqttsim run: {exc}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    res = run_scenario(scenario, seed=args.seed, backend=args.backend)
    if args.verbose:
        for line in res.broker_log():
            print(line)
        print()
    print(f"{scenario.name}: {scenario.description}" if scenario.description else scenario.name)
    print(f"{len(scenario.clients)} clients, {scenario.duration:g} s, transport "
          f"{scenario.transport}, seed {args.seed}\n")
    received = res.received
    if len(received):
        print(f"received ({len(received)} copies{', first shown' if len(received) > SHOWN_MESSAGES else ''}):")
        for row in received.head(SHOWN_MESSAGES).itertuples(index=False):
            print(f"  {row.t:9.3f}  {row.subscriber}: {row.topic} "
                  f"{row.payload.decode('utf-8', 'replace')}")
        print()
    ended = res.connections.dropna(subset=["reason"])
    if len(ended):
        print("connections ended:")
        for (reason, side), n in ended.groupby(["reason", "side"]).size().items():
            print(f"  {n:5d}  {reason} (seen first by the {side})")
        print()
    with pd.option_context("display.width", 120, "display.max_columns", 20,
                           "display.float_format", "{:.4g}".format):
        summary = res.summary()
        print(summary.to_string() if len(summary) else "no messages were published")
    if args.out:
        written = res.to_csv(args.out)
        print(f"\nwrote {len(written)} tables to {args.out}")
    if args.pcap:
        count = res.to_pcap(args.pcap)
        print(f"wrote {count} packets to {args.pcap}")
    return 0
