"""``mqttsim sub`` / ``mqttsim pub`` as users run them: separate processes against a real
Debian mosquitto, side by side with mosquitto_sub / mosquitto_pub.

Each flag is checked by what it visibly does (what the other side receives, what is printed,
the exit status), and where mosquitto's own tool can print the same thing, its output is the
expected value. One mosquitto serves the module; every test uses its own topics.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mqttsim.cli import build_parser
from mqttsim.net.cli_clients import format_message
from mqttsim.net.client import Message
from support.mosquitto import Broker, mosquitto_broker, require_mosquitto, stop_process

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0  # seconds for any single step on loopback
VERSIONS = ("mqttv31", "mqttv311", "mqttv5")


@dataclass(frozen=True)
class Live:
    """A running mosquitto, whose log a test can wait on (e.g. for "Sending SUBACK")."""

    broker: Broker

    @property
    def port(self) -> int:
        return self.broker.port

    def log(self) -> str:
        return self.broker.log()


@contextmanager
def live_mosquitto(workdir: Path, extra: str = "") -> Iterator[Live]:
    with mosquitto_broker(workdir, extra) as running:
        yield Live(running)


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Live]:
    require_mosquitto("mosquitto_pub", "mosquitto_sub")
    with live_mosquitto(tmp_path_factory.mktemp("mosquitto")) as running:
        yield running


@pytest.fixture(scope="module")
def auth_broker(tmp_path_factory) -> Iterator[Live]:
    """A mosquitto that refuses anonymous clients; alice's password is 'secret'."""
    require_mosquitto("mosquitto_passwd")
    work = tmp_path_factory.mktemp("mosquitto-auth")
    passwords = work / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "alice", "secret"],
                   check=True, capture_output=True)
    # The generated config says "allow_anonymous true" first; mosquitto takes the last value.
    extra = f"password_file {passwords}\nallow_anonymous false\n"
    with live_mosquitto(work, extra) as running:
        yield running


def mqttsim(*args: str, stdin: bytes | None = None,
            timeout: float = WAIT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "mqttsim", *args], input=stdin,
                          capture_output=True, timeout=timeout, cwd=ROOT)


def start(*command: str) -> subprocess.Popen:
    """A long-running client (``mqttsim ...`` or a mosquitto tool) with its output piped."""
    if command[0] in ("sub", "pub"):
        command = (sys.executable, "-m", "mqttsim", *command)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=ROOT)


def finish(proc: subprocess.Popen, timeout: float = WAIT) -> tuple[int, bytes, bytes]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    return proc.returncode, out, err


def wait_log(broker: Live, text: str, count: int, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``text`` appears ``count`` times in the broker's log (e.g. a SUBACK sent)."""
    deadline = time.monotonic() + WAIT
    while broker.log().count(text) < count:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"client exited early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count}x {text!r} in the broker log:\n{broker.log()}")
        time.sleep(0.02)


def subscribed(broker: Live, *command: str) -> subprocess.Popen:
    """Start a subscriber and return once the broker has sent its SUBACK."""
    before = broker.log().count("Sending SUBACK")
    proc = start(*command)
    wait_log(broker, "Sending SUBACK", before + 1, proc)
    return proc


def port(broker: Live) -> list[str]:
    return ["-p", str(broker.port)]


# ---------------------------------------------------------------------------------------------
# The seed walk-through, and mixing with mosquitto's tools


@pytest.mark.parametrize("version", VERSIONS)
def test_walkthrough_sub_v_prints_sensor_12(broker: Live, version: str) -> None:
    topic = f"sensor{version}"  # `-t sensor` in the tutorial; one topic per version here
    sub = subscribed(broker, "sub", "-v", "-t", topic, "-C", "1", "-V", version, *port(broker))
    done = mqttsim("pub", "-t", topic, "-m", "12", "-V", version, *port(broker))
    assert done.returncode == 0, done.stderr
    status, out, err = finish(sub)
    assert (status, out) == (0, f"{topic} 12\n".encode()), err


