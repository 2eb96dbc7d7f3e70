"""``mqttsim run SCENARIO.toml``: run a scenario, print what happened, write the tables.

What it prints, in order: with ``-v`` the broker's log (as ``mqttsim broker -v`` would
print it, stamped with scenario time); what the subscribers received (as ``sub -v`` prints
it: topic, space, payload), the first few; how connections ended; the per-QoS summary.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

EXIT_BAD_SCENARIO = 2
EXIT_DISAGREE = 1
EXIT_WRITE_FAILED = 1
SHOWN_MESSAGES = 10
PROGRESS_EVERY = 1.0  # seconds of wall time between progress reports


def _scenario_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO.toml", help="the scenario file")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a key, e.g. --set link.loss=0.1 --set qos=1 "
                             "--set clients.sub.keepalive=30 (repeatable)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")


def _sockets_arguments(parser: argparse.ArgumentParser, default_scale: float) -> None:
    parser.add_argument("--time-scale", type=float, default=default_scale, metavar="K",
                        help="sockets: run K times faster than the scenario says, keepalives "
                             f"and timers scaled with it (default {default_scale:g})")
    parser.add_argument("--broker", metavar="HOST:PORT",
                        help="sockets: use this broker (e.g. a mosquitto) instead of starting "
                             "mqttsim broker in-process; real time only")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _scenario_arguments(parser)
    parser.add_argument("--backend", choices=("sim", "sockets", "kernel"), default="sim",
                        help="sim: the SimPy simulator (the default); sockets: real asyncio "
                             "sockets through a relay that applies the scenario's network; "
                             "kernel: Linux TCP in network namespaces across emulated links "
                             "(root, real time)")
    _sockets_arguments(parser, 1.0)
    parser.add_argument("--broker-cmd", metavar="CMD",
                        help="kernel: run this broker in the broker's namespace instead of "
                             "mqttsim broker, e.g. \"mosquitto -c {conf}\" ({conf}: a config "
                             "listening on the broker's address)")
    parser.add_argument("--out", metavar="DIR",
                        help="write every table as DIR/<table>.csv (and summary.csv)")
    parser.add_argument("--pcap", metavar="FILE",
                        help="write the simulated TCP traffic as a pcap file (Wireshark)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the broker's log, like mqttsim broker -v")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="sim: show the simulated time reached on stderr, every second, "
                             "while a run lasts (default: only when stderr is a terminal)")


class Progress:
    """Simulated time reached, on one line of stderr, once every ``every`` seconds.

    A thread reads the simulator's clock (``simulate(watch=...)``) and writes; the run is
    not touched, so tables are the same with and without it. On a terminal the line is
    rewritten in place; elsewhere (asked for with ``--progress``) each report is a line.
    Nothing is written by a run shorter than ``every``.
    """

    def __init__(self, duration: float, stream=None, every: float | None = None):
        self.duration = duration
        self.every = PROGRESS_EVERY if every is None else every
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty()
        self.reports = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def watch(self, now: Callable[[], float]) -> None:
        """Start reporting ``now()`` (the simulator calls this when the run starts)."""
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._report, args=(now,), daemon=True,
                                        name="mqttsim-progress")
        self._thread.start()

    def _report(self, now: Callable[[], float]) -> None:
        start, end = ("\r", "") if self.terminal else ("", "\n")
        while not self._stop.wait(self.every):
            reached = now()
            self.stream.write(f"{start}simulated {reached:.1f} of {self.duration:g} s "
                              f"({100 * reached / self.duration:.0f}%), "
                              f"{time.monotonic() - self._started:.0f} s elapsed{end}")
            self.stream.flush()
            self.reports += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.reports and self.terminal:
            self.stream.write("\n")
            self.stream.flush()


def _nearest_existing(path: Path) -> Path:
    for folder in (path, *path.parents):
        if folder.exists():
            return folder
    return Path(".")


def _cannot_write(option: str, target: str, folder_itself: bool) -> str | None:
    """Why ``target`` (a folder to create or fill, or a file to create) cannot be written,
    or None. Checked before the run, which may be long, without creating anything: the
    nearest existing folder on the way must be a folder we can create a file in."""
    path = Path(target)
    if not folder_itself:
        if path.is_dir():
            return f"{option} {target}: is a folder; give a file name"
        if path.parent.exists() and not path.parent.is_dir():
            return f"{option} {target}: {path.parent} is a file, not a folder"
        if not path.parent.exists():
            return f"{option} {target}: the folder {path.parent} does not exist"
    existing = _nearest_existing(path if folder_itself else path.parent)
    if not existing.is_dir():
        return f"{option} {target}: {existing} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"{option} {target}: cannot write in {existing}: {exc.strerror or exc}"
    return None


def _outputs_refused(args: argparse.Namespace, command: str, transport: str) -> bool:
    """Print why --out / --pcap cannot be written (one line) and return True, or False."""
    problems = []
    if getattr(args, "out", None):
        problems.append(_cannot_write("--out", args.out, folder_itself=True))
    if getattr(args, "pcap", None):
        if transport != "tcp":
            problems.append(f"--pcap: the {transport} transport has no TCP segments to "
                            "capture; use transport = \"tcp\"")
        else:
            problems.append(_cannot_write("--pcap", args.pcap, folder_itself=False))
    problem = next((item for item in problems if item), None)
    if problem is not None:
        print(f"mqttsim {command}: {problem}", file=sys.stderr)
    return problem is not None


def _load(args: argparse.Namespace, command: str):
    """The scenario named on the command line with its overrides, or None (error printed)."""
    from . import Scenario, ScenarioError
    from .load import parse_set
    try:
        scenario = Scenario.load(args.scenario)
        if args.overrides:
            scenario = scenario.with_(**parse_set(args.overrides))
    except ScenarioError as exc:
        print(f"mqttsim {command}: {exc}", file=sys.stderr)
        return None
    return scenario


def run(args: argparse.Namespace) -> int:
    from . import run as run_scenario

    scenario = _load(args, "run")
    if scenario is None or _outputs_refused(args, "run", scenario.transport):
        return EXIT_BAD_SCENARIO
    options: dict = {}
    progress = None
    if args.backend == "sockets":
        options = {"time_scale": args.time_scale, "broker": args.broker}
    elif args.backend == "kernel" and args.time_scale != 1.0:
        print("mqttsim run: the kernel backend runs in real time only (kernel TCP timers "
              "cannot be scaled): leave out --time-scale", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    elif args.time_scale != 1.0 or args.broker:
        print("mqttsim run: --time-scale and --broker are for --backend sockets",
              file=sys.stderr)
        return EXIT_BAD_SCENARIO
    if args.broker_cmd:
        if args.backend != "kernel":
            print("mqttsim run: --broker-cmd is for --backend kernel", file=sys.stderr)
            return EXIT_BAD_SCENARIO
        options["broker_cmd"] = args.broker_cmd
    if args.backend == "kernel":
        from ..backends.kernel import missing_requirement
        missing = missing_requirement()
        if missing:
            print(f"mqttsim run: {missing}", file=sys.stderr)
            return EXIT_BAD_SCENARIO
    if args.backend == "sim" and (args.progress
                                  or (args.progress is None and sys.stderr.isatty())):
        progress = Progress(scenario.duration)
        options["watch"] = progress.watch
    try:
        res = run_scenario(scenario, seed=args.seed, backend=args.backend, **options)
    except ValueError as exc:  # what a backend refuses, before it starts
        print(f"mqttsim run: {exc}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    finally:
        if progress is not None:
            progress.close()
    if args.verbose:
        for line in res.broker_log():
            print(line)
        print()
    print(f"{scenario.name}: {scenario.description}" if scenario.description else scenario.name)
    print(f"{len(scenario.clients)} clients, {scenario.duration:g} s, transport "
          f"{scenario.transport}, seed {args.seed}, backend {res.backend}\n")
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
    outcomes = res.outcomes
    dropped = outcomes[outcomes["reason"] == "broker:queue_full"]
    if len(dropped):  # a configured drop is counted and shown, never silent
        print("dropped by the broker, queue full (max_queued), per subscriber:")
        for subscriber, n in dropped.groupby("subscriber").size().items():
            print(f"  {n:5d}  {subscriber}")
        print()
    import pandas as pd

    with pd.option_context("display.width", 120, "display.max_columns", 20,
                           "display.float_format", "{:.4g}".format):
        summary = res.summary()
        print(summary.to_string() if len(summary) else "no messages were published")
    try:
        if args.out:
            written = res.to_csv(args.out)
            print(f"\nwrote {len(written)} tables to {args.out}")
        if args.pcap:
            count = res.to_pcap(args.pcap)
            print(f"wrote {count} packets to {args.pcap}")
    except OSError as exc:  # the checks before the run passed, then something changed
        print(f"mqttsim run: cannot write {exc.filename or 'the output'}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    return 0


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    _scenario_arguments(parser)
    _sockets_arguments(parser, 10.0)
    parser.add_argument("--backends", default="sim,sockets", metavar="A,B",
                        help="the backends to compare: sim,sockets (the default), sim,kernel, "
                             "sockets,kernel or sim,sockets,kernel (kernel: Linux TCP, real "
                             "time, root)")
    parser.add_argument("--out", metavar="DIR",
                        help="write the side-by-side table as DIR/compare.csv")


def run_compare(args: argparse.Namespace) -> int:
    """Exit 0 when the backends agree, 1 when they do not, 2 for a bad scenario."""
    scenario = _load(args, "compare")
    if scenario is None or _outputs_refused(args, "compare", scenario.transport):
        return EXIT_BAD_SCENARIO
    from .compare import compare  # pandas: once there is something to compare

    backends = tuple(b.strip() for b in args.backends.split(","))
    words = {"sim": "simulated",
             "sockets": f"on real sockets at {args.time_scale:g}x "
                        f"({scenario.duration / args.time_scale:.1f} s)",
             "kernel": f"on Linux TCP in real time ({scenario.duration:g} s)"}
    print(f"{scenario.name}: {', then '.join(words.get(b, b) for b in backends)}, "
          f"seed {args.seed}", flush=True)
    if "kernel" in backends:
        from ..backends.kernel import missing_requirement
        missing = missing_requirement()
        if missing:
            print(f"mqttsim compare: {missing}", file=sys.stderr)
            return EXIT_BAD_SCENARIO
    try:
        result = compare(scenario, seed=args.seed, time_scale=args.time_scale,
                         broker=args.broker, backends=backends)
    except ValueError as exc:
        print(f"mqttsim compare: {exc}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    print(result)
    if args.out:
        folder = Path(args.out)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            result.table.to_csv(folder / "compare.csv", index=False)
        except OSError as exc:
            print(f"mqttsim compare: cannot write {exc.filename or args.out}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_SCENARIO
    return 0 if result.agree else EXIT_DISAGREE
