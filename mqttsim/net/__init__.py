"""Real sockets: the asyncio drivers of the sans-IO engines, and what a deployed broker needs.

The broker server (``BrokerServer``, ``ServerThread``) moves bytes and time between TCP
sockets and one ``BrokerEngine``; every protocol rule stays in ``mqttsim.protocol``. This
package may import ``mqttsim.protocol``, never the other way round (DESIGN.md).

Names are imported on first use, so ``mqttsim --help`` (which loads the command-line modules
of this package) does not pay for asyncio and the engines.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {"BrokerServer": "server", "Listener": "server", "ServerThread": "server"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
