"""Run one scenario in simulated time and return what was recorded."""

from __future__ import annotations

import random
from typing import Any, Callable

from ...world.hosts import BrokerProcess, ClientProcess
from ...world.network import Network
from ...world.recorder import Recorder, Recording
from ...world.transport import Transport
from ..common import collector_paused, path_outages
from .kernel import Kernel


def simulate(scenario: Any, seed: int = 0, capture: bool = True,
             watch: Callable[[Callable[[], float]], None] | None = None) -> Recording:
    """Simulate ``scenario`` from 0 to ``scenario.duration`` seconds.

    ``capture`` keeps segment payloads and broker events (pcap, ``-v`` log); switch it off
    for very large runs. Same scenario and seed give the same recording. ``watch``, if
    given, is called once before the run with a function returning the simulated time
    reached, for a progress display on another thread (reading it changes nothing).
    """
    kernel = Kernel()
    network = Network(scenario, kernel, seed)
    recorder = Recorder({c.client_id: c.name for c in scenario.clients}, capture)
    transport = Transport(scenario.transport, kernel, network, scenario.tcp, recorder)
    broker = BrokerProcess(scenario.broker, kernel, recorder)
    for spec in scenario.clients:
        ClientProcess(spec, kernel, recorder, transport, broker,
                      random.Random(f"{seed}:client:{spec.name}"), scenario.duration)
    if watch is not None:
        watch(lambda: kernel.now)
    with collector_paused():
        kernel.run(until=scenario.duration)
    return Recording(scenario, seed, recorder, network.link_rows(scenario.duration),
                     path_outages(scenario, network), next(kernel._eid))
