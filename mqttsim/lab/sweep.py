"""``sweep(scenario, grid, seeds)``: run a scenario over a grid of overrides and seeds.

Each run is ``mqttsim.run(scenario.with_(**point), seed, capture=False)``; only its per-QoS
``summary()`` comes back (a few hundred bytes), so runs can go to other processes or to a Dask
cluster without shipping result tables around. Summaries are cached on disk, one JSON file
per run, so re-running a sweep after adding a grid value or a seed runs only what is new, and
a sweep stopped with Ctrl-C picks up where it stopped.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

__all__ = ["sweep", "SweepResult", "Failure", "SweepError", "valid_keys", "default_cache_dir",
           "aggregate", "cache_key", "code_version", "column_name", "CACHE_ENV"]

#: Environment variable naming the cache directory (overrides the default).
CACHE_ENV = "MQTTSIM_CACHE_DIR"
#: Columns of every row besides the grid's; a grid key equal to one gets a ``set.`` prefix.
ROW_KEYS = ("seed", "qos")


class SweepError(ValueError):
    """A grid that cannot be swept: unknown key, refused value, no values."""


class Failure(NamedTuple):
    """A run that raised: its grid point, its seed and ``"Type: message (at file:line)"``."""

    params: dict[str, Any]
    seed: int
    error: str


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced.

    ``table`` has one row per (grid point, seed, QoS): the grid values as columns (named by
    their override keys), ``seed``, ``qos`` and every column of ``Results.summary()``. Rows are
    per QoS because a run publishes at several QoS levels at once (intermittent.toml has a
    QoS 0, a QoS 1 and a QoS 2 meter): the QoS a message was published with is a measured
    dimension of every run, not a setting, so it is a row key like the seed. A grid key
    ``qos`` (the scenario's default QoS) therefore becomes the column ``set.qos``.

    ``aggregate`` has one row per (grid point, QoS): ``runs`` (seeds with that QoS), then
    for each metric its mean (same name) and the half-width of its 95 % confidence interval
    (``<metric>_ci95``, Student's t over seeds; NaN with one seed).

    ``complete`` is False when the sweep was interrupted (Ctrl-C): the table then holds the
    runs that had finished. ``ran`` and ``cached`` count runs executed now and read back from
    the cache.
    """

    table: pd.DataFrame
    aggregate: pd.DataFrame
    failures: list[Failure]
    complete: bool
    grid: dict[str, list[Any]]
    seeds: list[int]
    scenario: Any
    ran: int = 0
    cached: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # grid key -> table column
    seconds: float = 0.0

    @property
    def runs(self) -> int:
        """Runs in the sweep: grid points x seeds."""
        return math.prod(len(v) for v in self.grid.values()) * len(self.seeds)

    def __repr__(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE (interrupted)"
        return (f"<SweepResult {getattr(self.scenario, 'name', '?')!r}: {self.runs} runs, "
                f"{self.ran} ran, {self.cached} cached, {len(self.failures)} failed, {state}; "
                f"{len(self.table)} rows>")


# --- Checking the grid before anything runs

def _schema_lines(schema: Any, prefix: str) -> list[str]:
    """Dotted keys of a SCHEMA table, the leaves of each table on one line:
    ``link.{bandwidth,jitter,...}``; arrays of tables as ``clients.<name>.{...}``."""
    leaves = sorted(k for k, v in schema.items() if v is None)
    lines = []
    if leaves:
        lines.append(prefix + "{" + ",".join(leaves) + "}" if prefix else ", ".join(leaves))
    for key in sorted(k for k, v in schema.items() if v is not None):
        sub = schema[key]
        if isinstance(sub, list):
            pick = "<name>" if key == "clients" else "<index>"
            lines += _schema_lines(sub[0], f"{prefix}{key}.{pick}.")
        else:
            lines += _schema_lines(sub, f"{prefix}{key}.")
    return lines


def valid_keys() -> list[str]:
    """Every override key, compactly: top-level keys, then one line per table."""
    from ..scenario.load import SCHEMA
    return _schema_lines(SCHEMA, "")


def column_name(key: str) -> str:
    return f"set.{key}" if key in ROW_KEYS else key


def _points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


def _check_grid(grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    if not isinstance(grid, Mapping):
        raise SweepError(f"grid must be a dict of override key -> list of values, not "
                         f"{type(grid).__name__}")
    checked: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise SweepError(f"grid[{key!r}] must be a list of values, not {values!r}")
        values = list(values)
        if not values:
            raise SweepError(f"grid[{key!r}] is empty: give at least one value")
        checked[str(key)] = values
    return checked


def _scenarios(scenario: Any, grid: dict[str, list[Any]]) -> list[tuple[dict, Any]]:
    """(point, scenario with the point's overrides) for every grid point, or a SweepError
    naming the first key or value the scenario refuses; nothing has run yet."""
    from ..scenario import ScenarioError
    names = ", ".join(c.name for c in scenario.clients)
    for key in grid:  # an unknown key fails on every point: say so once, with the keys
        try:
            scenario.with_(**{key: grid[key][0]})
        except ScenarioError as error:
            # apply_overrides words a key it cannot place as "override 'key' = value: ..."
            # and a value the scenario refuses as "... (after the overrides ...)".
            if f"override {key!r}" in str(error):
                raise SweepError(f"grid key {key!r} is not a parameter of scenario "
                                 f"{scenario.name!r}: {error}\nvalid keys (<name>: "
                                 f"{names}):\n  " + "\n  ".join(valid_keys())) from None
    built = []
    for point in _points(grid):
        try:
            built.append((point, scenario.with_(**point)))
        except ScenarioError as error:
            raise SweepError(f"grid point {_show(point)} is refused: {error}") from None
    return built


def _show(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.items()) or "(no overrides)"


# --- The cache: one JSON file per run, keyed by what determines the run's result

def default_cache_dir() -> Path:
    """``$MQTTSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/mqttsim/sweeps`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mqttsim" / "sweeps"


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the simulator's source (everything in mqttsim but the lab), so that editing
    the simulator without bumping ``__version__`` cannot serve stale cached results."""
    import mqttsim
    root = Path(mqttsim.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("lab/"):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{mqttsim.__version__}+{digest.hexdigest()[:16]}"


def _runner_name(runner: Callable | None) -> str:
    if runner is None:
        return "mqttsim.run"
    return f"{getattr(runner, '__module__', '?')}.{getattr(runner, '__qualname__', repr(runner))}"


def cache_key(scenario: Any, seed: int, runner: Callable | None = None) -> str:
    """sha256 of (the scenario's dict after overrides, seed, mqttsim version and code, runner)."""
    blob = json.dumps({"scenario": scenario.to_dict(), "seed": seed,
                       "mqttsim": code_version(), "runner": _runner_name(runner)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class _Cache:
    def __init__(self, directory: Path | None):
        self.directory = directory

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[dict] | None:
        if self.directory is None:
            return None
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))["summary"]
        except (OSError, ValueError, KeyError):
            return None  # missing or unreadable (a half-written file): run again

    def put(self, key: str, record: dict) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record, default=str), encoding="utf-8")
        os.replace(temporary, path)  # readers never see half a file


# --- One run, wherever it executes: returns only the summary rows

def _execute(scenario: Any, seed: int, runner: Callable | None) -> tuple[bool, Any]:
    """(True, summary rows) or (False, error text). Never raises: a failing run must not
    take the pool (or a Dask worker's task) down with it."""
    try:
        if runner is None:
            from ..scenario import run
            summary = run(scenario, seed=seed, capture=False).summary()
        else:
            summary = runner(scenario, seed)
            if hasattr(summary, "summary"):  # a Results
                summary = summary.summary()
        return True, _summary_rows(summary)
    except Exception as error:  # noqa: BLE001 - recorded as a Failure, with where it happened
        return False, _error_text(error)


def _summary_rows(summary: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain Python values (JSON-able, so a cached run reads back exactly as a fresh one)."""
    if summary is None or len(summary) == 0:
        return []
    frame = summary.reset_index() if "qos" not in summary.columns else summary
    rows = []
    for record in frame.to_dict("records"):
        rows.append({str(k): (v.item() if hasattr(v, "item") else v) for k, v in record.items()})
    return rows


def _error_text(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})" \
        if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def _ignore_sigint() -> None:
    """Worker processes leave Ctrl-C to the parent, which stops them and keeps what is done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --- Executors: iterate to get (task index, (ok, value)) as runs finish; ``stop()`` cancels
# what has not finished and returns what finished but was not yet handed out.

Task = tuple[int, Any, int]  # index, scenario, seed


class _Here:
    """Runs one after the other in this process (workers=1: no start-up cost, pdb works)."""

    def __init__(self, tasks: list[Task], runner: Callable | None):
        self.tasks, self.runner = tasks, runner

    def __iter__(self):
        for index, scenario, seed in self.tasks:
            yield index, _execute(scenario, seed, self.runner)

    def stop(self) -> list[tuple[int, Any]]:
        return []


def _outcome(future: Any) -> tuple[bool, Any]:
    """A finished task's (ok, value). ``_execute`` never raises, so an exception here means
    the worker itself died (killed, out of memory): that run failed, the sweep goes on."""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - BrokenProcessPool, KilledWorker, ...
        return False, f"the worker running it died: {_error_text(error)}"


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one (fast: workers fork from a server that has imported the
    simulator once; safe with threads, unlike fork), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # The task function lives in mqttsim.lab, whose package imports the plots (and
        # matplotlib): preloaded once in the server, not once per worker.
        context.set_forkserver_preload(["mqttsim.lab.sweep", "mqttsim.scenario",
                                        "mqttsim.backends.sim"])
        return context
    return multiprocessing.get_context("spawn")


class _Pool:
    """Local worker processes; on stop, running workers are terminated, not waited for."""

    def __init__(self, tasks: list[Task], runner: Callable | None, workers: int):
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(),
                                           initializer=_ignore_sigint)
        self.futures = {self.pool.submit(_execute, scenario, seed, runner): index
                        for index, scenario, seed in tasks}
        self.handed: set = set()

    def __iter__(self):
        for future in cf.as_completed(self.futures):
            self.handed.add(future)
            yield self.futures[future], _outcome(future)
        self.pool.shutdown(wait=True)

    def stop(self) -> list[tuple[int, Any]]:
        late = [(index, _outcome(future)) for future, index in self.futures.items()
                if future not in self.handed and future.done() and not future.cancelled()]
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in list((getattr(self.pool, "_processes", None) or {}).values()):
            process.terminate()  # a run may take minutes: do not wait for it
        return late


class _Dask:
    """Tasks on a Dask cluster; on stop, what has not finished is cancelled."""

    def __init__(self, tasks: list[Task], runner: Callable | None, client: Any):
        self.client = client
        self.futures = {client.submit(_execute, scenario, seed, runner, pure=False): index
                        for index, scenario, seed in tasks}
        self.handed: set = set()

    def __iter__(self):
        from distributed import as_completed
        for future in as_completed(list(self.futures)):
            self.handed.add(future)
            yield self.futures[future], _outcome(future)

    def stop(self) -> list[tuple[int, Any]]:
        late = [(index, _outcome(future)) for future, index in self.futures.items()
                if future not in self.handed and future.status == "finished"]
        self.client.cancel([f for f in self.futures if f not in self.handed])
        return late


def _dask_client(client: Any) -> tuple[Any, bool]:
    """(client, whether we opened it and must close it)."""
    if isinstance(client, str):
        from distributed import Client
        return Client(client), True
    if not hasattr(client, "submit"):
        raise TypeError(f"client must be a dask.distributed.Client or a scheduler address, "
                        f"not {type(client).__name__}")
    return client, False


def _workers(workers: int | None) -> int:
    if workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    if int(workers) < 1:
        raise SweepError(f"workers must be at least 1, not {workers}")
    return int(workers)


# --- The sweep

def sweep(scenario: Any, grid: Mapping[str, Sequence[Any]] | None = None,
          seeds: int | Sequence[int] = 10, workers: int | None = None, client: Any = None,
          cache_dir: str | os.PathLike | bool | None = None,
          progress: bool | Callable[[int, int], None] = True,
          runner: Callable[[Any, int], Any] | None = None) -> SweepResult:
    """Run ``scenario`` at every point of ``grid`` (override key -> values) with every seed.

    ``seeds``: a count (seeds 0..n-1) or the seeds themselves. Every grid point is applied
    with ``scenario.with_`` before anything runs, so an unknown key or a refused value raises
    ``SweepError`` at once (listing the valid keys), not an hour into the sweep.

    Runs go to ``workers`` local processes (default: every core; 1 runs them here, one after
    the other) or, with ``client`` (a ``dask.distributed.Client`` or a scheduler address), to
    that Dask cluster (its workers need the same mqttsim installed; the cache stays here).
    ``cache_dir``: where run summaries are kept (default
    ``default_cache_dir()``; False: no cache). ``progress``: a tqdm bar (True), none (False), or
    a function called with (runs done, runs in all) after each run. ``runner``: a picklable
    function (scenario, seed) -> Results or summary DataFrame to use instead of
    ``mqttsim.run``. A run that raises becomes a ``Failure``; the others go on. Ctrl-C stops
    the sweep and returns the runs finished so far, with ``complete=False``.
    """
    started = time.perf_counter()
    grid = _check_grid(grid or {})
    if isinstance(seeds, int):
        if seeds < 1:
            raise SweepError(f"seeds must be at least 1, not {seeds}")
        seeds = list(range(seeds))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise SweepError("seeds is empty: give a count or a list of seeds")
    pool_size = _workers(workers)
    columns = {key: column_name(key) for key in grid}
    built = _scenarios(scenario, grid)
    cache = _Cache(None if cache_dir is False else
                   Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir())

    jobs = [(point, sc, seed) for point, sc in built for seed in seeds]
    keys = [cache_key(sc, seed, runner) for _, sc, seed in jobs]
    outcome: dict[int, tuple[bool, Any]] = {}
    tasks: list[Task] = []
    for index, ((_, sc, seed), key) in enumerate(zip(jobs, keys)):
        hit = cache.get(key)
        if hit is not None:
            outcome[index] = (True, hit)
        else:
            tasks.append((index, sc, seed))
    cached = len(outcome)

    bar, report = _progress(progress, len(jobs), cached)
    complete, opened, executor = True, None, None
    try:
        if tasks:
            if client is not None:
                dask_client, owned = _dask_client(client)
                opened = dask_client if owned else None
                executor = _Dask(tasks, runner, dask_client)
            elif pool_size == 1 or len(tasks) == 1:
                executor = _Here(tasks, runner)
            else:
                executor = _Pool(tasks, runner, min(pool_size, len(tasks)))
            for index, result in executor:
                _record(index, result, outcome, jobs, keys, cache)
                report(len(outcome))
            executor = None
    except KeyboardInterrupt:
        complete = False
    finally:
        if executor is not None:  # interrupted (or the progress function raised)
            for index, result in executor.stop():
                _record(index, result, outcome, jobs, keys, cache)
        if bar is not None:
            bar.close()
        if opened is not None:
            opened.close()
    if not complete:
        again = (" (run it again to finish: the done runs come from the cache)"
                 if cache.directory is not None else "")
        print(f"\nsweep interrupted: {len(outcome)} of {len(jobs)} runs done and kept{again}",
              file=sys.stderr)

    table, failures = _table(jobs, outcome, columns)
    return SweepResult(table=table, aggregate=aggregate(table, list(columns.values())),
                       failures=failures, complete=complete, grid=grid, seeds=seeds,
                       scenario=scenario, ran=len(outcome) - cached, cached=cached,
                       columns=columns, seconds=time.perf_counter() - started)


def _record(index: int, result: tuple[bool, Any], outcome: dict, jobs: list, keys: list,
            cache: _Cache) -> None:
    outcome[index] = result
    ok, value = result
    if ok:
        point, sc, seed = jobs[index]
        cache.put(keys[index], {"scenario": sc.name, "overrides": point, "seed": seed,
                                "summary": value})


def _progress(progress: bool | Callable, total: int, done: int):
    """(tqdm bar or None, function to call with the number of runs done)."""
    if callable(progress):
        return None, lambda n: progress(n, total)
    if not progress:
        return None, lambda n: None
    from tqdm.auto import tqdm
    bar = tqdm(total=total, initial=done, unit="run", desc="sweep", smoothing=0.1)

    def update(n: int) -> None:
        bar.update(n - bar.n)
    return bar, update


def _cell(value: Any) -> Any:
    """Grid values as table cells: lists and tables (outages, ...) as JSON text, so that
    rows can be grouped by them."""
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def _table(jobs: list, outcome: dict[int, tuple[bool, Any]],
           columns: dict[str, str]) -> tuple[pd.DataFrame, list[Failure]]:
    rows, failures = [], []
    for index, (point, _, seed) in enumerate(jobs):  # grid order, whatever order runs ended
        if index not in outcome:
            continue
        ok, value = outcome[index]
        if not ok:
            failures.append(Failure(dict(point), seed, value))
            continue
        for summary_row in value:
            row = {columns[k]: _cell(v) for k, v in point.items()}
            row["seed"] = seed
            row.update(summary_row)
            rows.append(row)
    order = [*columns.values(), "seed", "qos"]
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=order), failures
    metrics = [c for c in table.columns if c not in order]
    return table[order + metrics].reset_index(drop=True), failures


# --- Means and confidence intervals

def aggregate(table: pd.DataFrame, parameters: Sequence[str]) -> pd.DataFrame:
    """Per (grid point, qos): ``runs``, each metric's mean and its 95 % CI half-width
    (Student's t over the seeds that have the metric: a latency is NaN when nothing arrived)."""
    from .stats import mean_ci
    keys = [*parameters, "qos"]
    metrics = [c for c in table.columns if c not in (*keys, "seed")]
    columns = [*keys, "runs", *(name for m in metrics for name in (m, f"{m}_ci95"))]
    if table.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for group_key, group in table.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, group_key if isinstance(group_key, tuple) else (group_key,)))
        row["runs"] = group["seed"].nunique()
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce").dropna()
            mean, low, high = mean_ci(values)
            # Equal values: exactly 0, not the 1e-14 that float rounding in std would give.
            row[metric] = mean
            row[f"{metric}_ci95"] = 0.0 if len(values) > 1 and values.nunique() == 1 \
                else (high - low) / 2
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)

