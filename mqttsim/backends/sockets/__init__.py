"""The sockets backend: the world's client processes on real asyncio sockets, in (scaled)
real time, through a relay that applies the scenario's network; ``mqttsim broker``'s server
or any external broker at the far end."""

from .runner import SocketRecording, record_on_sockets

__all__ = ["SocketRecording", "record_on_sockets"]
