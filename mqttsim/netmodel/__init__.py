"""Network models shared by the backends: links (bandwidth, latency, jitter, queue, loss,
outages) and TCP (segments, congestion control, loss recovery, timers).

Pure and deterministic (an explicit ``random.Random``, time passed in): the SimPy simulator
schedules its events from these answers, and the real-socket relay delays bytes by them, so
the two backends cannot drift apart. Like ``mqttsim.protocol``, nothing here does IO or
reads a clock.
"""

from .link import Bernoulli, GilbertElliott, LinkDirection, LinkParams, Outage, Transmission
from .rto import RtoEstimator, give_up_after
from .tcp import (HEADER_BYTES, Cubic, DelayedAck, Reno, Segment, TcpReceiver, TcpSender,
                  congestion_control, syn_schedule)

__all__ = ["Bernoulli", "GilbertElliott", "LinkDirection", "LinkParams", "Outage",
           "Transmission", "RtoEstimator", "give_up_after", "HEADER_BYTES", "Segment",
           "TcpReceiver", "TcpSender", "DelayedAck", "Reno", "Cubic", "congestion_control",
           "syn_schedule"]
