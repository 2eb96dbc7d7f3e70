"""mosquitto.conf subset: defaults as mosquitto 2.0 documents them, options, and errors."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from mqttsim.net.acl import AclFile
from mqttsim.net.config import (ConfigError, ListenerSettings, TlsSettings, default_settings,
                                load_config, parse_config)
from mqttsim.net.passwd import PasswordFile, hash_password
from mqttsim.protocol.auth import ACCEPTED, BAD_CREDENTIALS, NOT_AUTHORIZED, AllowAll
from mqttsim.protocol.broker_state import BrokerConfig


def test_no_file_is_mosquitto_2_local_only_mode() -> None:
    settings = default_settings()
    assert settings.listeners == (ListenerSettings("127.0.0.1", 1883),)
    assert settings.allow_anonymous and isinstance(settings.auth, AllowAll)
    assert settings.authz is None
    assert not settings.persistence.enabled
    assert settings.config == BrokerConfig()
    # Comments and blank lines alone change nothing.
    assert parse_config("# nothing\n\n   \n#listener 1\n").listeners == settings.listeners


def test_a_listener_turns_anonymous_access_off() -> None:
    settings = parse_config("listener 1884\n")
    assert settings.listeners == (ListenerSettings(None, 1884),)  # every interface
    assert not settings.allow_anonymous
    assert settings.auth.authenticate("c", None, None) == NOT_AUTHORIZED
    assert settings.auth.authenticate("c", "u", b"p") == NOT_AUTHORIZED  # no password file
    opened = parse_config("listener 1884 127.0.0.1\nallow_anonymous true\n")
    assert opened.listeners == (ListenerSettings("127.0.0.1", 1884),)
    assert opened.auth.authenticate("c", None, None) == ACCEPTED


def test_deprecated_port_and_bind_address_make_the_default_listener() -> None:
    settings = parse_config("port 1885\nlistener 8883 ::1\n")
    assert settings.listeners == (ListenerSettings(None, 1885), ListenerSettings("::1", 8883))
    assert not settings.allow_anonymous
    bound = parse_config("bind_address 127.0.0.2\n")
    assert bound.listeners == (ListenerSettings("127.0.0.2", 1883),)


def test_limits_map_to_the_engine_config() -> None:
    settings = parse_config(
        "max_inflight_messages 5\nmax_queued_messages 7\nretain_available false\n"
        "max_packet_size 2048\nmax_keepalive 120\nqueue_qos0_messages true\n"
        "allow_zero_length_clientid false\nauto_id_prefix gen-\n")
    assert settings.config == BrokerConfig(
        max_inflight=5, max_queued_messages=7, retain_available=False, max_packet_size=2048,
        max_keepalive=120, queue_qos0=True, allow_zero_length_clientid=False,
        assigned_id_prefix="gen-")
    unlimited = parse_config("max_inflight_messages 0\nmax_queued_messages 0\n"
                             "max_packet_size 0\n").config
    assert (unlimited.max_inflight, unlimited.max_queued_messages,
            unlimited.max_packet_size) == (65535, None, None)


def test_persistence_and_accepted_but_ignored_options(tmp_path: Path) -> None:
    settings = parse_config(f"persistence true\npersistence_location {tmp_path}\n"
                            "persistence_file broker.db\nset_tcp_nodelay true\n"
                            "log_type all\nlog_type error\nlog_dest stdout\n"
                            "log_dest file /var/log/x.log\nautosave_interval 1800\n")
    assert settings.persistence.enabled
    assert settings.persistence.path == tmp_path / "broker.db"
    assert settings.log_types == ("all", "error")
    assert settings.log_dests == ("stdout", "file /var/log/x.log")
    assert any("set_tcp_nodelay" in note for note in settings.notes)
    assert parse_config("").persistence.path == Path("mqttsim.db")


def test_later_lines_override_earlier_ones() -> None:
    assert parse_config("max_inflight_messages 3\nmax_inflight_messages 4\n"
                        ).config.max_inflight == 4


def test_password_and_acl_files(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(f"alice:{hash_password('s3cret')}\n")
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite a/#\n")
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener 1883 127.0.0.1\npassword_file {pw}\nacl_file {acl}\n")
    settings = load_config(conf)
    assert isinstance(settings.auth, PasswordFile) and isinstance(settings.authz, AclFile)
    assert settings.auth.authenticate("c", "alice", b"s3cret") == ACCEPTED
    assert settings.auth.authenticate("c", "alice", b"nope") == BAD_CREDENTIALS
    assert settings.auth.authenticate("c", None, None) == NOT_AUTHORIZED
    assert settings.authz.authorize("c", "alice", "a/b", "write")
    assert settings.source == str(conf)
    conf.write_text(f"listener 1883\nallow_anonymous true\npassword_file {pw}\n")
    assert load_config(conf).auth.authenticate("c", None, None) == ACCEPTED


@pytest.mark.parametrize("text, message", [
    ("# limits\n\n\n\n\n\nmax_inflight_messages abc\n",
     "mosquitto.conf:7: max_inflight_messages: 'abc' is not an integer"),
    ("allow_anonymous yes\n", "mosquitto.conf:1: allow_anonymous: 'yes' is not true or false"),
    ("listener 1883\nmax_keepalive 5\n", "mosquitto.conf:2: max_keepalive: 5 is outside 10..65535"),
    ("max_packet_size 10\n", "mosquitto.conf:1: max_packet_size: 10 is below 20 bytes"),
    ("listener 70000\n", "mosquitto.conf:1: listener: 70000 is outside 0..65535"),
    ("listener 1 a b\n", "mosquitto.conf:1: listener: expected 'listener PORT [ADDRESS]'"),
    ("listener 0 /tmp/mqtt.sock\n", "mosquitto.conf:1: listener: Unix socket listeners"),
    ("bridge_protocol_version mqttv311\n",
     "mosquitto.conf:1: bridge_protocol_version: a bridge option needs a .connection NAME."),
    ("persistence\n", "mosquitto.conf:1: persistence: missing value"),
    ("log_type chatty\n", "mosquitto.conf:1: log_type: 'chatty' is not one of"),
    ("protocol http\n", "mosquitto.conf:1: protocol: 'http' is not mqtt or websockets"),
    ("per_listener_settings true\n", "mosquitto.conf:1: per_listener_settings: per-listener"),
    ("\npassword_file /nonexistent/pw\n", "mosquitto.conf:2: password_file: .*No such file"),
])
def test_errors_name_file_line_and_option(tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(f"{tmp_path}/mosquitto.conf")


def test_errors_inside_included_files_name_both(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic read a\ntopic maybe b\n")
    with pytest.raises(ConfigError, match=f"<config>:3: acl_file: {acl}:2: topic: access"):
        parse_config(f"listener 1883\n\nacl_file {acl}\n")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "server.crt", where / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
                    "-days", "2", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def test_tls_options_belong_to_the_latest_listener(certificate) -> None:
    cert, key = certificate
    settings = parse_config(f"listener 1883 127.0.0.1\nlistener 8883 127.0.0.1\n"
                            f"certfile {cert}\nkeyfile {key}\ncafile {cert}\n"
                            "require_certificate true\n")
    plain, secure = settings.listeners
    assert plain.tls is None
    assert secure.tls == TlsSettings(str(cert), str(key), str(cert), True)
    context = secure.tls.ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    before = parse_config(f"certfile {cert}\nkeyfile {key}\n").listeners
    assert before[0].tls == TlsSettings(str(cert), str(key))  # the default listener's
    assert before[0].tls.ssl_context().verify_mode == ssl.CERT_NONE


def test_tls_listener_needs_both_files(certificate) -> None:
    cert, _ = certificate
    with pytest.raises(ConfigError, match="<config>:2: keyfile: missing for the TLS listener"):
        parse_config(f"listener 8883\ncertfile {cert}\n")
    with pytest.raises(ConfigError, match="<config>:2: keyfile: no such file"):
        parse_config(f"listener 8883\nkeyfile /nonexistent.key\ncertfile {cert}\n")
    with pytest.raises(ConfigError, match="<config>:4: cafile: require_certificate true needs"):
        parse_config(f"listener 8883\ncertfile {cert}\nkeyfile {cert}\n"
                     "require_certificate true\n")
