"""``mqttsim exec SCENARIO --client NAME -- CMD...``: any program on a scenario's link.

The scenario's network is made real (a namespace per host, the link emulator between
them, ``network.py``); a broker runs in the broker's namespace (``mqttsim broker`` by
default, or ``--broker-cmd "mosquitto -c {conf}"``); CMD runs inside client NAME's
namespace, so everything it sends to the broker crosses that client's links as the
scenario describes them. ``{host}`` and ``{port}`` in CMD (and ``$MQTT_HOST``/``$MQTT_PORT``
in its environment) are the broker's address. ``--also NAME=SHELL`` starts more programs
in other clients' namespaces (a publisher beside a subscriber). At the end: what crossed
each link (sent, delivered, dropped by reason), and with ``--pcap`` every packet.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Any

from ...scenario.cli_run import EXIT_BAD_SCENARIO, _load, _scenario_arguments

STOP_TIMEOUT = 5.0
EXIT_TIMEOUT = 124  # as timeout(1) says it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _scenario_arguments(parser)
    parser.add_argument("--client", required=True, metavar="NAME",
                        help="run CMD in this client's namespace (its links, as the scenario "
                             "says)")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=SHELL",
                        help="also run this shell command in client NAME's namespace "
                             "(repeatable), e.g. --also 'pub=sleep 1; mosquitto_pub -h {host} "
                             "-t sensor -m 12'")
    parser.add_argument("--broker-cmd", metavar="CMD",
                        help="the broker to run in the broker's namespace (default: mqttsim "
                             "broker); {conf} is a mosquitto.conf listening on its address")
    parser.add_argument("--pcap", metavar="FILE", help="write every packet that crossed "
                        "the links (real IPv4/TCP headers) as a pcap file")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="stop CMD after this many seconds (exit status 124)")
    parser.epilog = "then -- CMD ARGS...: the program to run and its arguments"


def _argv(args: argparse.Namespace) -> list[str]:
    return list(getattr(args, "program", None) or [])


def run(args: argparse.Namespace) -> int:
    from . import missing_requirement
    from .network import BROKER_PORT, KernelNetwork
    from .packets import write_raw_pcap
    from .runner import BrokerCommand

    def fail(message: str) -> int:
        print(f"mqttsim exec: {message}", file=sys.stderr)
        return EXIT_BAD_SCENARIO

    command = _argv(args)
    if not command:
        return fail("give the program to run after --, e.g. -- mosquitto_sub -h {host} -t "
                    "sensor -v")
    scenario = _load(args, "exec")
    if scenario is None:
        return EXIT_BAD_SCENARIO
    clients = [c.name for c in scenario.clients]
    also = []
    for item in args.also:
        name, sep, shell = item.partition("=")
        if not sep or not shell:
            return fail(f"--also takes NAME=SHELL, not {item!r}")
        also.append((name, shell))
    for name in [args.client] + [name for name, _ in also]:
        if name not in clients:
            return fail(f"the scenario has no client {name!r}; it has: {', '.join(clients)}")
    missing = missing_requirement()
    if missing:
        return fail(missing)
    broker_cmd = args.broker_cmd or f"{shlex.quote(sys.executable)} -m mqttsim broker -c {{conf}}"
    started: list[subprocess.Popen] = []
    status = 0
    with KernelNetwork(scenario, args.seed) as net:
        broker = BrokerCommand(broker_cmd, net, scenario.broker.name)
        try:
            try:
                broker.start()
            except RuntimeError as exc:
                return fail(str(exc))
            host, port = net.broker.address, BROKER_PORT
            values = {"host": host, "port": port}
            env = {**os.environ, "MQTT_HOST": host, "MQTT_PORT": str(port)}
            net.start()
            print(f"mqttsim exec: broker at {host}:{port}; {args.client} is "
                  f"{net.hosts[args.client].address} (namespace "
                  f"{net.hosts[args.client].namespace}); links as in {scenario.name}, "
                  f"congestion control {net.congestion}", file=sys.stderr, flush=True)
            for name, shell in also:
                started.append(subprocess.Popen(
                    ["ip", "netns", "exec", net.hosts[name].namespace, "sh", "-c",
                     _fill(shell, values)], env=env, stdin=subprocess.DEVNULL,
                    start_new_session=True))
            main = subprocess.Popen(["ip", "netns", "exec", net.hosts[args.client].namespace]
                                    + [_fill(word, values) for word in command], env=env)
            started.append(main)
            try:
                status = main.wait(args.timeout)
            except subprocess.TimeoutExpired:
                print(f"mqttsim exec: stopped {command[0]} after {args.timeout:g} s",
                      file=sys.stderr)
                status = EXIT_TIMEOUT
        finally:
            for process in reversed(started):
                _stop(process)
            broker.stop()
        log = net.stop()
        _print_links(log.links, sys.stderr)
        if args.pcap:
            count = write_raw_pcap(args.pcap, [(row[0], row[7]) for row in log.packets])
            print(f"mqttsim exec: wrote {count} packets to {args.pcap}", file=sys.stderr)
    return status


def _fill(text: str, values: dict[str, Any]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (its whole session when it has one), a bounded wait, then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        if os.getsid(process.pid) == process.pid:
            os.killpg(process.pid, 15)
        else:
            process.terminate()
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)
    except ProcessLookupError:
        pass


def _print_links(links: list[dict], out: Any) -> None:
    print(f"{'link':<24} {'sent':>6} {'delivered':>9} {'bytes':>9} {'loss':>5} {'queue':>5} "
          f"{'outage':>6}", file=out)
    for row in links:
        if row["sent"]:
            print(f"{row['link']:<24} {row['sent']:>6} {row['delivered']:>9} {row['bytes']:>9} "
                  f"{row['dropped_loss']:>5} {row['dropped_queue']:>5} "
                  f"{row['dropped_outage']:>6}", file=out)
