"""What every backend's run does the same way."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..world.network import Network


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the run: a run allocates millions of short-lived
    objects (events, segments, rows) and keeps 100,000s of rows, so full collections scan an
    ever larger heap for cycles the run does not make (measured: 20-35% of a simulated run;
    on real sockets a full collection stalled the event loop for 0.24 s). Reference counting
    still frees everything; the collector runs once at the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


T = TypeVar("T")


def run_in_fresh_loop(main: Callable[[], Coroutine[Any, Any, T]], name: str) -> T:
    """Run the coroutine ``main()`` makes in a fresh event loop, the cycle collector paused
    (see ``collector_paused``); in a thread of its own when this thread already runs a loop,
    as a Jupyter kernel's does. Its exception, if any, is raised here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with collector_paused():
            return asyncio.run(main())
    result: dict[str, Any] = {}

    def in_thread() -> None:
        try:
            with collector_paused():
                result["value"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=in_thread, name=name)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def path_outages(scenario: Any, network: Network) -> dict[str, list]:
    """Per client, the outages of every link on its path to the broker, both ways."""
    return {c.name: [o for hops in network.paths(c.name, c.broker or None) for hop in hops
                     for o in hop.link.params.outages] for c in scenario.clients}
