"""MQTT over WebSockets (MQTT 3.1.1 and 5.0, chapter 6) for the broker and the client.

Theory of operation: the WebSocket framing and handshake (RFC 6455) are the ``websockets``
package's sans-IO protocol objects (``ServerProtocol``, ``ClientProtocol``); this module only
moves bytes between them, an asyncio TCP transport, and the asyncio ``Protocol`` that speaks
MQTT bytes (the broker's per-connection protocol, the client's transport protocol). That inner
protocol is handed a ``WebSocketTransport`` once the handshake is done: its ``write`` sends one
binary frame, and its ``data_received`` gets the payload of every binary frame as it arrives.
So neither the broker nor the client knows the difference, and the plain TCP path is untouched.

The rules of MQTT chapter 6, and where they are kept:

- [MQTT-6.0.0-1] packets travel in binary frames; any other data frame closes the connection
  (close code 1003, "unsupported data").
- [MQTT-6.0.0-2] packets need not align with frames: the payloads go to the MQTT decoder as
  a byte stream, so one packet split over frames (or over the fragments of one message) and
  several packets in one frame both decode.
- [MQTT-6.0.0-3] the client offers the ``mqtt`` subprotocol; [MQTT-6.0.0-4] the server
  selects ``mqtt``. As Mosquitto does, the server also accepts ``mqttv3.1`` (what MQTT 3.1
  clients such as older paho and MQTT.js offer) and refuses a client that offers neither
  (HTTP 400 from ``websockets``).

Any request path is accepted (Mosquitto's behaviour; clients usually use ``/mqtt``). Pings
are answered by ``websockets``. A handshake not finished within ``HANDSHAKE_TIMEOUT`` seconds
costs that connection only.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

try:
    from websockets.client import ClientProtocol
    from websockets.exceptions import InvalidState, InvalidURI
    from websockets.frames import Opcode
    from websockets.http11 import Request, Response
    from websockets.server import ServerProtocol
    from websockets.uri import parse_uri
except ImportError as _missing:  # pragma: no cover - a dependency of mqttsim
    raise ImportError("MQTT over WebSockets needs the 'websockets' package: "
                      "pip install websockets") from _missing

SUBPROTOCOLS = ("mqtt", "mqttv3.1")  # [MQTT-6.0.0-4]; mqttv3.1 as Mosquitto accepts it
HANDSHAKE_TIMEOUT = 10.0
# The largest MQTT packet (1 + 4 + 268,435,455 bytes): a bigger WebSocket message cannot be
# MQTT; the broker's own max_packet_size applies to the packets inside.
MAX_MESSAGE = 268_435_460
CLOSE_UNSUPPORTED_DATA = 1003  # RFC 6455 7.4.1
DEFAULT_PATH = "/mqtt"


class WebSocketError(ConnectionError):
    """The WebSocket handshake failed (HTTP status, missing subprotocol, bad URL...)."""


class WebSocketTransport(asyncio.Transport):
    """What the inner MQTT protocol writes to: each ``write`` is one binary frame."""

    def __init__(self, adapter: _Adapter):
        super().__init__()
        self._adapter = adapter

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._adapter.send(data)

    def close(self) -> None:
        self._adapter.close()

    def abort(self) -> None:
        self._adapter.abort()

    def is_closing(self) -> bool:
        return self._adapter.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "subprotocol":
            return self._adapter.ws.subprotocol
        if name == "websocket_path":
            return self._adapter.path
        return self._adapter.tcp.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._adapter.tcp.pause_reading()

    def resume_reading(self) -> None:
        self._adapter.tcp.resume_reading()

    def is_reading(self) -> bool:
        return self._adapter.tcp.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._adapter.tcp.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._adapter.tcp.get_write_buffer_size()

    def can_write_eof(self) -> bool:
        return False


class _Adapter(asyncio.Protocol):
    """One TCP connection carrying a WebSocket; the inner protocol sees MQTT bytes only.

    States: handshaking (``opened`` False), open, closing (a close frame sent or the TCP
    transport closing). The inner protocol hears ``connection_made`` when the handshake is
    done and ``connection_lost`` only if it heard ``connection_made``.
    """

    def __init__(self, inner: asyncio.Protocol, ws: ServerProtocol | ClientProtocol,
                 handshake_timeout: float):
        self.inner = inner
        self.ws = ws
        self.tcp: asyncio.Transport | None = None
        self.transport = WebSocketTransport(self)
        self.opened = False
        self.closing = False
        self.path = ""
        self._handshake_timeout = handshake_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._in_text = False  # inside a fragmented text message (its continuations refused)

    # -- from the TCP transport ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tcp = transport  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._handshake_timeout, self._handshake_expired)

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if self.closing:
                break
            if event.__class__ is not Request and event.__class__ is not Response:
                self._frame(event)
            else:
                self._handshake(event)
        self._write_out()

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self._write_out()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._cancel_timer()
        if self.opened:
            self.inner.connection_lost(exc)
        else:
            self._handshake_failed(exc or WebSocketError("connection closed during the "
                                                         "WebSocket handshake"))

    def pause_writing(self) -> None:
        if self.opened:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.opened:
            self.inner.resume_writing()

    # -- frames ----------------------------------------------------------------------------
    def _frame(self, frame: Any) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or (opcode is Opcode.CONT and not self._in_text):
            if self.opened and frame.data:
                self.inner.data_received(bytes(frame.data))
        elif opcode is Opcode.TEXT or opcode is Opcode.CONT:
            self._in_text = not frame.fin
            # [MQTT-6.0.0-1] anything but binary data closes the connection.
            self.ws.fail(CLOSE_UNSUPPORTED_DATA, "MQTT needs binary frames [MQTT-6.0.0-1]")
            self.closing = True  # nothing more reaches MQTT; _write_out sends the close frame
        # PING, PONG and CLOSE: websockets answers them itself (see _write_out).

    # -- from the inner protocol -----------------------------------------------------------
    def send(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing or not data:
            return
        try:
            self.ws.send_binary(data)
        except InvalidState:  # a close frame came in first: the connection is ending
            self._close_tcp()
            return
        self._write_out()

    def close(self) -> None:
        """A clean close: a close frame (1000), then the TCP connection (RFC 6455 7.1.1)."""
        if self.closing:
            return
        if self.opened:
            try:
                self.ws.send_close(1000)
            except Exception:  # noqa: BLE001 - already closing on the WebSocket level
                pass
        self._write_out()
        self._close_tcp()

    def abort(self) -> None:
        self.closing = True
        if self.tcp is not None:
            self.tcp.abort()

    # -- helpers ---------------------------------------------------------------------------
    def _write_out(self) -> None:
        tcp = self.tcp
        for chunk in self.ws.data_to_send():
            if chunk:
                if not tcp.is_closing():
                    tcp.write(chunk)
            else:  # SEND_EOF: websockets ends the stream (after a close handshake)
                self._close_tcp()
        if self.ws.close_expected():
            self._close_tcp()  # a close frame went out (an answer, or ws.fail)

    def _close_tcp(self) -> None:
        """Close the TCP connection after what is buffered (idempotent)."""
        self.closing = True
        self._cancel_timer()
        if self.tcp is not None and not self.tcp.is_closing():
            self.tcp.close()  # after what is buffered

    def _opened(self) -> None:
        self.opened = True
        self._cancel_timer()
        self.inner.connection_made(self.transport)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _handshake_expired(self) -> None:
        self._timer = None
        if not self.opened:
            self._handshake_failed(WebSocketError(
                f"no WebSocket handshake within {self._handshake_timeout:g} s"))
            self.abort()

    def _handshake(self, event: Any) -> None:
        raise NotImplementedError

    def _handshake_failed(self, exc: BaseException) -> None:
        """The connection ended before the handshake completed."""


class _ServerAdapter(_Adapter):
    def _handshake(self, request: Any) -> None:
        ws = self.ws
        if request.__class__ is not Request or self.opened:
            return
        self.path = request.path
        response = ws.accept(request)
        ws.send_response(response)
        if ws.handshake_exc is None:
            self._write_out()
            self._opened()
        else:
            self._write_out()  # the HTTP error response (e.g. 400 missing subprotocol)
            self._close_tcp()


def server_protocol_factory(inner_factory: Callable[[], asyncio.Protocol], *,
                            handshake_timeout: float = HANDSHAKE_TIMEOUT
                            ) -> Callable[[], asyncio.Protocol]:
    """A ``loop.create_server`` protocol factory: a WebSocket server handshake, then the
    protocols ``inner_factory`` makes see the MQTT bytes (``protocol websockets``)."""

    def make() -> asyncio.Protocol:
        ws = ServerProtocol(subprotocols=list(SUBPROTOCOLS), max_size=MAX_MESSAGE)
        return _ServerAdapter(inner_factory(), ws, handshake_timeout)
    return make


class _ClientAdapter(_Adapter):
    def __init__(self, inner: asyncio.Protocol, ws: ClientProtocol, handshake_timeout: float,
                 path: str):
        super().__init__(inner, ws, handshake_timeout)
        self.path = path
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.ws.send_request(self.ws.connect())
        self._write_out()

    def _handshake(self, response: Any) -> None:
        if response.__class__ is not Response or self.opened:
            return
        exc = self.ws.handshake_exc
        if exc is None and self.ws.subprotocol not in SUBPROTOCOLS:
            exc = WebSocketError("the server did not select the 'mqtt' subprotocol "
                                 "[MQTT-6.0.0-4]")
        if exc is not None:
            self._handshake_failed(exc)
            self._close_tcp()
            return
        self._opened()
        if not self.ready.done():
            self.ready.set_result(self.transport)

    def _handshake_failed(self, exc: BaseException) -> None:
        if not self.ready.done():
            if not isinstance(exc, (OSError, WebSocketError)):
                exc = WebSocketError(f"WebSocket handshake failed: {exc}")
            self.ready.set_exception(exc)


def parse_url(url: str) -> tuple[bool, str, int, str, tuple[str, str] | None]:
    """``ws://[user[:password]@]host[:port][/path]`` (or ``wss://``): (secure, host, port,
    path with query, user info). The default path is ``/mqtt``, as MQTT.js and paho use."""
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise ValueError(f"{url!r} is not a ws:// or wss:// URL ({exc})") from None
    path = uri.resource_name if urlsplit(url).path else DEFAULT_PATH
    return uri.secure, uri.host, uri.port, path, uri.user_info


async def open_connection(inner_factory: Callable[[], asyncio.Protocol], host: str, port: int,
                          *, path: str = DEFAULT_PATH, ssl: _ssl.SSLContext | None = None,
                          server_hostname: str | None = None, timeout: float = 10.0,
                          subprotocol: str = "mqtt") -> tuple[WebSocketTransport, Any]:
    """Connect over TCP (TLS if ``ssl``), do the WebSocket handshake offering ``mqtt``
    ([MQTT-6.0.0-3]) and return ``(transport, inner protocol)`` as ``create_connection``
    does; the inner protocol's ``connection_made`` has run. Raises ``OSError`` (TCP, TLS),
    ``WebSocketError`` (HTTP refusal, no ``mqtt`` subprotocol) or ``asyncio.TimeoutError``."""
    loop = asyncio.get_running_loop()
    scheme = "wss" if ssl is not None else "ws"
    path = path if path.startswith("/") else "/" + path
    uri = parse_uri(f"{scheme}://{_host_in_url(host)}:{port}{path}")
    inner = inner_factory()
    adapter: _ClientAdapter | None = None

    def make() -> _ClientAdapter:
        nonlocal adapter
        ws = ClientProtocol(uri, subprotocols=[subprotocol], max_size=MAX_MESSAGE)
        adapter = _ClientAdapter(inner, ws, timeout, uri.resource_name)
        return adapter

    async def connect() -> WebSocketTransport:
        await loop.create_connection(make, host, port, ssl=ssl,
                                     server_hostname=server_hostname)
        return await adapter.ready

    try:
        transport = await asyncio.wait_for(connect(), timeout)
    except BaseException:
        if adapter is not None:
            adapter.abort()
        raise
    return transport, inner


def _host_in_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
