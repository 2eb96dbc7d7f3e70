"""Connections between a simulated client and the broker: TCP (the default) or datagrams.

TCP theory of operation. A client end sends a SYN (retried on Linux's schedule, then
``syn_timeout``); the broker end answers SYN-ACK, or RST while the broker is down
(``refused``). The client ACKs and writes CONNECT; the broker accepts the connection when
the first segment after the SYN arrives. From then on each end is a ``TcpSender`` and a
``TcpReceiver`` (mqttsim.netmodel.tcp): written bytes become segments, every segment carries
the cumulative ACK of the other direction, the receiver's SACK blocks and its timestamp
echo, and a pure ACK answers data when Linux's delayed-ACK machine says so
(``DelayedAck``: quick ACKs at the start and before the application has answered, else at
most 40-200 ms or until the answer carries it). Loss recovery, congestion control and the
timers are the sender's (``TcpSender``: SACK/RACK-TLP, RTO with back-off, CUBIC or Reno),
so a lost segment shows up as delay; when the sender gives up (``tcp.max_retransmits`` as
Linux's tcp_retries2 time budget) it resets the connection (``tcp_timeout``). The handshake
measures the first RTT (SYN to SYN-ACK on the client, SYN-ACK to its ACK on the broker) and
seeds the RTO with it, as Linux does (tcp_ack_update_rtt on the SYN-ACK; tcp_synack_rtt_meas).
``close()`` sends a FIN after the written bytes; data that arrives at an end whose
application has closed or crashed is answered with RST (``reset``).

The datagram transport is a teaching contrast, not MQTT over TCP: each MQTT packet travels
alone (IPv4 + UDP headers, 28 bytes), is lost on its own, and nothing is retransmitted or
signalled: only the MQTT engines' own timers notice.

The interface is bytes and sizes in, callbacks out. An application writes bytes with the
sizes of the MQTT packets they hold (``write(data, sizes)``; a relay that does not know
them may pass none over TCP) and learns, through ``App.on_packets_arrived``, when each
packet's last byte reached the peer's application; the datagram transport needs the sizes,
since it carries each packet alone. Nothing here knows the tables the recorder keeps.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from collections.abc import Sequence

from ..netmodel.rto import RtoEstimator
from ..netmodel.tcp import (DelayedAck, Segment, TcpReceiver, TcpSender, congestion_control,
                            syn_schedule)
from .clock import Alarm, Clock, Occurrence
from .end_state import CONNECTING, DEAD, ESTABLISHED, SYN_RECEIVED, EndState, advance
from .network import Network

UDP_HEADER_BYTES = 28  # IPv4 (20) + UDP (8)
# TCP options as Linux sends them (net/ipv4/tcp_output.c, tcp_options_write): the timestamp
# option with its two NOPs on every segment; SYN and SYN-ACK carry MSS, SACK-permitted,
# timestamps and window scale (20 bytes); each SACK block 8 bytes after a 4-byte base.
TS_OPTION_BYTES = 12
SYN_OPTION_BYTES = 20
SACK_BASE_BYTES, SACK_BLOCK_BYTES = 4, 8


class App(Protocol):
    """What an end reports to the node that owns it."""

    def on_established(self, end: Any) -> None: ...
    def on_data(self, end: Any, data: bytes) -> None: ...
    def on_closed(self, end: Any, reason: str) -> None: ...

    def on_packets_arrived(self, end: Any, first: int, stop: int, now: float) -> None:
        """Packets ``first`` to ``stop - 1`` written on ``end`` (numbered from 0 in the order
        of ``write``'s ``sizes``) have fully reached the peer's application."""


class BrokerHost(App, Protocol):
    def accepting(self) -> bool: ...


class Control:
    """A segment without payload that matters for its flag: SYN, SYN-ACK, ACK (of the
    SYN-ACK) or RST. Counted with the TCP/IP header size on the links. ``ts``/``echo``: the
    timestamp option (RFC 7323 3), which times the handshake."""

    __slots__ = ("kind", "ts", "echo")

    def __init__(self, kind: str, ts: float | None = None, echo: float | None = None):
        self.kind, self.ts, self.echo = kind, ts, echo


class _Arrival(Occurrence):
    """A segment reaching the peer end over a one-link path: SimPy calls the peer's
    ``_segment_arrived`` with it directly (the most frequent event of a run; see ``_send``)."""

    __slots__ = ("segment", "row")


class Transport:
    """Opens connections of one kind (``tcp`` or ``datagram``) for every client."""

    def __init__(self, kind: str, clock: Clock, network: Network, tcp: Any, recorder: Any):
        if kind not in ("tcp", "datagram"):
            raise ValueError(f"transport must be 'tcp' or 'datagram', not {kind!r}")
        self.kind, self.clock, self.network, self.tcp, self.recorder = (
            kind, clock, network, tcp, recorder)
        self._ids = 0
        if kind == "tcp":  # the model has Reno and CUBIC: say so before anything runs
            congestion_control(getattr(tcp, "congestion", "cubic"))

    def open(self, client: str, app: App, broker: BrokerHost,
             broker_node: str | None = None) -> "TcpEnd | DatagramEnd":
        """Start connecting ``client`` to the broker; ``app.on_established`` follows. With
        several brokers: to the one at node ``broker_node``, by default ``broker.name``."""
        self._ids += 1
        if broker_node is None:
            broker_node = getattr(broker, "name", None)
        up, down = self.network.open_paths(client, broker_node)
        if self.kind == "datagram":
            return DatagramEnd.connect(self, self._ids, client, up, down, app, broker,
                                       broker_node)
        end = TcpEnd.connect(self, self._ids, client, up, down, app, broker, broker_node)
        self.network.when_reset(up, end.reset_by_middlebox)  # nothing without a middlebox
        return end

    def new_id(self) -> int:
        """A connection id no end has, for a connection that does not cross the network
        (a bridge's local leg inside its broker)."""
        self._ids += 1
        return self._ids


class _End:
    """What both kinds of end share: identity, route, the owner, packets written."""

    __slots__ = ("transport", "conn", "name", "peer_name", "clock", "recorder", "path", "app",
                 "peer", "state", "packets_written")

    def __init__(self, transport: Transport, conn: int, name: str, peer_name: str,
                 path: list, app: App | None):
        self.transport, self.conn, self.name, self.peer_name = transport, conn, name, peer_name
        self.clock, self.recorder = transport.clock, transport.recorder
        self.path = path  # hops towards the peer
        self.app = app
        self.peer: Any = None
        self.state: EndState = CONNECTING
        self.packets_written = 0  # MQTT packets written (their sizes given), for the numbering

    @property
    def open(self) -> bool:
        return self.state is ESTABLISHED


class TcpEnd(_End):
    """One end of a simulated TCP connection."""

    # Slots: 31 attributes, one more than CPython 3.11 shares between instances of a class
    # (then every instance holds a plain dict and each read is a dict lookup). 531k -> 495k
    # instructions per delivery in benchmarks/sim.py's model (callgrind, 3,000 minus 100
    # deliveries); with TcpSender's, 541k -> 495k (8.5 %).
    __slots__ = ("sender", "receiver", "timestamps", "sack", "bare_header", "header", "alarm",
                 "written", "marks", "app_closed", "mss", "delack", "_ack_owed",
                 "_delack_armed", "_syns_sent", "_handshake_sent", "_hop", "_arrived",
                 "broker_host", "down_path", "_syn_plan")

    @classmethod
    def connect(cls, transport: Transport, conn: int, client: str, up: list, down: list,
                app: App, broker: BrokerHost, broker_node: str | None = None) -> "TcpEnd":
        end = cls(transport, conn, client, broker_node or transport.network.broker, up, app)
        end.broker_host, end.down_path = broker, down
        tcp = transport.tcp
        times, give_up = syn_schedule(tcp.initial_rto, tcp.syn_retries, tcp.syn_linear_timeouts)
        start = transport.clock.now
        end._syn_plan = [start + t for t in times] + [start + give_up]
        transport.clock.call_at(end._syn_plan[0], end._syn, 0)
        return end

    def __init__(self, transport: Transport, conn: int, name: str, peer_name: str,
                 path: list, app: App | None):
        super().__init__(transport, conn, name, peer_name, path, app)
        tcp = transport.tcp
        timestamps = getattr(tcp, "timestamps", True)
        # The timestamp option takes 12 bytes of every segment: Linux's payload per segment
        # is the MSS less the options it sends (tcp_current_mss: 1460 - 12 = 1448).
        self.sender = TcpSender(
            tcp.mss - (TS_OPTION_BYTES if timestamps and tcp.mss > TS_OPTION_BYTES else 0),
            tcp.window,
            RtoEstimator(tcp.initial_rto, tcp.min_rto, tcp.max_rto, linux_floor=True),
            tcp.max_retransmits, congestion=getattr(tcp, "congestion", "cubic"),
            sack=getattr(tcp, "sack", True), timestamps=timestamps,
            tail_loss_probe=getattr(tcp, "tail_loss_probe", True),
            frto=getattr(tcp, "frto", True))
        self.receiver = TcpReceiver()
        self.timestamps, self.sack = self.sender.timestamps, self.sender.sack
        # header_bytes: IP + TCP without options; the options Linux adds come on top
        self.bare_header = tcp.header_bytes
        self.header = tcp.header_bytes + (TS_OPTION_BYTES if self.timestamps else 0)
        self.alarm = Alarm(self.clock, self.sender.next_deadline, self._retransmit)
        self.written = 0  # bytes the application wrote
        self.marks: deque = deque()  # stream offset after each packet written, not yet arrived
        self.app_closed = False
        self.mss = self.sender.mss
        self.delack = (DelayedAck(self.mss, tcp.window, ato_min=tcp.delayed_ack)
                       if tcp.delayed_ack else None)
        self._ack_owed = 0  # bytes received and not yet acknowledged
        self._delack_armed = False
        self._syns_sent = 0  # handshake transmissions (Karn, without timestamps)
        self._handshake_sent: float | None = None
        # What ``_send`` reads per segment, worked out once: the one hop of a one-link path
        # (None: several hops), and the callbacks of an arrival here (shared by every
        # _Arrival, which the kernel only reads).
        self._hop = path[0] if len(path) == 1 else None
        self._arrived = [self._segment_arrived]

    # -- application side ----------------------------------------------------------------
    def write(self, data: bytes, sizes: Sequence[int] = ()) -> None:
        """Send ``data``; ``sizes``: the MQTT packets it holds, whose arrival the writer's
        app then hears of (none: the writer does not need to know)."""
        if self.app_closed or self.state is DEAD:
            return
        if sizes:
            offset, marks = self.written, self.marks
            for size in sizes:
                offset += size
                marks.append(offset)
            self.packets_written += len(sizes)
        self.written += len(data)
        now = self.clock.now
        if self.delack is not None:
            self.delack.on_data_sent(now)
        self._send(self.sender.send(data, now))

    def close(self) -> None:
        """Orderly close: the application is done with the connection."""
        if self.app_closed or self.state is DEAD:
            return
        self.app_closed = True
        self.sender.close()
        self._send(self.sender.poll(self.clock.now))

    def abort(self) -> None:
        """The host crashed or the process died: RST, and no more callbacks."""
        if self.state is not DEAD:
            self._die()
            self._control("rst")

    # -- handshake ------------------------------------------------------------------------
    def _syn(self, attempt: int) -> None:
        """SYN number ``attempt`` (0: the first); only the next one (or the give-up) waits
        on the clock: a schedule queued whole would leave up to 7 dead timers per connection
        in the clock's queue for minutes (a third of the queue in benchmarks/sim.py)."""
        if self.state is CONNECTING:
            self._control("syn")
            attempt += 1
            if attempt + 1 < len(self._syn_plan):
                self.clock.call_at(self._syn_plan[attempt], self._syn, attempt)
            else:
                self.clock.call_at(self._syn_plan[attempt], self._syn_timeout)

    def _syn_timeout(self) -> None:
        if self.state is CONNECTING:
            self._die()
            self.app.on_closed(self, "syn_timeout")

    def _accepted(self, broker: BrokerHost) -> "TcpEnd":
        """The broker's side of this connection, made when the SYN arrives."""
        end = TcpEnd(self.transport, self.conn, self.peer_name, self.name, self.down_path, broker)
        end.state = SYN_RECEIVED  # a new end: TcpEnd starts as CONNECTING, the client's side
        end.peer, self.peer = self, end
        return end

    # -- carrying segments ------------------------------------------------------------------
    def _carry(self, item: Any, row: int, size: int) -> None:
        """Put one segment on the path to the peer (one link: one scheduled arrival)."""
        path = self.path
        if len(path) == 1:
            arrival = path[0].link.arrival(self.clock.now, size)
            if arrival is None:
                self.recorder.losses[row] = (path[0].link.last_dropped, path[0].name)
            else:
                self.clock.call_at(arrival, self._arrive_at_peer, item, row)
        else:
            self.transport.network.carry(path, size, (item, row), self._arrive_at_peer_hops,
                                         self.recorder.segment_lost)

    def _control(self, kind: str, echo: float | None = None) -> None:
        ack = 0 if kind in ("synack", "ack") else None  # acknowledges the peer's SYN
        now = self.clock.now
        size = (self.bare_header + SYN_OPTION_BYTES if kind in ("syn", "synack")
                else self.bare_header if kind == "rst" else self.header)
        row = self.recorder.segment(now, self.conn, self.name, self.peer_name,
                                    kind, 0, ack, b"", False, size)
        if kind in ("syn", "synack"):
            self._syns_sent += 1
            self._handshake_sent = now
        ts = now if self.timestamps and kind != "rst" else None
        self._carry(Control(kind, ts, echo if self.timestamps else None), row, size)

    def _handshake_rtt(self, echo: float | None, peer_ts: float | None) -> None:
        """Seed the RTO from the handshake's round trip (Linux: tcp_ack_update_rtt on the
        SYN-ACK, tcp_synack_rtt_meas on the final ACK): by the timestamp echo, else only if
        the SYN (SYN-ACK) went once (Karn). Remember the peer's timestamp to echo."""
        now = self.clock.now
        if echo is not None:
            self.sender.rto.sample(now - echo)
        elif self._syns_sent == 1 and self._handshake_sent is not None:
            self.sender.rto.sample(now - self._handshake_sent)
        self._syns_sent = 0  # measured once
        if peer_ts is not None and self.receiver.ts_recent is None:
            self.receiver.ts_recent = peer_ts

    def _send(self, segments: list[Segment], pure_ack: bool = False) -> None:
        """Record and carry segments the sender made (or one pure ACK).

        Over one link to an existing peer, the arrival is scheduled straight onto the
        peer's ``_segment_arrived`` (inlined here: this is the simulator's hottest loop).
        Equivalent to ``_carry`` because ``peer`` never changes once set (``_accepted``
        pairs the ends once). Kept because it pays (issue 14 item 5): ``_carry`` for every
        segment costs 4.0 % more instructions per delivery in ``benchmarks/sim.py``'s model
        (489.5k -> 509.3k, callgrind, 3,000 minus 100 deliveries as benchmarks/README.md
        says; +13.3 calls and +275 bytecodes per delivery)."""
        if not segments:
            return
        receiver = self.receiver
        ack = receiver.last_ack_sent = receiver.expected  # RFC 7323 4.3: Last.ACK.sent
        tsecr = receiver.ts_recent if self.timestamps else None
        sack = receiver.sack_blocks() if self.sack and receiver._out_of_order else ()
        if receiver.dsack is not None:
            if self.sack:
                sack = (receiver.dsack,) + sack  # RFC 2883: reported once, first
            receiver.dsack = None
        now, recorder, peer = self.clock.now, self.recorder, self.peer
        header = self.header + (SACK_BASE_BYTES + SACK_BLOCK_BYTES * len(sack) if sack else 0)
        hop = self._hop if peer is not None else None
        for seg in segments:
            seg.ack, seg.tsecr = ack, tsecr
            if sack:
                seg.sack = sack
            data = seg.data
            size = header + len(data)
            row = recorder.segment(now, self.conn, self.name, self.peer_name,
                                   "ack" if pure_ack else "fin" if seg.fin else "data", seg.seq,
                                   ack, data, seg.retransmission, size)
            if hop is None:
                self._carry(seg, row, size)
                continue
            arrival = hop.link.arrival(now, size)
            if arrival is None:
                recorder.losses[row] = (hop.link.last_dropped, hop.name)
                continue
            event = _Arrival()
            event.segment, event.row, event.callbacks = seg, row, peer._arrived
            self.clock.post(arrival, event)
        if self._ack_owed:
            self._ack_owed = 0  # the ACK rode along
            delack = self.delack
            if delack is not None:
                delack.on_ack_sent()
        if pure_ack:
            return
        self.alarm.arm()  # the retransmission timer moved earlier (or was started)

    def _arrive_at_peer_hops(self, item: tuple) -> None:
        self._arrive_at_peer(*item)

    def _arrive_at_peer(self, item: Any, row: int) -> None:
        peer = self.peer
        if item.__class__ is Segment:  # over several hops (one hop: see _send)
            event = _Arrival()
            event.segment, event.row = item, row
            peer._segment_arrived(event)
            return
        self.recorder.arrivals[row] = self.clock.now
        if peer is not None:
            peer._on_control(item)
        elif item.kind == "syn":  # a first SYN reaching the broker
            host = self.broker_host
            if not host.accepting():
                self._answer_from_broker("rst")
                return
            self._accepted(host)
            self.peer.receiver.ts_recent = item.ts
            self.peer._control("synack", item.ts)

    def _answer_from_broker(self, kind: str) -> None:
        """A reply from a broker that has no end for this connection (it is down)."""
        ghost = TcpEnd(self.transport, self.conn, self.peer_name, self.name, self.down_path, None)
        ghost.peer, ghost.state = self, DEAD  # a new end, never live
        ghost._control(kind)

    def _on_control(self, item: Control) -> None:
        kind = item.kind
        if kind == "syn":  # a retried SYN: our SYN-ACK was lost
            if self.state is SYN_RECEIVED:
                self.receiver.ts_recent = item.ts
                self._control("synack", item.ts)
        elif kind == "synack":
            if self.state is CONNECTING:
                self.state = advance(self.state, ESTABLISHED)
                self._handshake_rtt(item.echo, item.ts)
                self._control("ack", item.ts)
                self.app.on_established(self)
        elif kind == "ack":
            self._establish(item.echo)
        elif kind == "rst" and self.state is not DEAD and self.state is not CONNECTING:
            self._die()
            if not self.app_closed:
                self.app.on_closed(self, "reset")
        elif kind == "rst" and self.state is CONNECTING:
            self._die()
            self.app.on_closed(self, "refused")

    def _establish(self, echo: float | None = None) -> None:
        if self.state is SYN_RECEIVED:
            self.state = advance(self.state, ESTABLISHED)
            self._handshake_rtt(echo, None)
            self.app.on_established(self)

    def _segment_arrived(self, event: _Arrival) -> None:
        """A segment from the peer arrived (SimPy calls this directly: see
        ``_send``): stamp its arrival, take its ACK, deliver its bytes."""
        now = self.recorder.arrivals[event.row] = self.clock.now
        seg = event.segment
        state = self.state
        if state is not ESTABLISHED:
            if state is DEAD:
                if seg.data or seg.fin:
                    self._control("rst")  # nobody is listening any more
                return
            self._establish(seg.tsecr)
        if seg.ack is not None:
            sender = self.sender
            more = sender.on_ack(seg.ack, now, bool(seg.data) or seg.fin, seg.sack, seg.tsecr)
            if more:
                self._send(more)
            else:  # the ACK may have moved the timer earlier (RTO restarted, probe, RACK)
                due, armed = sender.timer_at, self.alarm.at
                if due is not None and (armed is None or due < armed):
                    self.alarm.wake_at(due)
        if self.app_closed:
            self._after_close(seg)
            return
        payload = seg.data
        if not payload and not seg.fin:
            return
        receiver = self.receiver
        was_eof, before = receiver.eof, receiver.expected
        data, _ = receiver.on_segment(seg)
        self._ack_owed += len(payload) or 1
        delack = self.delack
        if delack is None or seg.fin:
            wait = 0.0
        else:  # Linux decides before the application runs (tcp_rcv_established)
            rto = self.sender.rto
            wait = delack.on_data(now, receiver.expected > before and not receiver._out_of_order,
                                  self._ack_owed, len(payload), rto.srtt, rto.rto)
        if wait == 0.0 and self.state is not DEAD:
            self._send_ack()  # quick ACK, out of order, FIN, or more than a segment owed
        if data:
            # The peer's packets whose last byte is now delivered end here: tell the peer's
            # app first (the marks are the peer's: stream offsets after its packets).
            writer = self.peer
            marks, upto = writer.marks, receiver.expected
            if marks and marks[0] <= upto:
                arrived = 1
                marks.popleft()
                while marks and marks[0] <= upto:
                    marks.popleft()
                    arrived += 1
                stop = writer.packets_written - len(marks)
                writer.app.on_packets_arrived(writer, stop - arrived, stop, now)
            self.app.on_data(self, data)
        if self.state is DEAD:
            return
        if self._ack_owed and not self._delack_armed:  # the application wrote nothing back
            self._delack_armed = True
            self.clock.call_at(now + wait, self._delayed_ack)
        if receiver.eof and not was_eof and not self.app_closed:
            self.app.on_closed(self, "eof")

    def _delayed_ack(self) -> None:
        self._delack_armed = False
        if self._ack_owed and self.state is not DEAD:
            if self.delack is not None:
                self.delack.on_timer(self.sender.rto.rto)
            self._send_ack()

    def _after_close(self, seg: Segment) -> None:
        """Our application closed: finish the FIN exchange; data now gets a RST."""
        if seg.data:
            self._die()
            self._control("rst")  # data for an application that has closed the socket
            return
        if seg.fin:
            self.receiver.on_segment(seg)
            self._send_ack()
        if self.sender.closed and self.receiver.eof:
            self._die()  # both FINs acknowledged: the connection is over

    def _send_ack(self) -> None:
        self._send([Segment(self.sender.next_seq)], pure_ack=True)

    def _retransmit(self, now: float) -> None:
        if self.state is DEAD:
            return
        segments = self.sender.on_timer(now)
        if self.sender.failed:
            self._die()
            self._control("rst")
            if not self.app_closed:
                self.app.on_closed(self, "tcp_timeout")
            return
        self._send(segments)

    def _die(self) -> None:
        self.state = advance(self.state, DEAD)
        self.alarm.cancel()

    def reset_by_middlebox(self, to_client: list, to_broker: list) -> None:
        """A middlebox on the path (``mqttsim.world.middlebox``, ``on_idle = "reset"``)
        resets the connection: from where it stands, a RST to each end, each forged with
        the address of the other end as a real middlebox does (called on the client's end;
        ``to_client``/``to_broker``: the hops from the middlebox)."""
        for end, path in ((self, to_client), (self.peer, to_broker)):
            if end is None or end.state is DEAD:
                continue
            size, recorder = end.bare_header, self.recorder
            # its sequence number: the next the receiving end expects (RFC 9293 3.10.7.1)
            row = recorder.segment(self.clock.now, end.conn, end.peer_name, end.name, "rst",
                                   end.receiver.expected, None, b"", False, size)
            item = (Control("rst"), row)
            if path:
                self.transport.network.carry(path, size, item, end._reset_arrived,
                                             recorder.segment_lost)
            else:
                end._reset_arrived(item)

    def _reset_arrived(self, item: tuple) -> None:
        self.recorder.arrivals[item[1]] = self.clock.now
        self._on_control(item[0])


class DatagramEnd(_End):
    """One end of a datagram 'connection': no handshake, no retransmission, no signals."""

    __slots__ = ()

    @classmethod
    def connect(cls, transport: Transport, conn: int, client: str, up: list, down: list,
                app: App, broker: BrokerHost, broker_node: str | None = None) -> "DatagramEnd":
        node = broker_node or transport.network.broker
        end = cls(transport, conn, client, node, up, app)
        end.peer = cls(transport, conn, node, client, down, broker)
        end.peer.peer = end
        end.state = advance(end.state, ESTABLISHED)  # no handshake: up at once
        transport.clock.call_at(transport.clock.now, app.on_established, end)
        return end

    def write(self, data: bytes, sizes: Sequence[int] = ()) -> None:
        """Send each MQTT packet of ``data`` (``sizes``: their lengths) as one datagram."""
        if self.state is not ESTABLISHED:
            return
        at, now = 0, self.clock.now
        for size in sizes:
            piece = data[at:at + size]
            at += size
            seg_row = self.recorder.segment(now, self.conn, self.name, self.peer_name,
                                            "datagram", 0, None, piece, False,
                                            UDP_HEADER_BYTES + size)
            self.transport.network.carry(self.path, UDP_HEADER_BYTES + size,
                                         (piece, self.packets_written, seg_row),
                                         self.peer._arrive, self.recorder.segment_lost)
            self.packets_written += 1
        if at != len(data):
            raise ValueError(f"the packet sizes cover {at} of the {len(data)} bytes written: "
                             "a datagram carries whole MQTT packets")

    def _arrive(self, item: tuple) -> None:
        piece, number, seg_row = item
        self.recorder.segment_arrived(seg_row, self.clock.now)
        if self.state is CONNECTING:  # the broker learns of the client from its first datagram
            if not self.app.accepting():
                return
            self.state = advance(self.state, ESTABLISHED)
            self.app.on_established(self)
        if self.state is not ESTABLISHED:
            return
        writer = self.peer
        writer.app.on_packets_arrived(writer, number, number + 1, self.clock.now)
        self.app.on_data(self, piece)

    def close(self) -> None:
        if self.state is not DEAD:
            self.state = advance(self.state, DEAD)

    abort = close  # no signals: closing and crashing look the same to the peer
