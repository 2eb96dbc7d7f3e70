"""Network models shared by both backends: links (bandwidth, latency, jitter, queue, loss,
outages) and TCP's retransmission timer.

Pure and deterministic (an explicit ``random.Random``, time passed in): the SimPy simulator
schedules its events from these answers, and the real-socket relay delays bytes by them, so
the two backends cannot drift apart. Like ``mqttsim.protocol``, nothing here does IO or
reads a clock.
"""

from .link import Bernoulli, GilbertElliott, LinkDirection, LinkParams, Outage, Transmission
from .rto import RtoEstimator
from .tcp import HEADER_BYTES, Segment, TcpReceiver, TcpSender, syn_schedule

__all__ = ["Bernoulli", "GilbertElliott", "LinkDirection", "LinkParams", "Outage",
           "Transmission", "RtoEstimator", "HEADER_BYTES", "Segment", "TcpReceiver",
           "TcpSender", "syn_schedule"]
