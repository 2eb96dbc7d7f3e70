"""``mqttsim sweep`` and ``mqttsim report``: the lab's sweeps and reports from the shell.

``mqttsim sweep SCENARIO.toml --grid link.loss=0,0.05,0.1 --grid qos=0,1,2 --seeds 10
--out DIR`` runs every combination with every seed and writes the tidy table (CSV, and
Parquet when pyarrow is installed), the means with confidence intervals and one PNG per
grid key and metric; ``mqttsim report DIR -o report.html`` turns that directory, or one
written by ``mqttsim run --out``, into a single HTML file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_FAILED_RUNS = 1
EXIT_INTERRUPTED = 130  # what a shell reports for Ctrl-C
SHOWN_METRICS = ("delivery_ratio", "lost", "duplicates", "p99_latency", "bytes_per_copy")


def split_values(text: str) -> list[str]:
    """``"0,0.05,[[60, 90]]"`` -> ``["0", "0.05", "[[60, 90]]"]``: commas split values
    except inside brackets, braces or quotes, so lists and tables can be grid values."""
    values, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    values.append("".join(current).strip())
    return values


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["link.loss=0,0.05", "transport=tcp,datagram"]`` -> ``{"link.loss": [0, 0.05],
    "transport": ["tcp", "datagram"]}``; each value is read as ``--set`` reads it."""
    from ..scenario import ScenarioError
    from ..scenario.load import parse_set
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ScenarioError(f"--grid {item!r}: expected KEY=VALUE,VALUE,..., "
                                f"e.g. link.loss=0,0.05,0.1")
        if key in grid:
            raise ScenarioError(f"--grid {key} is given twice; put all its values in one "
                                f"--grid {key}=...")
        grid[key] = [parse_set([f"{key}={value}"])[key] for value in split_values(text)]
    return grid


def parse_seeds(text: str) -> int | list[int]:
    """``"10"`` -> 10 seeds (0..9); ``"1,5,9"`` -> those seeds."""
    try:
        if "," in text:
            return [int(part) for part in text.split(",") if part.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seeds (10) or seeds "
                                         f"separated by commas (1,5,9), not {text!r}") from None


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO.toml", help="the scenario file")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a parameter and its values, e.g. --grid link.loss=0,0.05,0.1 "
                             "(repeatable: every combination is run)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a key for every run (repeatable)")
    parser.add_argument("--seeds", type=parse_seeds, default=10, metavar="N|S1,S2,...",
                        help="seeds per grid point: a count (default 10: seeds 0..9) or a list")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="local worker processes (default: one per core; 1: no pool)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run on a Dask cluster instead, e.g. tcp://scheduler:8786")
    parser.add_argument("--out", metavar="DIR",
                        help="write sweep.csv (one row per point, seed and QoS), "
                             "aggregate.csv, failures.csv, sweep.json and PNG figures")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", metavar="DIR",
                       help="where run summaries are cached (default $MQTTSIM_CACHE_DIR or "
                            "~/.cache/mqttsim/sweeps)")
    cache.add_argument("--no-cache", action="store_true", help="run everything again")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..scenario import Scenario, ScenarioError
    from ..scenario.load import parse_set
    from .report import save_sweep
    from .sweep import SweepError, sweep

    try:
        scenario = Scenario.load(args.scenario)
        if args.overrides:
            scenario = scenario.with_(**parse_set(args.overrides))
        grid = parse_grid(args.grid)
        result = sweep(scenario, grid, seeds=args.seeds, workers=args.workers,
                       executor=args.dask, progress=not args.quiet,
                       cache_dir=False if args.no_cache else args.cache_dir)
    except (ScenarioError, SweepError, OSError) as exc:
        print(f"mqttsim sweep: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    keys = list(result.columns.values())
    shown = [c for c in (*keys, "qos", "runs", *SHOWN_METRICS) if c in result.aggregate]
    print(f"{scenario.name}: {result.runs} runs ({result.ran} ran, {result.cached} from the "
          f"cache) in {result.seconds:.1f} s")
    with pd.option_context("display.width", 140, "display.max_columns", 30,
                           "display.float_format", "{:.4g}".format):
        print(result.aggregate[shown].to_string(index=False) if len(result.aggregate)
              else "no results")
    for failure in result.failures:
        print(f"failed: {failure.params} seed {failure.seed}: {failure.error}", file=sys.stderr)
    if args.out:
        written = save_sweep(result, args.out)
        written += write_figures(result, Path(args.out))
        print(f"wrote {len(written)} files to {args.out}")
    if not result.complete:
        return EXIT_INTERRUPTED
    return EXIT_FAILED_RUNS if result.failures else 0


def write_figures(result: Any, folder: Path) -> list[Path]:
    """One PNG per grid key and metric: ``<metric>-vs-<key>.png``."""
    from .report import SWEEP_METRICS, sweep_figure
    written: list[Path] = []
    if result.table.empty:
        return written
    for key in result.columns.values():
        for metric in SWEEP_METRICS:
            path = folder / f"{metric}-vs-{key}.png"
            sweep_figure(result, key, metric).savefig(path, dpi=100, bbox_inches="tight")
            written.append(path)
    return written


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS_DIR",
                        help="a directory written by mqttsim run --out or mqttsim sweep --out")
    parser.add_argument("-o", "--output", default="report.html", metavar="FILE",
                        help="the HTML file to write (default report.html)")
    parser.add_argument("--scenario", metavar="SCENARIO.toml",
                        help="the scenario the results came from, when the directory does "
                             "not say (needed for the topology figure)")
    parser.add_argument("--question", metavar="TEXT",
                        help="the question the report answers, shown at the top (default: "
                             "one written from the scenario or the sweep's grid)")
    parser.add_argument("--title", metavar="TEXT",
                        help="the report's heading (default: the scenario's name)")


def run_report(args: argparse.Namespace) -> int:
    from ..scenario import ScenarioError
    from .report import load_results, report

    folder = Path(args.results)
    try:
        if args.scenario and (folder / "outcomes.csv").is_file():
            source: Any = load_results(folder, scenario=args.scenario)
        else:
            source = folder
        path = report(source, args.output, question=args.question, title=args.title)
    except (ScenarioError, OSError, ValueError) as exc:
        print(f"mqttsim report: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {path}")
    return 0
