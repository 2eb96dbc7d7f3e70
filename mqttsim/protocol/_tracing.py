"""The packet trace switch both engines share."""

from __future__ import annotations


class TracesPackets:
    """``trace_packets`` turns PacketSent and PacketReceived events on or off together (a
    driver may flip it at any time); ``trace_sent`` and ``trace_received`` switch one kind
    alone, so a driver that builds its packet table from PacketSent (the simulator) need not
    pay for PacketReceived, whose tracing also takes the engines off their fast path."""

    trace_sent: bool
    trace_received: bool

    @property
    def trace_packets(self) -> bool:
        return self.trace_sent and self.trace_received

    @trace_packets.setter
    def trace_packets(self, on: bool) -> None:
        self.trace_sent = self.trace_received = on
