"""mqttsim: a lab for learning and measuring MQTT.

The codec and protocol engines live in ``mqttsim.protocol`` (pure: no IO, no clock); the
simulator, the socket server and the notebook helpers are built on top of them.
``from mqttsim import Scenario, run`` gives the experiment API (imported on first use, so
that ``mqttsim pub`` does not pay for pandas).
"""

__version__ = "0.1.0"

_LAZY = {"Scenario": "mqttsim.scenario", "ScenarioError": "mqttsim.scenario",
         "Results": "mqttsim.scenario", "run": "mqttsim.scenario",
         "sweep": "mqttsim.lab.sweep", "report": "mqttsim.lab.report"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mqttsim' has no attribute {name!r}")


__all__ = ["Scenario", "ScenarioError", "Results", "run", "sweep", "report", "__version__"]