def test_defaults_are_localhost_1883_and_h_is_the_host() -> None:
    args = build_parser().parse_args(["sub", "-t", "sensor", "-v"])
    assert (args.host, args.port, args.qos, args.keepalive) == ("localhost", None, 0, 60)
    assert build_parser().parse_args(["pub", "-h", "example", "-t", "a", "-m", "1"]).host \
        == "example"


def test_mosquitto_pub_to_mqttsim_sub(broker: Live) -> None:
    sub = subscribed(broker, "sub", "-v", "-t", "mix/1", "-C", "1", "-q", "1", *port(broker))
    subprocess.run(["mosquitto_pub", "-t", "mix/1", "-m", "from mosquitto", "-q", "1",
                    *port(broker)], check=True, timeout=WAIT)
    assert finish(sub)[:2] == (0, b"mix/1 from mosquitto\n")


def test_mqttsim_pub_to_mosquitto_sub(broker: Live) -> None:
    sub = subscribed(broker, "mosquitto_sub", "-v", "-t", "mix/2", "-C", "1", "-q", "2",
                     *port(broker))
    assert mqttsim("pub", "-t", "mix/2", "-m", "from mqttsim", "-q", "2",
                   *port(broker)).returncode == 0
    assert finish(sub)[:2] == (0, b"mix/2 from mqttsim\n")


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pub_debug_log_matches_mosquitto_pub(broker: Live, qos: int, version: str) -> None:
    args = ["-t", "debug/pub", "-m", "12", "-q", str(qos), "-i", "dbg", "-d", "-V", version,
            *port(broker)]
    theirs = subprocess.run(["mosquitto_pub", *args], capture_output=True, timeout=WAIT)
    ours = mqttsim("pub", *args)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout.decode().splitlines() == theirs.stdout.decode().splitlines()


def test_sub_debug_log_shows_subscribe_suback_and_publish(broker: Live) -> None:
    sub = subscribed(broker, "sub", "-d", "-t", "debug/sub", "-q", "1", "-C", "1", "-i", "dsub",
                     *port(broker))
    mqttsim("pub", "-t", "debug/sub", "-m", "x", "-q", "1", *port(broker))
    status, out, _ = finish(sub)
    assert status == 0
    assert out.decode().splitlines() == [
        "Client dsub sending CONNECT",
        "Client dsub received CONNACK (0)",
        "Client dsub sending SUBSCRIBE (Mid: 1, Topic: debug/sub, QoS: 1, Options: 0x00)",
        "Client dsub received SUBACK",
        "Subscribed (mid: 1): 1",
        "Client dsub received PUBLISH (d0, q1, r0, m1, 'debug/sub', ... (1 bytes))",
        "Client dsub sending PUBACK (m1, rc0)",
        "x",
        "Client dsub sending DISCONNECT",
    ]


# ---------------------------------------------------------------------------------------------
# sub's flags


def test_C_exits_after_count_messages(broker: Live) -> None:
    sub = subscribed(broker, "sub", "-t", "count", "-C", "2", *port(broker))
    for payload in ("one", "two", "three"):
        mqttsim("pub", "-t", "count", "-m", payload, *port(broker))
        if sub.poll() is not None:
            break
    assert finish(sub)[:2] == (0, b"one\ntwo\n")


def test_W_times_out_with_status_27_and_keepalive_pings(broker: Live) -> None:
    began = time.monotonic()
    done = mqttsim("sub", "-t", "quiet", "-W", "2", "-k", "1", "-d", "-i", "pinger",
                   *port(broker))
    elapsed = time.monotonic() - began
    assert done.returncode == 27  # mosquitto_sub's status for -W
    assert b"Timed out" in done.stderr
    assert 2.0 <= elapsed < 6
    lines = done.stdout.decode().splitlines()
    assert "Client pinger sending PINGREQ" in lines
    assert "Client pinger received PINGRESP" in lines
    assert lines[-1] == "Client pinger sending DISCONNECT"


