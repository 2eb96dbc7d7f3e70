"""The SimPy simulator: the world's processes, network and TCP model in simulated time.

``simulate(scenario, seed)`` runs one scenario and returns the raw ``Recording``;
``mqttsim.run`` turns it into result tables.
"""

from .runner import simulate

__all__ = ["simulate"]
