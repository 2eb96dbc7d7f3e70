"""``BlockingClient``: the asyncio ``Client`` for code without asyncio (notebooks, scripts).

An event loop runs in a daemon thread; every call hands a coroutine to it and blocks until it
is done. Everything the client does (reconnecting, the offline buffer, WebSockets) is the
asyncio client's; ``client`` gives it. Importable from mqttsim.net.client too.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ..protocol import events as ev
from .client import Client, Message


class BlockingClient:
    """``Client`` for code without asyncio: an event loop runs in a daemon thread.

    ```python
    with BlockingClient("127.0.0.1", 1883) as c:
        c.subscribe("sensor", qos=1)
        c.publish("sensor", b"12", qos=1)
        print(c.messages(timeout=1.0))      # [Message(topic='sensor', payload=b'12', ...)]
    ```
    Every call takes the keyword arguments of the asyncio method and blocks until it is done.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, **options: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"mqttsim-client-{host}:{port}")
        self._thread.start()
        self._client: Client = self._call(self._make(host, port, options))

    @staticmethod
    async def _make(host: str, port: int, options: dict) -> Client:
        return Client(host, port, **options)  # created on the loop thread: its futures live there

    def _call(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def client(self) -> Client:
        """The asyncio client underneath (for its engine, client id, ...)."""
        return self._client

    def connect(self) -> ev.Connected:
        return self._call(self._client.connect())

    def subscribe(self, topic_filters, qos: int = 0, **kwargs: Any) -> tuple[int, ...]:
        return self._call(self._client.subscribe(topic_filters, qos, **kwargs))

    def unsubscribe(self, topic_filters) -> tuple[int, ...]:
        return self._call(self._client.unsubscribe(topic_filters))

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0,
                retain: bool = False, **kwargs: Any) -> int:
        return self._call(self._client.publish(topic, payload, qos, retain, **kwargs))

    def messages(self, timeout: float = 1.0, count: int | None = None) -> list[Message]:
        """Messages that arrive within ``timeout`` seconds (fewer if ``count`` is reached)."""
        return self._call(self._collect(timeout, count))

    async def _collect(self, timeout: float, count: int | None) -> list[Message]:
        got: list[Message] = []
        iterator = self._client.messages.__aiter__()
        deadline = self._loop.time() + timeout
        while count is None or len(got) < count:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                break
            try:
                got.append(await asyncio.wait_for(iterator.__anext__(), remaining))
            except (asyncio.TimeoutError, StopAsyncIteration):
                break
        return got

    def disconnect(self) -> None:
        self._call(self._client.disconnect())

    def close(self) -> None:
        """Disconnect if connected, then stop the loop thread."""
        if self._loop.is_closed():
            return
        try:
            if self._client._transport is not None or self._client._reconnect_task:
                self.disconnect()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> BlockingClient:
        try:
            self.connect()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