def test_R_skips_retained_messages(broker: Live) -> None:
    mqttsim("pub", "-t", "stale", "-m", "old", "-r", *port(broker))
    sub = subscribed(broker, "sub", "-t", "stale", "-R", "-C", "1", "-v", *port(broker))
    mqttsim("pub", "-t", "stale", "-m", "new", *port(broker))
    assert finish(sub)[:2] == (0, b"stale new\n")
    # Without -R the retained message is the first one printed.
    done = mqttsim("sub", "-t", "stale", "-C", "1", "-v", *port(broker))
    assert done.stdout == b"stale old\n"


def test_T_filters_out_topics(broker: Live) -> None:
    sub = subscribed(broker, "sub", "-t", "filt/#", "-T", "filt/b/#", "-T", "filt/c", "-v",
                     "-C", "1", *port(broker))
    for topic in ("filt/b", "filt/b/x", "filt/c", "filt/d"):
        mqttsim("pub", "-t", topic, "-m", topic[5:], *port(broker))
    assert finish(sub)[:2] == (0, b"filt/d d\n")


def test_U_unsubscribes_after_subscribing(broker: Live) -> None:
    before = broker.log().count("Sending UNSUBACK")
    sub = start("sub", "-t", "unsub/a", "-t", "unsub/b", "-U", "unsub/a", "-v", "-C", "1",
                *port(broker))
    wait_log(broker, "Sending UNSUBACK", before + 1, sub)
    mqttsim("pub", "-t", "unsub/a", "-m", "dropped", *port(broker))
    mqttsim("pub", "-t", "unsub/b", "-m", "kept", *port(broker))
    assert finish(sub)[:2] == (0, b"unsub/b kept\n")


FORMAT = r"%t|%p|%q|%r|%m|%l|%x|%X|%%|\t|%10t|%-10t|%5.3t|%05l|@@"


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_F_format_matches_mosquitto_sub(broker: Live, version: str) -> None:
    topic = f"fmt/{version}"
    mqttsim("pub", "-t", topic, "-m", "hi\x01", "-q", "1", "-r", *port(broker))
    args = ["-t", topic, "-q", "1", "-C", "1", "-F", FORMAT, "-V", version, *port(broker)]
    theirs = subprocess.run(["mosquitto_sub", *args], capture_output=True, timeout=WAIT)
    ours = mqttsim("sub", *args)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout
    assert ours.stdout.startswith(f"{topic}|hi\x01|1|1|1|3|686901|686901|%|\t".encode())


def test_N_prints_no_newline(broker: Live) -> None:
    sub = subscribed(broker, "sub", "-t", "nonl", "-N", "-C", "2", *port(broker))
    for payload in ("ab", "cd"):
        mqttsim("pub", "-t", "nonl", "-m", payload, *port(broker))
    assert finish(sub)[:2] == (0, b"abcd")


def test_F_rejects_an_unknown_specifier_like_mosquitto_sub(broker: Live) -> None:
    done = mqttsim("sub", "-t", "x", "-F", "%i", *port(broker))
    assert done.returncode == 1
    assert b"Invalid format specifier 'i'" in done.stderr


def test_format_message_time_and_escapes() -> None:
    message = Message("a/b", b"xyz", qos=2, retain=True, packet_id=7)
    assert format_message(r"%t\n%p\0%q%r%m\\", message) == b"a/b\nxyz\x00217\\"
    assert format_message("@Y-%U", message, now=0.5).endswith(b"-0.500000000")
    assert format_message("@N", message, now=1.25) == b"250000000"


# ---------------------------------------------------------------------------------------------
# pub's flags


def test_r_retains(broker: Live) -> None:
    assert mqttsim("pub", "-t", "keep", "-m", "kept", "-r", "-q", "1",
                   *port(broker)).returncode == 0
    done = subprocess.run(["mosquitto_sub", "-t", "keep", "-C", "1", "-F", "%r %p",
                           *port(broker)], capture_output=True, timeout=WAIT)
    assert done.stdout == b"1 kept\n"


def test_n_sends_an_empty_message(broker: Live) -> None:
    sub = subscribed(broker, "mosquitto_sub", "-t", "null", "-C", "1", "-v", *port(broker))
    assert mqttsim("pub", "-t", "null", "-n", *port(broker)).returncode == 0
    assert finish(sub)[:2] == (0, b"null (null)\n")  # how mosquitto_sub -v shows no payload


