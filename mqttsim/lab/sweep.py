"""``sweep(scenario, grid, seeds)``: run a scenario over a grid of overrides and seeds.

Each run is ``mqttsim.run(scenario.with_(**point), seed, capture=False)``; only its per-QoS
``summary()`` comes back, so runs can go to other processes or machines. This module puts the
sweep together and builds its tables; the jobs it delegates each have their own module:
``sweep_grid`` (the grid, checked before anything runs), ``sweep_cache`` (summaries on disk,
one JSON file per run) and ``sweep_run`` (where runs execute: here, or any
``concurrent.futures.Executor``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from .sweep_cache import CACHE_ENV, RunCache, cache_key, code_version, default_cache_dir
from .sweep_grid import SweepError, check_grid, column_name, grid_scenarios, valid_keys
from .sweep_run import Outcome, Submitted, Task, as_executor, local_pool, run_here, worker_count

__all__ = ["sweep", "SweepResult", "Failure", "SweepError", "valid_keys", "default_cache_dir",
           "aggregate", "cache_key", "code_version", "column_name", "CACHE_ENV"]


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


# --- The sweep

def sweep(scenario: Any, grid: Mapping[str, Sequence[Any]] | None = None,
          seeds: int | Sequence[int] = 10, workers: int | None = None, executor: Any = None,
          cache_dir: str | os.PathLike | bool | None = None,
          progress: bool | Callable[[int, int], None] = True,
          runner: Callable[[Any, int], Any] | None = None, client: Any = None) -> SweepResult:
    """Run ``scenario`` at every point of ``grid`` (override key -> values) with every seed.

    ``seeds``: a count (seeds 0..n-1) or the seeds themselves. Every grid point is applied
    with ``scenario.with_`` before anything runs, so an unknown key or a refused value raises
    ``SweepError`` at once (listing the valid keys), not an hour into the sweep.

    Runs go to ``workers`` local processes (default: every core; 1 runs them here, one after
    the other) or to ``executor``: any ``concurrent.futures.Executor`` (e.g. a Dask
    ``Client.get_executor()``), a ``dask.distributed.Client`` or a Dask scheduler address
    (Dask workers need the same mqttsim installed; the cache stays here). ``client`` is the
    old name of ``executor`` (deprecated).
    ``cache_dir``: where run summaries are kept (default
    ``default_cache_dir()``; False: no cache). ``progress``: a tqdm bar (True), none (False), or
    a function called with (runs done, runs in all) after each run. ``runner``: a picklable
    function (scenario, seed) -> Results or summary DataFrame to use instead of
    ``mqttsim.run``. A run that raises becomes a ``Failure``; the others go on. Ctrl-C stops
    the sweep and returns the runs finished so far, with ``complete=False``.
    """
    started = time.perf_counter()
    if client is not None:
        warnings.warn("sweep(client=...) is deprecated: pass executor= (any "
                      "concurrent.futures.Executor, a dask.distributed.Client or a scheduler "
                      "address)", DeprecationWarning, stacklevel=2)
        if executor is not None:
            raise TypeError("sweep() got both executor= and its old name client=; pass one")
        executor = client
    grid = check_grid(grid or {})
    if isinstance(seeds, int):
        if seeds < 1:
            raise SweepError(f"seeds must be at least 1, not {seeds}")
        seeds = list(range(seeds))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise SweepError("seeds is empty: give a count or a list of seeds")
    pool_size = worker_count(workers)
    columns = {key: column_name(key) for key in grid}
    built = grid_scenarios(scenario, grid)
    cache = RunCache(None if cache_dir is False else
                   Path(cache_dir) if cache_dir not in (None, True) else default_cache_dir())

    jobs = [(point, sc, seed) for point, sc in built for seed in seeds]
    keys = [cache_key(sc, seed, runner) for _, sc, seed in jobs]
    outcome: dict[int, Outcome] = {}
    tasks: list[Task] = []
    for index, ((_, sc, seed), key) in enumerate(zip(jobs, keys)):
        hit = cache.get(key)
        if hit is not None:
            outcome[index] = (True, hit)
        else:
            tasks.append((index, sc, seed))
    cached = len(outcome)

    bar, report = _progress(progress, len(jobs), cached)
    complete, opened, running = True, None, None
    stop: Callable[[], list[tuple[int, Outcome]]] = list  # what finished but was not handed
    try:
        if tasks:
            if executor is not None or (pool_size > 1 and len(tasks) > 1):
                if executor is not None:
                    pool, opened = as_executor(executor)
                    submitted = Submitted(pool, tasks, runner)
                else:
                    pool = local_pool(min(pool_size, len(tasks)))
                    submitted = Submitted(pool, tasks, runner, owned=True)
                running, stop = iter(submitted), submitted.stop
            else:
                running = run_here(tasks, runner)
            for index, result in running:
                _record(index, result, outcome, jobs, keys, cache)
                report(len(outcome))
            running = None
    except KeyboardInterrupt:
        complete = False
    finally:
        if running is not None:  # interrupted (or the progress function raised)
            for index, result in stop():
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


def _record(index: int, result: Outcome, outcome: dict, jobs: list, keys: list,
            cache: RunCache) -> None:
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


def _table(jobs: list, outcome: dict[int, Outcome],
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

