"""``run(scenario, seed)``: one scenario on one backend, as ``Results``."""

from __future__ import annotations

from .model import Scenario
from .results import Results, from_recording

BACKENDS = ("sim",)


def run(scenario: Scenario, seed: int = 0, backend: str = "sim", capture: bool = True) -> Results:
    """Run ``scenario`` with random ``seed`` on ``backend`` (``"sim"``: the SimPy simulator).

    Same scenario and seed give identical tables. ``capture=False`` keeps no segment
    payloads and broker events (no ``to_pcap``/``broker_log``), for very large runs.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    from ..sim import simulate
    return from_recording(simulate(scenario, seed, capture))
