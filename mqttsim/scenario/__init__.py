"""Scenarios: describe an experiment once, run it, read one kind of ``Results``.

``Scenario.load("data/scenarios/seed-sensor.toml")`` reads and checks a scenario file;
``run(scenario, seed)`` runs it and returns the result tables.
"""

from .load import ScenarioError
from .model import Scenario
from .results import Results
from .run import run

__all__ = ["Scenario", "ScenarioError", "Results", "run"]
