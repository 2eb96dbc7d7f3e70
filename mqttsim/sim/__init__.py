"""The SimPy simulator: the real codec and engines over modelled links and TCP.

``simulate(scenario, seed)`` runs one scenario in simulated time and returns the raw
``Recording``; ``mqttsim.run`` turns it into result tables.
"""

from .runner import Recording, simulate

__all__ = ["Recording", "simulate"]
