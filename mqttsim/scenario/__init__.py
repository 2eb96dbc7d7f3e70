"""Scenarios: describe an experiment once, run it, read one kind of ``Results``.

``Scenario.load("data/scenarios/seed-sensor.toml")`` reads and checks a scenario file;
``run(scenario, seed)`` runs it and returns the result tables.
"""

from .load import ScenarioError
from .model import Scenario
from .run import run


def __getattr__(name: str):
    """``Results`` on first use: it imports pandas, which ``mqttsim run`` on a file it must
    refuse (and its ``--help``) need not load."""
    if name == "Results":
        from .results import Results
        return Results
    raise AttributeError(f"module 'mqttsim.scenario' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "Results"})


__all__ = ["Scenario", "ScenarioError", "Results", "run"]
