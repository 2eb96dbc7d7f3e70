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


def syn_schedule(initial_rto: float = 1.0, syn_retries: int = 6,
                 linear_timeouts: int = 4) -> tuple[list[float], float]:
    """When a connecting client (re)sends its SYN, and when it gives up.

    Linux since 6.5 (commit ccce324dabfe, "tcp: make the first N SYN RTO backoffs linear",
    net.ipv4.tcp_syn_linear_timeouts = 4, as macOS and iOS do): the first ``linear_timeouts``
    timeouts keep TCP_TIMEOUT_INIT (1 s), then the timeout doubles from it, and the connect
    fails after tcp_syn_retries + tcp_syn_linear_timeouts retransmissions (tcp_write_timeout):
    SYNs at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s, failure at 131 s. With 0 linear timeouts,
    older kernels' doubling: SYNs at 0, 1, 3, 7, 15, 31, 63 s, failure at 127 s
    (tcp_model_timeout(6, 1 s)). Measured on this machine's kernel (6.18) through the kernel
    backend: 1.0, 2.0, 3.1, 4.1, 5.1, 7.1, 11.2, 19.4, 35.6, 68.3 s, failure at 133.9 s (the
    kernel's timer wheel makes long timers a little late)."""
    intervals = [initial_rto] * linear_timeouts + [initial_rto * 2 ** k
                                                   for k in range(syn_retries + 1)]
    times, t = [], 0.0
    for interval in intervals:
        times.append(t)
        t += interval
    return times, t


__all__ = ["HEADER_BYTES", "Segment", "TcpSender", "TcpReceiver", "DelayedAck", "Reno",
           "Cubic", "congestion_control", "syn_schedule"]
