"""A recording TCP relay: sits between a real client and a real broker and keeps every byte.

The client connects to the relay's port, the relay opens a connection to the upstream server
and copies bytes both ways. Each direction of each connection is recorded separately, chunk by
chunk exactly as ``recv`` returned them, so a test can replay the stream into a decoder with
the same boundaries the network produced (and then with any other split).

Every chunk is recorded *before* it is forwarded, so the merged ``log`` of a connection is in
causal order: an answer can only be read after the packet it answers was read and passed on.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

CLIENT_TO_BROKER = "client->broker"
BROKER_TO_CLIENT = "broker->client"


@dataclass
class RecordedConnection:
    """Both byte streams of one relayed TCP connection (appended to by the relay's threads)."""

    index: int
    client_chunks: list[bytes] = field(default_factory=list)  # client -> broker
    broker_chunks: list[bytes] = field(default_factory=list)  # broker -> client
    log: list[tuple[str, bytes]] = field(default_factory=list)  # both, in the order read
    closed: threading.Event = field(default_factory=threading.Event)

    @property
    def client_bytes(self) -> bytes:
        return b"".join(self.client_chunks)

    @property
    def broker_bytes(self) -> bytes:
        return b"".join(self.broker_chunks)

    def chunks(self, direction: str) -> list[bytes]:
        """The recorded chunks of one direction (``CLIENT_TO_BROKER`` or ``BROKER_TO_CLIENT``)."""
        if direction == CLIENT_TO_BROKER:
            return list(self.client_chunks)
        if direction == BROKER_TO_CLIENT:
            return list(self.broker_chunks)
        raise ValueError(f"unknown direction {direction!r}")


def split_frames(data: bytes) -> list[bytes]:
    """Cut a byte stream into whole MQTT control packets using only the fixed header.

    Deliberately independent of the codec under test: it reads the first byte and the
    remaining-length varint and nothing else, so tests can sync on and compare raw frames.
    A trailing incomplete packet is left out.
    """
    frames = []
    pos = 0
    while pos < len(data):
        length = 0
        shift = 0
        cursor = pos + 1
        while True:
            if cursor >= len(data):
                return frames
            byte = data[cursor]
            cursor += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ValueError(f"remaining length longer than 4 bytes at offset {pos}")
        end = cursor + length
        if end > len(data):
            return frames
        frames.append(data[pos:end])
        pos = end
    return frames


def frame_types(data: bytes) -> list[int]:
    """The control packet type (high nibble of the first byte) of each whole frame in ``data``."""
    return [frame[0] >> 4 for frame in split_frames(data)]


class Relay:
    """Listen on 127.0.0.1:<free port>; relay every accepted connection to ``upstream``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.host, self.port = self._listener.getsockname()
        self._changed = threading.Condition()
        self._connections: list[RecordedConnection] = []
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._accept_thread = threading.Thread(target=self._accept_loop, name="relay-accept",
                                               daemon=True)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Relay:
        self._accept_thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, cut every relayed connection, and join the threads."""
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._changed:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accept_thread.join(timeout=2)
        for thread in list(self._threads):
            thread.join(timeout=2)
        for sock in sockets:
            sock.close()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- what tests read ----------------------------------------------------------------------

    @property
    def connections(self) -> list[RecordedConnection]:
        """The connections accepted so far, in accept order."""
        with self._changed:
            return list(self._connections)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        """Block until ``predicate()`` holds (re-checked as bytes move), else TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"relay: timed out after {timeout} s waiting for "
                                       f"{what or predicate}")
                self._changed.wait(min(remaining, 0.1))

    def wait_connection(self, index: int, timeout: float) -> RecordedConnection:
        """The ``index``-th accepted connection, waiting for it to arrive."""
        self.wait_for(lambda: len(self._connections) > index, timeout,
                      f"connection #{index} to arrive")
        return self._connections[index]

    def wait_closed(self, conn: RecordedConnection, timeout: float) -> None:
        """Wait until both directions of ``conn`` reached end of stream."""
        self.wait_for(conn.closed.is_set, timeout, f"connection #{conn.index} to close")

    # -- the copying ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()  # the client sees the refusal as a closed connection
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._changed:
                conn = RecordedConnection(index=len(self._connections))
                self._connections.append(conn)
                self._sockets += [client, upstream]
                self._changed.notify_all()
            # partial, not a lambda: the loop rebinds conn/client/upstream on the next accept
            done = threading.Barrier(2, action=partial(self._finish, conn, client, upstream))
            for src, dst, direction, sink in (
                    (client, upstream, CLIENT_TO_BROKER, conn.client_chunks),
                    (upstream, client, BROKER_TO_CLIENT, conn.broker_chunks)):
                thread = threading.Thread(target=self._pump,
                                          args=(conn, src, dst, direction, sink, done),
                                          name=f"relay-{conn.index}-{direction}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, conn: RecordedConnection, src: socket.socket, dst: socket.socket,
              direction: str, sink: list[bytes], done: threading.Barrier) -> None:
        try:
            while True:
                try:
                    chunk = src.recv(65536)
                except OSError:
                    chunk = b""  # reset or cut by close(): treat as end of stream
                if not chunk:
                    break
                with self._changed:
                    sink.append(chunk)
                    conn.log.append((direction, chunk))
                    self._changed.notify_all()
                try:
                    dst.sendall(chunk)
                except OSError:
                    break
            try:
                dst.shutdown(socket.SHUT_WR)  # pass the half-close on, like a real TCP path
            except OSError:
                pass
        finally:
            try:
                done.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass

    def _finish(self, conn: RecordedConnection, client: socket.socket,
                upstream: socket.socket) -> None:
        with self._changed:
            for sock in (client, upstream):
                if sock in self._sockets:
                    self._sockets.remove(sock)
                sock.close()
            conn.closed.set()
            self._changed.notify_all()
