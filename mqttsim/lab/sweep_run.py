"""Where a sweep's runs execute: here, one after the other, or on any
``concurrent.futures.Executor`` (local worker processes by default; a Dask cluster through
``Client.get_executor()``; anything else that implements the interface).

Each run returns only its per-QoS summary rows (a few hundred bytes), so no result tables
are shipped between processes or machines. Runs are handed out as they finish, as
``(task index, (ok, summary rows or error text))``; ``stop()`` cancels what has not started
and returns what finished but was not handed out yet.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from .sweep_grid import SweepError

__all__ = ["Task", "Outcome", "run_here", "Submitted", "local_pool", "as_executor",
           "worker_count"]

Task = tuple[int, Any, int]  # index, scenario, seed
Outcome = tuple[bool, Any]  # (True, summary rows) or (False, error text)


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



def _outcome(future: cf.Future) -> Outcome:
    """A finished task's (ok, value). ``_execute`` never raises, so an exception here means
    the worker itself died (killed, out of memory): that run failed, the sweep goes on."""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - BrokenProcessPool, KilledWorker, ...
        return False, f"the worker running it died: {_error_text(error)}"


def run_here(tasks: list[Task], runner: Callable | None) -> Iterator[tuple[int, Outcome]]:
    """The runs one after the other in this process (workers=1: no start-up cost, pdb
    works, Ctrl-C lands in the run itself)."""
    for index, scenario, seed in tasks:
        yield index, _execute(scenario, seed, runner)


class Submitted:
    """Tasks submitted to an Executor, handed out as they finish."""

    def __init__(self, executor: cf.Executor, tasks: list[Task], runner: Callable | None,
                 owned: bool = False):
        self.executor, self.owned = executor, owned  # owned: ours to shut down
        self.futures = {executor.submit(_execute, scenario, seed, runner): index
                        for index, scenario, seed in tasks}
        self.handed: set[cf.Future] = set()

    def __iter__(self) -> Iterator[tuple[int, Outcome]]:
        for future in cf.as_completed(self.futures):
            self.handed.add(future)
            yield self.futures[future], _outcome(future)
        if self.owned:
            self.executor.shutdown(wait=True)

    def stop(self) -> list[tuple[int, Outcome]]:
        late = [(index, _outcome(future)) for future, index in self.futures.items()
                if future not in self.handed and future.done() and not future.cancelled()]
        for future in self.futures:
            future.cancel()  # a Dask executor's futures cancel their cluster task too
        if self.owned:
            # Read the workers before shutdown(), which forgets them (sets _processes to
            # None): terminated after it, the runs they are in the middle of would keep the
            # interpreter's exit waiting for them (minutes for a long run).
            processes = list((getattr(self.executor, "_processes", None) or {}).values())
            self.executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()  # a run may take minutes: do not wait for it
        return late


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one (fast: workers fork from a server that has imported the
    simulator once; safe with threads, unlike fork), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # The task function lives in mqttsim.lab, whose package imports the plots (and
        # matplotlib): preloaded once in the server, not once per worker.
        context.set_forkserver_preload(["mqttsim.lab.sweep_run", "mqttsim.scenario",
                                        "mqttsim.backends.sim"])
        return context
    return multiprocessing.get_context("spawn")


def local_pool(workers: int) -> cf.ProcessPoolExecutor:
    """Local worker processes that leave Ctrl-C to the sweep."""
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(),
                                  initializer=_ignore_sigint)


def as_executor(executor: Any) -> tuple[cf.Executor, Any]:
    """(an Executor for ``executor``, what we opened and must close, or None).

    Any ``concurrent.futures.Executor`` is used as it is; a ``dask.distributed.Client``
    through its ``get_executor()``; a string is a Dask scheduler address to connect to.
    """
    if isinstance(executor, cf.Executor):
        return executor, None
    if isinstance(executor, str):
        from distributed import Client
        client = Client(executor)
        return client.get_executor(pure=False), client
    if hasattr(executor, "get_executor"):  # a dask.distributed.Client
        return executor.get_executor(pure=False), None
    raise TypeError(f"executor must be a concurrent.futures.Executor, a "
                    f"dask.distributed.Client or a Dask scheduler address, not "
                    f"{type(executor).__name__}")


def worker_count(workers: int | None) -> int:
    """``workers``, checked; None: every core this process may use."""
    if workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    if int(workers) < 1:
        raise SweepError(f"workers must be at least 1, not {workers}")
    return int(workers)
