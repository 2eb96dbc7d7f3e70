"""``run(scenario, seed)``: one scenario on one backend, as ``Results``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

from .model import Scenario

if TYPE_CHECKING:
    from .results import Results

BACKENDS = ("sim", "sockets", "kernel")
# A sockets run whose timers ran later than this (scenario seconds) did not keep to the
# scenario's clock: the machine could not keep up with the time scale.
LAG_WARNING = 0.1


def run(scenario: Scenario, seed: int = 0, backend: str = "sim", capture: bool = True, *,
        time_scale: float = 1.0, broker: Any = None, broker_cmd: str | None = None,
        watch: Callable[[Callable[[], float]], None] | None = None) -> Results:
    """Run ``scenario`` with random ``seed`` on ``backend``: ``"sim"`` (the SimPy simulator,
    in simulated time) or ``"sockets"`` (real asyncio sockets through a relay that applies
    the scenario's network, in real time).

    Same scenario and seed give identical tables on ``sim``. ``capture=False`` keeps no
    segment payloads and broker events (no ``to_pcap``/``broker_log``), for very large runs.
    ``sockets`` only: ``time_scale`` runs the scenario that many times faster than written
    (keepalives and every timer with it); ``broker="HOST:PORT"`` uses an external broker
    such as Mosquitto instead of starting ``mqttsim broker`` in this process.
    ``kernel``: Linux's own TCP in network namespaces, across the scenario's links emulated
    by the same link model (real time only; root and /dev/net/tun); ``broker_cmd`` runs any
    broker there instead (``"mosquitto -c {conf}"``).
    ``sim`` only: ``watch`` is called once with a function giving the simulated time
    reached, for a progress display (``mqttsim run --progress``).
    """
    from .results import from_recording  # pandas: only once there is something to run

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "sim" and (scenario.other_brokers or scenario.bridges):
        raise ValueError(
            f"the {backend} backend runs one broker and no bridges; this scenario has "
            f"{len(scenario.brokers)} brokers and {len(scenario.bridges)} bridge(s): run it "
            "on the sim backend (the default)")
    if backend == "kernel":
        if broker is not None:
            raise ValueError("the kernel backend starts its broker in the broker's namespace: "
                             "give a broker command (broker_cmd) instead of an address")
        from ..backends.kernel import run_on_kernel
        return run_on_kernel(scenario, seed, capture, time_scale=time_scale,
                             broker_cmd=broker_cmd)
    if broker_cmd is not None:
        raise ValueError("broker_cmd is for backend='kernel'")
    if backend == "sockets":
        from ..backends.sockets import record_on_sockets
        recording = record_on_sockets(scenario, seed, capture, time_scale, broker)
        res = from_recording(recording, "sockets")
        res.stats.update(max_lag=recording.max_lag, time_scale=time_scale)
        if recording.max_lag > LAG_WARNING:
            warnings.warn(
                f"the sockets run fell behind its clock by up to {recording.max_lag:.3f} s of "
                f"scenario time ({1000 * recording.max_lag / time_scale:.0f} ms of real time) at "
                f"time_scale={time_scale:g}: timers ran late, so timings and outcomes may "
                "differ from the scenario; run it with a smaller time_scale",
                RuntimeWarning, stacklevel=2)
        return res
    if time_scale != 1.0 or broker is not None:
        raise ValueError("time_scale and broker are for backend='sockets'; the simulator "
                         "keeps its own clock and broker")
    from ..backends.sim import simulate
    return from_recording(simulate(scenario, seed, capture, watch))
