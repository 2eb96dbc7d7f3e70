"""A TCP byte stream as Linux runs it, reduced to what decides MQTT's fate.

The model is split by responsibility; this module gathers it for its users:

- ``segment``: ``Segment`` (seq, data, ACK, SACK blocks, timestamps) and header sizes;
- ``tcp_sender``: ``TcpSender`` -- congestion window, SACK scoreboard, RACK-TLP, RTO with
  Linux's back-off and give-up, F-RTO and undo;
- ``congestion``: Reno and CUBIC (``tcp.congestion``, CUBIC by default: the kernel
  backend's per-route default, so that the two backends are comparable);
- ``rto``: RFC 6298's estimator with Linux's floor, ``give_up_after`` (tcp_retries2);
- ``tcp_receiver``: ``TcpReceiver`` (in-order delivery, SACK blocks, ``ts_recent``) and
  ``DelayedAck`` (Linux's quick-ACK / delayed-ACK machine).

Like the engines, the model is sans-IO: time is passed in, segments are returned, and the
driver (``mqttsim.world.transport``) carries them over links. ``syn_schedule`` gives the
handshake's SYN retries.
"""

from __future__ import annotations

from .congestion import Cubic, Reno, congestion_control
from .segment import HEADER_BYTES, Segment
from .tcp_receiver import DelayedAck, TcpReceiver
from .tcp_sender import TcpSender


def syn_schedule(initial_rto: float = 1.0, syn_retries: int = 6) -> tuple[list[float], float]:
    """When a connecting client (re)sends its SYN, and when it gives up (Linux defaults:
    TCP_TIMEOUT_INIT = 1 s doubling, tcp_syn_retries = 6: SYNs at 0, 1, 3, 7, 15, 31, 63 s;
    failure at 127 s, which is also net/ipv4/tcp_timer.c tcp_model_timeout(6, 1 s))."""
    times, t, rto = [], 0.0, initial_rto
    for _ in range(syn_retries + 1):
        times.append(t)
        t += rto
        rto *= 2
    return times, t


__all__ = ["HEADER_BYTES", "Segment", "TcpSender", "TcpReceiver", "DelayedAck", "Reno",
           "Cubic", "congestion_control", "syn_schedule"]
