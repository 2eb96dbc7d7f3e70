"""``mqttsim broker [-p PORT] [-c FILE] [-v]``: the socket broker from the command line.

Like ``mosquitto``: listens on 127.0.0.1:1883 unless told otherwise, logs to stderr, ``-v``
logs every packet (the learning view of the seed tutorial), and SIGINT/SIGTERM stop it
cleanly (clients are told, persistent state is committed) with exit status 0.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from .cli_common import port_problem

EXIT_FAILURE = 1
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1883


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--port", type=int, default=None,
                        help=f"TCP port to listen on (default {DEFAULT_PORT}; 0 picks a free "
                             "one and logs it)")
    parser.add_argument("-c", "--config-file", dest="config_file", default=None,
                        metavar="FILE", help="read a mosquitto.conf (the commonly used subset)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every connection and packet, as mosquitto -v")


class _ConfigError(Exception):
    """The configuration file cannot be used; the message says why."""


def _settings(path: str):
    """``load_config(path)`` from mqttsim.net.config, with its errors made readable."""
    from .config import load_config

    try:
        return load_config(path)
    except (OSError, ValueError) as exc:
        raise _ConfigError(str(exc)) from None


def build_server(args: argparse.Namespace, log):
    """The BrokerServer the arguments describe (without starting it); with a configuration
    file that enables persistence, the engine is restored from the database first."""
    from ..protocol.broker import BrokerEngine
    from ..protocol.broker_state import BrokerConfig
    from .server import BrokerServer, Listener

    on_events = log if args.verbose else None
    if args.config_file is None:
        port = DEFAULT_PORT if args.port is None else args.port
        config = BrokerConfig(emit_packet_events=args.verbose)
        return BrokerServer(config, host=DEFAULT_HOST, port=port, on_events=on_events)
    settings = _settings(args.config_file)
    try:
        listeners = [Listener(item.host, item.port,
                              item.tls.ssl_context() if item.tls is not None else None,
                              item.protocol)
                     for item in settings.listeners]
    except OSError as exc:  # ssl.SSLError included: a certificate or key that does not load
        raise _ConfigError(f"{args.config_file}: TLS listener: {exc}") from None
    if args.port is not None and listeners:  # -p replaces the first listener's port
        listeners[0] = replace(listeners[0], port=args.port)
    config = replace(settings.config, emit_packet_events=args.verbose)
    store = None
    if settings.persistence.enabled:
        from .store import SqliteStore

        try:
            store = SqliteStore(settings.persistence.path, config, on_problem=log.write)
            restored = store.load(config)  # bad rows: logged one line each and skipped
        except Exception as exc:  # noqa: BLE001 - sqlite3 and StoreError: refuse to start
            raise _ConfigError(f"{args.config_file}: persistence: cannot open "
                               f"{settings.persistence.path}: {exc}") from None
    engine = BrokerEngine(config, auth=settings.auth, authz=settings.authz, store=store)
    if store is not None:
        engine.restore(*restored)
    for note in settings.notes:
        log.write(f"Config: {note}")
    server = BrokerServer(engine=engine, listeners=listeners, on_events=on_events)
    server.bridge_settings = settings.bridges  # started by serve() (mqttsim.net.bridge)
    return server


async def serve(args: argparse.Namespace) -> int:
    """Start, log where we listen, serve until SIGINT/SIGTERM, stop cleanly."""
    import asyncio
    import signal

    from .. import __version__
    from .log import BrokerLog
    from .server import address_in_use

    log = BrokerLog()
    problem = port_problem(args.port, zero_allowed=True)
    if problem is not None:
        print(f"mqttsim broker: -p {args.port}: {problem}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        server = build_server(args, log)
    except _ConfigError as exc:
        print(f"mqttsim broker: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    log.peer = server.peer
    log.port = server.local_port
    log.write(f"mqttsim broker {__version__} starting")
    try:
        await server.start()
    except OSError as exc:
        where = ", ".join(f"{item.host or '*'}:{item.port}" for item in server.listeners)
        why = ("the address is already in use (is another broker running? choose another "
               "port with -p)" if address_in_use(exc) else exc.strerror or str(exc))
        print(f"mqttsim broker: cannot listen on {where}: {why}", file=sys.stderr)
        return EXIT_FAILURE
    for listener, (host, port) in server.bound:
        kind = " websockets" if listener.protocol == "websockets" else ""
        log.write(f"Opening{kind} listen socket on {host} port {port}.")
    from .bridge import start_bridges
    bridges = await start_bridges(server, getattr(server, "bridge_settings", ()), log.write)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    await stop.wait()
    for bridge in bridges:
        await bridge.stop()
    await server.stop()
    store = server.engine.store
    if store is not None and hasattr(store, "close"):
        store.close()
    log.write("mqttsim broker stopped.")
    return 0


def run(args: argparse.Namespace) -> int:
    from .server import run as run_loop

    return run_loop(serve(args))
