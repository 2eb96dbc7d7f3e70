"""Run one scenario in simulated time and return what was recorded."""

from __future__ import annotations

import random
from typing import Any, Callable

from ...world.bridges import BridgeProcess
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
    brokers = {broker.name: broker}
    for spec in scenario.other_brokers:  # several brokers, bridged (issue 18)
        brokers[spec.name] = BrokerProcess(spec, kernel, recorder)
    for spec in scenario.clients:
        ClientProcess(spec, kernel, recorder, transport, brokers[scenario.broker_of(spec)],
                      random.Random(f"{seed}:client:{spec.name}"), scenario.duration)
    outages = path_outages(scenario, network)
    for spec in scenario.bridges:
        recorder.names[spec.client_id] = spec.name
        bridge = BridgeProcess(spec, kernel, recorder, transport, brokers[spec.broker],
                               brokers[spec.remote], random.Random(f"{seed}:bridge:{spec.name}"),
                               transport.new_id)
        recorder.names[bridge.config.local_id] = spec.local_name
        outages[spec.name] = [o for hops in network.paths(spec.broker, spec.remote)
                              for hop in hops for o in hop.link.params.outages]
    if watch is not None:
        watch(lambda: kernel.now)
    with collector_paused():
        kernel.run(until=scenario.duration)
    return Recording(scenario, seed, recorder, network.link_rows(scenario.duration),
                     outages, next(kernel._eid))