def test_l_sends_each_line(broker: Live) -> None:
    sub = subscribed(broker, "mosquitto_sub", "-t", "lines", "-C", "3", "-F", "[%p]",
                     *port(broker))
    done = mqttsim("pub", "-t", "lines", "-l", "-q", "1", *port(broker),
                   stdin=b"first\n\nthird\n")
    assert done.returncode == 0, done.stderr
    assert finish(sub)[:2] == (0, b"[first]\n[]\n[third]\n")


def test_f_sends_a_file(broker: Live, tmp_path: Path) -> None:
    data = bytes(range(256)) * 10
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    sub = subscribed(broker, "sub", "-t", "file", "-C", "1", "-F", "%l %x", *port(broker))
    assert mqttsim("pub", "-t", "file", "-f", str(path), "-q", "2",
                   *port(broker)).returncode == 0
    assert finish(sub)[1] == f"{len(data)} {data.hex()}\n".encode()


def test_f_of_a_missing_file_is_an_error(broker: Live, tmp_path: Path) -> None:
    done = mqttsim("pub", "-t", "file", "-f", str(tmp_path / "nope"), *port(broker))
    assert done.returncode == 1
    assert b"Unable to open file" in done.stderr


def test_s_sends_stdin_as_one_message(broker: Live) -> None:
    sub = subscribed(broker, "sub", "-t", "stdin", "-C", "1", "-F", "%x", *port(broker))
    assert mqttsim("pub", "-t", "stdin", "-s", *port(broker), stdin=b"a\nb\n").returncode == 0
    assert finish(sub)[1] == b"610a620a\n"


def test_pub_without_a_message_is_a_usage_error(broker: Live) -> None:
    done = mqttsim("pub", "-t", "x", *port(broker))
    assert done.returncode == 1
    assert b"Both topic and message must be supplied" in done.stderr


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_q_sets_publish_and_subscription_qos(broker: Live, qos: int) -> None:
    sub = subscribed(broker, "sub", "-t", f"qos/{qos}", "-q", "2", "-C", "1", "-F", "%q %p",
                     *port(broker))
    assert mqttsim("pub", "-t", f"qos/{qos}", "-m", "v", "-q", str(qos),
                   *port(broker)).returncode == 0
    assert finish(sub)[1] == f"{qos} v\n".encode()


# ---------------------------------------------------------------------------------------------
# Sessions, ids, wills


def test_c_and_i_keep_a_session_that_queues_qos1_messages(broker: Live) -> None:
    sub = subscribed(broker, "sub", "-c", "-i", "keeper", "-q", "1", "-t", "persist",
                     *port(broker))
    sub.send_signal(signal.SIGTERM)  # clean exit: DISCONNECT, the session stays
    assert finish(sub)[0] == 0
    for payload in ("m1", "m2"):
        mqttsim("pub", "-t", "persist", "-m", payload, "-q", "1", *port(broker))
    done = mqttsim("sub", "-c", "-i", "keeper", "-q", "1", "-t", "persist", "-C", "2", "-W", "5",
                   *port(broker))
    assert (done.returncode, done.stdout) == (0, b"m1\nm2\n")
    # Without -c the same id starts clean: nothing queued for it. A queued m3 would be sent
    # on CONNECT, so before the live message published once the SUBACK is out.
    mqttsim("pub", "-t", "persist", "-m", "m3", "-q", "1", *port(broker))
    sub = subscribed(broker, "sub", "-i", "keeper", "-q", "1", "-t", "persist", "-C", "1",
                     *port(broker))
    mqttsim("pub", "-t", "persist", "-m", "live", "-q", "1", *port(broker))
    assert finish(sub)[:2] == (0, b"live\n")


def test_c_needs_a_client_id(broker: Live) -> None:
    done = mqttsim("sub", "-c", "-t", "x", *port(broker))
    assert done.returncode == 1
    assert b"client id" in done.stderr


