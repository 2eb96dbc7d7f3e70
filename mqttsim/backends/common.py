"""What every backend's run does the same way."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


def path_outages(scenario: Any, network: Network) -> dict[str, list]:
    """Per client, the outages of every link on its path to the broker, both ways."""
    return {c.name: [o for hops in network.paths(c.name) for hop in hops
                     for o in hop.link.params.outages] for c in scenario.clients}
