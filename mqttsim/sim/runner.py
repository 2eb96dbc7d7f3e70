"""Run one scenario in simulated time and return what was recorded."""

from __future__ import annotations

import gc
import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .kernel import Kernel
from .network import Network
from .nodes import SimBroker, SimClient
from .recorder import Recorder
from .transport import Transport


@dataclass
class Recording:
    """The raw rows of one simulated run (``mqttsim.scenario.Results`` reads them)."""

    scenario: Any
    seed: int
    recorder: Recorder
    links: list[dict]
    outages: dict[str, list]  # client -> the Outages of every link on its path, both ways
    events_processed: int


def simulate(scenario: Any, seed: int = 0, capture: bool = True) -> Recording:
    """Simulate ``scenario`` from 0 to ``scenario.duration`` seconds.

    ``capture`` keeps segment payloads and broker events (pcap, ``-v`` log); switch it off
    for very large runs. Same scenario and seed give the same recording.
    """
    kernel = Kernel()
    network = Network(scenario, kernel, seed)
    recorder = Recorder({c.client_id: c.name for c in scenario.clients}, capture)
    transport = Transport(scenario.transport, kernel, network, scenario.tcp, recorder)
    broker = SimBroker(scenario.broker, kernel, recorder)
    for spec in scenario.clients:
        SimClient(spec, kernel, recorder, transport, broker,
                  random.Random(f"{seed}:client:{spec.name}"), scenario.duration)
    with collector_paused():
        kernel.run(until=scenario.duration)
    outages = {c.name: [o for hops in network.paths(c.name) for hop in hops
                        for o in hop.link.params.outages] for c in scenario.clients}
    return Recording(scenario, seed, recorder, network.link_rows(scenario.duration), outages,
                     next(kernel._eid))


@contextmanager
def collector_paused():
    """Python's cycle collector off for the run: a run allocates millions of short-lived
    objects (events, segments, rows) and keeps 100,000s of rows, so full collections scan an
    ever larger heap for cycles the simulator does not make (measured: 20-35% of run time).
    Reference counting still frees everything; the collector runs once at the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
