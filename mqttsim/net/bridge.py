"""Bridges of the real broker: ``mqttsim.protocol.bridge.Bridge`` driven by asyncio.

This module moves bytes and time, nothing else (what goes where, remapping, loop prevention
and the restart back-off are the sans-IO ``Bridge``'s). Per bridge:

- the local leg is an in-process connection to the server's own engine: a ``_Loopback``
  transport handed to the server's ordinary connection protocol, so the engine sees one more
  client (as Mosquitto's bridge is one more context in its broker) and the server needs no
  bridge code. Bytes cross in both directions with ``call_soon``, never re-entering the
  engine while the server is writing its output;
- the remote leg is a TCP connection to ``address``, opened at start and, after it breaks or
  cannot be opened, again after ``Bridge.restart_delay()`` (``restart_timeout``);
- both engines' timers sit behind one ``call_at`` at ``Bridge.next_deadline()``.

``start_bridges(server, settings, log)`` starts them for ``mqttsim broker -c``.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Sequence
from typing import Any

from ..protocol import events as ev
from ..protocol.bridge import Bridge
from .bridge_config import BridgeSettings
from .server import BrokerServer, _Connection

LOCAL_RECONNECT_DELAY = 1.0  # seconds: the local leg only breaks if the server closed it


class _Loopback:
    """The transport of the local leg, as the server's ``_Connection`` uses one: what the
    server writes goes to the bridge; closing it tells both sides."""

    def __init__(self, runner: "BridgeRunner"):
        self.runner = runner
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("bridge", self.runner.bridge.config.name)
        return default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass  # the bridge reads everything at once: no backpressure to apply

    def write(self, data: bytes) -> None:
        if not self.closing:
            self.runner.loop.call_soon(self.runner._from_local_broker, self, bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.runner.loop.call_soon(self.runner._local_closed, self)

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Remote(asyncio.Protocol):
    """The remote leg's TCP connection."""

    def __init__(self, runner: "BridgeRunner"):
        self.runner = runner
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.runner._remote_up(self)

    def data_received(self, data: bytes) -> None:
        self.runner._from_remote_broker(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.runner._remote_down(self, exc)


class BridgeRunner:
    """One bridge of a running ``BrokerServer``: ``await runner.start()``, ``await
    runner.stop()``."""

    def __init__(self, server: BrokerServer, settings: BridgeSettings,
                 log: Callable[[str], None] | None = None, rng: random.Random | None = None):
        self.server, self.settings = server, settings
        self.bridge = Bridge(settings.config, rng or random.Random())
        self.log = log or (lambda line: None)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._local: _Connection | None = None
        self._loopback: _Loopback | None = None
        self._remote: _Remote | None = None
        self._timer: Any = None
        self._reconnect: asyncio.TimerHandle | None = None
        self._stopped = False
        self.connections = 0  # remote connections that reached CONNACK

    @property
    def name(self) -> str:
        return self.settings.config.name

    def now(self) -> float:
        return self.server.clock.time()

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._open_local()
        self._connect_remote()

    async def stop(self) -> None:
        """DISCONNECT from the remote broker, close both legs, cancel every timer."""
        self._stopped = True
        for handle in (self._timer, self._reconnect):
            if handle is not None:
                handle.cancel()
        remote = self._remote
        if remote is not None and remote.transport is not None:
            self.bridge.remote.disconnect(self.now())
            data = self.bridge.data_for_remote()
            if data:
                remote.transport.write(data)
            remote.transport.close()
        if self._loopback is not None:
            self._loopback.closing = True
            if self._local is not None:
                self.server._lost(self._local, None)
        await asyncio.sleep(0)

    # -- local leg -------------------------------------------------------------------------
    def _open_local(self) -> None:
        if self._stopped:
            return
        self._loopback = _Loopback(self)
        self._local = _Connection(self.server)
        self._local.connection_made(self._loopback)  # the server's engine: one more client
        self.bridge.connect_local(self.now())
        self._flush()

    def _from_local_broker(self, loopback: _Loopback, data: bytes) -> None:
        if loopback is self._loopback and not loopback.closing:
            self.bridge.receive_local(data, self.now())
            self._flush()

    def _local_closed(self, loopback: _Loopback) -> None:
        if loopback is not self._loopback:
            return
        local = self._local
        self._local = self._loopback = None
        if local is not None:
            self.server._lost(local, None)
        self.bridge.local_lost(self.now())
        self._flush()
        if not self._stopped:
            self.loop.call_later(LOCAL_RECONNECT_DELAY, self._open_local)

    # -- remote leg ------------------------------------------------------------------------
    def _connect_remote(self) -> None:
        self._reconnect = None
        if self._stopped:
            return
        host, port = self.settings.host, self.settings.port
        self.log(f"Connecting bridge {self.name} ({host}:{port})")
        task = self.loop.create_task(self.loop.create_connection(
            lambda: _Remote(self), host, port))
        task.add_done_callback(self._connect_done)

    def _connect_done(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.log(f"Bridge {self.name}: cannot connect to {self.settings.host}:"
                     f"{self.settings.port}: {exc}")
            self._restart_later()

    def _restart_later(self) -> None:
        if self._stopped or self._reconnect is not None:
            return
        delay = self.bridge.restart_delay()
        self._reconnect = self.server.clock.call_at(self.now() + delay, self._connect_remote)

    def _remote_up(self, remote: _Remote) -> None:
        if self._stopped:
            remote.transport.close()
            return
        self._remote = remote
        self.bridge.connect_remote(self.now())
        self._flush()

    def _from_remote_broker(self, remote: _Remote, data: bytes) -> None:
        if remote is self._remote:
            self.bridge.receive_remote(data, self.now())
            self._flush()

    def _remote_down(self, remote: _Remote, exc: Exception | None) -> None:
        if remote is not self._remote:
            return
        self._remote = None
        self.bridge.remote_lost(self.now())
        self._flush()
        if not self._stopped:
            self.log(f"Bridge {self.name}: connection to {self.settings.host}:"
                     f"{self.settings.port} lost" + (f" ({exc})" if exc else ""))
            self._restart_later()

    # -- output and timers -----------------------------------------------------------------
    def _flush(self) -> None:
        bridge = self.bridge
        events = bridge.take_events()
        for e in events.remote:
            if e.__class__ is ev.Connected:
                self.connections += 1
                self.log(f"Bridge {self.name} connected to {self.settings.host}:"
                         f"{self.settings.port} (p{e.version}, c{int(bridge.config.clean_session)}"
                         f", k{bridge.config.keepalive})")
            elif e.__class__ is ev.ConnectionRefused:
                self.log(f"Bridge {self.name}: connection refused: {e.reason}")
        data = bridge.data_for_local()
        if data and self._local is not None and not self._loopback.closing:
            self.loop.call_soon(self._to_local_broker, self._local, data)
        remote = self._remote
        data = bridge.data_for_remote()
        if remote is not None and remote.transport is not None:
            if data:
                remote.transport.write(data)
            if bridge.remote.should_close:
                remote.transport.close()
        if bridge.local.should_close and self._loopback is not None:
            self._loopback.close()
        self._arm_timer()

    def _to_local_broker(self, local: _Connection, data: bytes) -> None:
        if local is self._local and not self._stopped:
            local.data_received(data)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = None if self._stopped else self.bridge.next_deadline()
        if deadline is not None:
            self._timer = self.server.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.bridge.on_timer(self.now())
        self._flush()


async def start_bridges(server: BrokerServer, settings: Sequence[BridgeSettings],
                        log: Callable[[str], None] | None = None) -> list[BridgeRunner]:
    """Start a ``BridgeRunner`` per ``connection`` section of a started server."""
    runners = [BridgeRunner(server, item, log) for item in settings]
    for runner in runners:
        await runner.start()
    return runners
