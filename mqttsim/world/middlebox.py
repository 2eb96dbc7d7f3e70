"""A middlebox with an idle timeout: the NAT, stateful firewall or load balancer on a route.

Theory of operation. A middlebox keeps one entry per flow (a TCP connection's 5-tuple, or
one simulated connection). The client's first packet of a flow (its SYN; a datagram's first
packet) creates the entry; every packet of the flow, either way, refreshes it. Once a flow
has been idle for longer than ``idle_timeout`` the entry is gone, and what then reaches the
middlebox for that flow depends on ``on_idle``:

- ``"drop"``: dropped, silently, in both directions -- the usual home or cellular NAT (its
  mapping is gone: an inbound packet has no way back in) and stateful firewall (a mid-stream
  segment without state is "invalid" and dropped). Neither end is told; each notices only
  through its own timers (MQTT keepalive, TCP's retransmission give-up).
- ``"reset"``: dropped, and answered with a RST to each end, which then closes at once --
  as a load balancer that resets expired flows does.

What real ones do (why a scenario sets this at all): RFC 5382 (REQ-5) says a NAT's
"established connection idle-timeout" for TCP MUST NOT be less than 2 hours 4 minutes, and
RFC 4787 (REQ-5) that a UDP mapping MUST NOT expire in less than 2 minutes (5 recommended);
many home routers and carrier-grade NATs time TCP out after minutes regardless. AWS's
Network Load Balancer tracks each TCP flow with a 350 s idle timeout (60-6000 s settable)
after which the flow is closed; Azure's Load Balancer (4 min default) sends RSTs to both
ends when "TCP reset on idle" is on. An MQTT keepalive longer than such a timeout lets the
middlebox forget a connection that both ends still believe in.

The table is pure (time comes in as ``now``) and knows nothing about how flows are named:
the simulator keys a flow by its connection, the kernel backend's emulator by the real
packets' 5-tuple (``mqttsim.backends.kernel.emulator``). Both ask ``packet`` the same
question, so every backend applies one rule.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field

ON_IDLE = ("drop", "reset")
DROP_REASON = "middlebox_idle"  # the drop reason in the segments table


class Verdict(enum.Enum):
    FORWARD = "forward"
    DROP = "drop"  # silently
    RESET = "reset"  # dropped, and a RST goes to each end


@dataclass
class FlowTable:
    """The flows a middlebox tracks, with its idle timeout (seconds) and what it does with
    a packet of a flow it has forgotten (``on_idle``: ``"drop"`` or ``"reset"``)."""

    idle_timeout: float
    on_idle: str = "drop"
    last_seen: dict[Hashable, float] = field(default_factory=dict)
    created: int = 0  # flows opened
    expired: int = 0  # flows forgotten after their idle timeout
    dropped: int = 0  # packets dropped (including those a reset answered)
    resets: int = 0  # packets answered with a RST to each end

    def __post_init__(self) -> None:
        if not self.idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds, not {self.idle_timeout!r}")
        if self.on_idle not in ON_IDLE:
            raise ValueError(f"on_idle must be 'drop' or 'reset', not {self.on_idle!r}")

    def packet(self, flow: Hashable, now: float, opens: bool) -> Verdict:
        """What happens to a packet of ``flow`` reaching the middlebox at ``now``.

        ``opens``: the packet may create the flow (the client's SYN, or the first packet of
        a simulated connection from the client's side). A packet that finds no entry and
        cannot open one meets ``on_idle``; so does one whose flow has idled out, which is
        then forgotten (a later SYN of the same 5-tuple starts afresh)."""
        last = self.last_seen.get(flow)
        if last is not None and now - last > self.idle_timeout:
            del self.last_seen[flow]
            self.expired += 1
            last = None
        if last is None and not opens:
            self.dropped += 1
            if self.on_idle == "reset":
                self.resets += 1
                return Verdict.RESET
            return Verdict.DROP
        if last is None:
            self.created += 1
        self.last_seen[flow] = now
        return Verdict.FORWARD

    def forget(self, flow: Hashable) -> None:
        """The flow ended (a RST or FIN passed): its entry is no longer needed."""
        self.last_seen.pop(flow, None)

    def counters(self) -> dict[str, int]:
        return {"flows": self.created, "expired": self.expired, "dropped": self.dropped,
                "resets": self.resets}