def test_I_prefixes_the_process_id(broker: Live) -> None:
    done = mqttsim("pub", "-I", "pfx-", "-t", "idp", "-m", "1", "-d", *port(broker))
    first = done.stdout.decode().splitlines()[0]
    assert first.startswith("Client pfx-") and first.endswith(" sending CONNECT")
    assert first.split()[1][4:].isdigit()


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_will_is_published_on_kill_9_not_on_sigterm(broker: Live, version: str) -> None:
    topic = f"will/{version}"
    watcher = subscribed(broker, "mosquitto_sub", "-t", topic, "-v", "-q", "1", *port(broker))
    will = ["-t", "will/x", "-V", version, "--will-topic", topic, "--will-qos", "1",
            *port(broker)]
    polite = subscribed(broker, "sub", *will, "--will-payload", "polite")
    polite.send_signal(signal.SIGTERM)  # DISCONNECT: the broker discards the will
    assert finish(polite)[0] == 0
    victim = subscribed(broker, "sub", *will, "--will-payload", "gone")
    victim.send_signal(signal.SIGKILL)
    victim.wait(WAIT)
    stop_process(victim)
    line = watcher.stdout.readline()
    stop_process(watcher)
    assert line == f"{topic} gone\n".encode()  # one will: the killed client's, not the polite one's


def test_will_retain_keeps_the_will(broker: Live) -> None:
    victim = subscribed(broker, "sub", "-t", "x", "--will-topic", "will/kept",
                        "--will-payload", "bye", "--will-retain", *port(broker))
    victim.send_signal(signal.SIGKILL)
    victim.wait(WAIT)
    stop_process(victim)
    done = subprocess.run(["mosquitto_sub", "-t", "will/kept", "-C", "1", "-F", "%r %p",
                           "-W", "5", *port(broker)], capture_output=True, timeout=WAIT)
    assert done.stdout == b"1 bye\n"


# ---------------------------------------------------------------------------------------------
# Authentication


@pytest.mark.parametrize("version, status, message", [
    ("mqttv31", 5, "Connection error: Connection Refused: not authorised."),
    ("mqttv311", 5, "Connection error: Connection Refused: not authorised."),
    ("mqttv5", 135, "Connection error: Not authorized"),
])
@pytest.mark.parametrize("tool", ["sub", "pub"])
def test_wrong_password_is_refused_like_mosquitto(auth_broker: Live, tool: str, version: str,
                                                  status: int, message: str) -> None:
    args = ["-t", "auth", "-u", "alice", "-P", "wrong", "-V", version, *port(auth_broker)]
    if tool == "pub":
        args += ["-m", "x"]
    ours = mqttsim(tool, *args)
    theirs = subprocess.run([f"mosquitto_{tool}", *args], capture_output=True, timeout=WAIT)
    assert ours.returncode == theirs.returncode == status
    assert ours.stderr.decode().splitlines()[0] == message
    assert theirs.stderr.decode().splitlines()[0] == message


def test_right_password_is_accepted(auth_broker: Live) -> None:
    sub = subscribed(auth_broker, "sub", "-t", "auth", "-u", "alice", "-P", "secret", "-C", "1",
                     *port(auth_broker))
    done = mqttsim("pub", "-t", "auth", "-m", "in", "-u", "alice", "-P", "secret",
                   *port(auth_broker))
    assert done.returncode == 0, done.stderr
    assert finish(sub)[:2] == (0, b"in\n")


@pytest.mark.parametrize("tool", ["mosquitto_sub", "sub"])
def test_L_url_gives_user_password_host_port_and_topic_as_mosquitto(auth_broker: Live,
                                                                    tool: str) -> None:
    url = f"mqtt://alice:secret@127.0.0.1:{auth_broker.port}/url/{tool}"
    sub = subscribed(auth_broker, tool, "-L", url, "-C", "1", "-v")
    done = mqttsim("pub", "-L", url, "-m", "by url")
    assert done.returncode == 0, done.stderr
    assert finish(sub)[:2] == (0, f"url/{tool} by url\n".encode())


def test_L_refuses_a_url_it_cannot_use() -> None:
    done = mqttsim("pub", "-L", "http://127.0.0.1/x", "-m", "1")
    assert done.returncode == 1
    assert done.stderr.decode().strip() == ("Error: -L http://127.0.0.1/x: expected mqtt://, "
                                            "mqtts://, ws:// or wss:// followed by a host.")


def test_nobody_listening_is_connection_refused() -> None:
    from support.mosquitto import free_port
    done = mqttsim("pub", "-t", "x", "-m", "1", "-p", str(free_port()))
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "Error: Connection refused"


# ---------------------------------------------------------------------------------------------
# TLS


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory) -> Iterator[tuple[Live, Path]]:
    """mosquitto with a TLS listener requiring client certificates, all signed by a test CA.
    The server certificate names "localhost" only, so 127.0.0.1 needs --insecure."""
    require_mosquitto()
    if subprocess.run(["which", "openssl"], capture_output=True).returncode:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    for name, cn in (("server", "localhost"), ("client", "alice")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        ext = d / f"{name}.ext"
        ext.write_text("subjectAltName=DNS:localhost\n" if name == "server" else
                       "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
                 "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
                 "-extfile", str(ext), "-out", str(d / f"{name}.crt"))
    extra = (f"cafile {d / 'ca.crt'}\ncertfile {d / 'server.crt'}\nkeyfile {d / 'server.key'}\n"
             "require_certificate true\n")
    with live_mosquitto(d, extra) as running:
        yield running, d


def test_tls_with_client_certificate(tls_broker) -> None:
    broker, d = tls_broker
    tls = ["--cafile", str(d / "ca.crt"), "--cert", str(d / "client.crt"),
           "--key", str(d / "client.key"), *port(broker)]
    sub = subscribed(broker, "sub", "-t", "tls", "-C", "1", "-v", "-h", "localhost", *tls)
    done = mqttsim("pub", "-t", "tls", "-m", "sealed", "-h", "localhost", "-q", "1", *tls)
    assert done.returncode == 0, done.stderr
    assert finish(sub)[:2] == (0, b"tls sealed\n")
    # 127.0.0.1 is not a name in the server's certificate: refused unless --insecure.
    wrong_name = mqttsim("pub", "-t", "tls", "-m", "x", "-h", "127.0.0.1", *tls)
    assert wrong_name.returncode == 1
    assert b"certificate" in wrong_name.stderr.lower()
    insecure = mqttsim("pub", "-t", "tls", "-m", "x", "-h", "127.0.0.1", "--insecure", *tls)
    assert insecure.returncode == 0, insecure.stderr


def test_tls_without_client_certificate_is_rejected(tls_broker) -> None:
    broker, d = tls_broker
    done = mqttsim("pub", "-t", "tls", "-m", "x", "-h", "localhost",
                   "--cafile", str(d / "ca.crt"), *port(broker))
    assert done.returncode != 0
    assert done.stderr


@pytest.mark.parametrize("tool", ["mosquitto_sub", "sub"])
def test_sub_reconnects_and_subscribes_again_when_the_broker_ends_the_connection(
        broker: Live, tool: str) -> None:
    """mosquitto_sub's own behaviour is the expected value: taken over by a client with its
    client id, it connects again a second later, subscribes again and goes on printing."""
    client_id, topic = f"twin-{tool}", f"twin/{tool}"
    before = broker.log().count("Sending SUBACK")
    sub = subscribed(broker, tool, "-i", client_id, "-t", topic, "-C", "1", "-v",
                     *port(broker))
    taker = mqttsim("pub", "-i", client_id, "-t", "elsewhere", "-m", "x", *port(broker))
    assert taker.returncode == 0  # the same client id took its connection over
    wait_log(broker, "Sending SUBACK", before + 2, sub)  # back, and subscribed again
    assert mqttsim("pub", "-t", topic, "-m", "after", *port(broker)).returncode == 0
    status, out, err = finish(sub)
    assert (status, out, err) == (0, f"{topic} after\n".encode(), b"")
