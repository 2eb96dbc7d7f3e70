"""The commonly used subset of ``mosquitto.conf``, read into the settings the server needs.

Same file format as mosquitto: one ``option value`` per line, ``#`` starts a comment line,
blank lines are ignored, a later line overrides an earlier one. Options that mosquitto
attaches to a listener (``certfile``, ``keyfile``, ``cafile``, ``require_certificate``)
apply to the most recent ``listener`` line, or to the default listener before any. An
unknown option, a missing or malformed value is a :class:`ConfigError` naming the file, the
line and the option (``mosquitto.conf:7: max_inflight_messages: 'abc' is not an
integer``): a broker that silently ignored a typo in ``allow_anonymous`` would be worse than
one that refuses to start.

Defaults, as mosquitto 2.0 documents them (mosquitto.conf(5)):

- No ``listener``, ``port`` or ``bind_address`` at all: "local only mode", one listener on
  127.0.0.1:1883 and ``allow_anonymous`` true. Any of them given: ``allow_anonymous`` false.
- ``port`` (deprecated) and ``bind_address`` (deprecated) configure the default listener;
  ``port`` alone binds every interface, as in mosquitto. ``listener PORT`` without an
  address binds every interface too (``host`` None). Difference: port 0 means "any free
  port" here (mosquitto uses it for Unix sockets, which are not supported).
- ``max_inflight_messages`` 20 (0: no limit, i.e. 65535 packet ids); ``max_queued_messages``
  1000 and ``max_queued_bytes`` 0 (0: no limit; bytes of payload), per client: a message for
  a client whose queue is full is dropped for that client only, counted and logged ("Outgoing
  messages are being dropped for client X."); ``retain_available`` true; ``max_packet_size`` 0 = no limit (else at
  least 20, as mosquitto requires); ``max_keepalive`` 65535 (10..65535);
  ``queue_qos0_messages`` false; ``allow_zero_length_clientid`` true; ``auto_id_prefix``
  ``auto-``; ``sys_interval`` 10 seconds between updates of the ``$SYS/broker/`` tree
  (0: no tree).
- ``persistence`` false; ``persistence_location`` the current directory. Difference:
  ``persistence_file`` defaults to ``mqttsim.db``, not ``mosquitto.db``, because the file is
  SQLite, not mosquitto's format, and must not overwrite a real mosquitto's database.
- ``password_file`` and ``acl_file``: relative paths are taken from the current directory,
  as mosquitto does. Without a password file and with ``allow_anonymous false`` every client
  is refused "not authorised" (what mosquitto 2.0 does with no other auth source).
- Accepted and ignored, with a note in ``BrokerSettings.notes``: ``set_tcp_nodelay`` (the
  server always sets TCP_NODELAY), ``log_type``/``log_dest`` (recorded; the server has its
  own ``-v`` log), ``connection_messages``, ``autosave_interval`` (every turn is committed).
- ``per_listener_settings true`` is refused: authentication here is global.
- Bridges: a ``connection NAME`` line and the bridge options after it (``address``,
  ``topic``, ``cleansession``, ``restart_timeout``...), read by mqttsim/net/bridge_config.py
  into ``BrokerSettings.bridges``; ``mqttsim broker`` runs them (mqttsim/net/bridge.py).
- ``protocol websockets`` (per listener, like the TLS options): MQTT over WebSockets
  (mqttsim.net.websocket), with TLS when the listener has ``certfile``/``keyfile``, as in
  mosquitto; ``protocol mqtt`` is the default. ``http_dir`` and ``websockets_log_level`` are
  not read (no static HTTP files are served).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..protocol.auth import NOT_AUTHORIZED, AllowAll, Authenticator, Authorizer
from ..protocol.broker_state import BrokerConfig
from .acl import AclError, AclFile
from .bridge_config import BridgeOptions, BridgeSettings
from .passwd import PasswordFile, PasswordFileError

DEFAULT_PORT = 1883
LOCAL_ONLY_HOST = "127.0.0.1"
DEFAULT_PERSISTENCE_FILE = "mqttsim.db"
LOG_TYPES = ("debug", "error", "warning", "notice", "information", "subscribe",
             "unsubscribe", "websockets", "none", "all")
LOG_DESTS = ("stdout", "stderr", "syslog", "topic", "file", "dlt", "none")


class ConfigError(ValueError):
    """A configuration line that cannot be used: ``file:line: option: what is wrong``."""


class RefuseAll:
    """``allow_anonymous false`` and no password file: nobody can prove who they are."""

    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> int:
        return NOT_AUTHORIZED


@dataclass(frozen=True)
class TlsSettings:
    """A TLS listener's files, as mosquitto's per-listener options name them."""

    certfile: str
    keyfile: str
    cafile: str | None = None
    require_certificate: bool = False

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context: our certificate, and client certificates checked against
        ``cafile`` (required when ``require_certificate``)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        if self.cafile:
            context.load_verify_locations(self.cafile)
        context.verify_mode = ssl.CERT_REQUIRED if self.require_certificate else ssl.CERT_NONE
        return context


@dataclass(frozen=True)
class ListenerSettings:
    """Where to listen. ``host`` None: every interface (``listener 1883`` in mosquitto)."""

    host: str | None = LOCAL_ONLY_HOST
    port: int = DEFAULT_PORT
    tls: TlsSettings | None = None
    protocol: str = "mqtt"  # or "websockets"


@dataclass(frozen=True)
class PersistenceSettings:
    enabled: bool = False
    location: str = ""  # "" = the current directory, as mosquitto
    file: str = DEFAULT_PERSISTENCE_FILE

    @property
    def path(self) -> Path:
        return Path(self.location or ".") / self.file


@dataclass(frozen=True)
class BrokerSettings:
    """Everything a configuration file says, ready to build a server from."""

    listeners: tuple[ListenerSettings, ...]
    config: BrokerConfig
    auth: Authenticator
    authz: Authorizer | None  # None when there is no acl_file: everything allowed
    persistence: PersistenceSettings = PersistenceSettings()
    allow_anonymous: bool = True
    password_file: str | None = None
    acl_file: str | None = None
    log_types: tuple[str, ...] = ()
    log_dests: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # accepted but ignored options, for the -v log
    source: str | None = None
    bridges: tuple[BridgeSettings, ...] = ()  # ``connection`` sections (net/bridge_config.py)


@dataclass
class _Listener:
    """A listener while its lines are being read."""

    host: str | None
    port: int
    line: int
    tls: dict = field(default_factory=dict)  # option -> (value, line)
    protocol: str = "mqtt"


def load_config(path: str | os.PathLike) -> BrokerSettings:
    """Read ``path`` (a mosquitto.conf subset); raises ConfigError or OSError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
    return parse_config(text, str(path))


def default_settings() -> BrokerSettings:
    """What mosquitto 2.0 does with no configuration file."""
    return parse_config("", None)


def parse_config(text: str, name: str | None = "<config>") -> BrokerSettings:
    """Settings from configuration text; ``name`` is used in error messages."""
    return _Parser(name or "<config>").parse(text, name)


class _Parser(BridgeOptions):
    def __init__(self, name: str):
        self.name = name
        self.number = 0
        self.option = ""
        self.default = _Listener(None, DEFAULT_PORT, 0)  # port / bind_address / early TLS
        self.default_given = False
        self.listeners: list[_Listener] = []
        self.values: dict[str, tuple[object, int]] = {}  # option -> (value, line)
        self.log_types: list[str] = []
        self.log_dests: list[str] = []
        self.notes: list[str] = []

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.name}:{self.number}: {self.option}: {message}")

    # -- values ----------------------------------------------------------------------------
    def boolean(self, value: str) -> bool:
        if value not in ("true", "false"):
            raise self.error(f"{value!r} is not true or false")
        return value == "true"

    def integer(self, value: str, low: int, high: int, what: str = "") -> int:
        try:
            number = int(value, 10)
        except ValueError:
            raise self.error(f"{value!r} is not an integer") from None
        if not low <= number <= high:
            raise self.error(f"{number} is outside {low}..{high}{what}")
        return number

    def port(self, value: str) -> int:
        return self.integer(value, 0, 65535)

    # -- lines -----------------------------------------------------------------------------
    def parse(self, text: str, source: str | None) -> BrokerSettings:
        for self.number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            option, _, value = line.partition(" ")
            self.option, value = option, value.strip()
            handler = getattr(self, f"opt_{option}", None)
            if handler is None:
                raise self.error("unknown option (mqttsim reads a subset of mosquitto.conf; "
                                 "see mqttsim/net/config.py)")
            if not value:
                raise self.error("missing value")
            handler(value)
        return self.build(source)

    def current(self) -> _Listener:
        return self.listeners[-1] if self.listeners else self.default

    def opt_listener(self, value: str) -> None:
        words = value.split()
        if len(words) > 2:
            raise self.error("expected 'listener PORT [ADDRESS]'")
        port = self.port(words[0])
        host = words[1] if len(words) == 2 else None
        if host is not None and host.startswith("/"):
            raise self.error("Unix socket listeners are not supported")
        self.listeners.append(_Listener(host, port, self.number))

    def opt_port(self, value: str) -> None:
        self.default.port = self.port(value)
        self.default_given = True

    def opt_bind_address(self, value: str) -> None:
        self.default.host = value
        self.default_given = True

    def _tls(self, value: object) -> None:
        self.current().tls[self.option] = (value, self.number)

    def opt_certfile(self, value: str) -> None:
        self._tls(value)

    def opt_keyfile(self, value: str) -> None:
        self._tls(value)

    def opt_cafile(self, value: str) -> None:
        self._tls(value)

    def opt_require_certificate(self, value: str) -> None:
        self._tls(self.boolean(value))

    def opt_protocol(self, value: str) -> None:
        if value not in ("mqtt", "websockets"):
            raise self.error(f"{value!r} is not mqtt or websockets")
        self.current().protocol = value

    def opt_per_listener_settings(self, value: str) -> None:
        if self.boolean(value):
            raise self.error("per-listener settings are not supported; authentication "
                             "and ACLs apply to every listener")

    def _set(self, value: object) -> None:
        self.values[self.option] = (value, self.number)

    def opt_allow_anonymous(self, value: str) -> None:
        self._set(self.boolean(value))

    def opt_password_file(self, value: str) -> None:
        self._set(value)

    def opt_acl_file(self, value: str) -> None:
        self._set(value)

    def opt_persistence(self, value: str) -> None:
        self._set(self.boolean(value))

    def opt_persistence_location(self, value: str) -> None:
        self._set(value)

    def opt_persistence_file(self, value: str) -> None:
        if "/" in value:
            raise self.error("a file name, not a path (use persistence_location)")
        self._set(value)

    def opt_max_inflight_messages(self, value: str) -> None:
        self._set(self.integer(value, 0, 65535) or 65535)  # 0: no limit but packet ids

    def opt_max_queued_messages(self, value: str) -> None:
        self._set(self.integer(value, 0, 2**31 - 1) or None)  # 0: no limit

    def opt_max_queued_bytes(self, value: str) -> None:
        self._set(self.integer(value, 0, 2**63 - 1) or None)  # 0: no limit

    def opt_retain_available(self, value: str) -> None:
        self._set(self.boolean(value))

    def opt_max_packet_size(self, value: str) -> None:
        size = self.integer(value, 0, 268_435_460)  # 1 + 4 + the largest remaining length
        if 0 < size < 20:
            raise self.error(f"{size} is below 20 bytes, which mosquitto forbids")
        self._set(size or None)

    def opt_max_keepalive(self, value: str) -> None:
        self._set(self.integer(value, 10, 65535))

    def opt_sys_interval(self, value: str) -> None:
        self._set(self.integer(value, 0, 65535))

    def opt_queue_qos0_messages(self, value: str) -> None:
        self._set(self.boolean(value))

    def opt_allow_zero_length_clientid(self, value: str) -> None:
        self._set(self.boolean(value))

    def opt_auto_id_prefix(self, value: str) -> None:
        self._set(value)

    def opt_set_tcp_nodelay(self, value: str) -> None:
        self.boolean(value)
        self.notes.append(f"line {self.number}: set_tcp_nodelay ignored: TCP_NODELAY is "
                          "always set")

    def opt_connection_messages(self, value: str) -> None:
        self.boolean(value)
        self.notes.append(f"line {self.number}: connection_messages ignored: use -v")

    def opt_autosave_interval(self, value: str) -> None:
        self.integer(value, 0, 2**31 - 1)
        self.notes.append(f"line {self.number}: autosave_interval ignored: state is "
                          "committed before every acknowledgement")

    def opt_log_type(self, value: str) -> None:
        if value not in LOG_TYPES:
            raise self.error(f"{value!r} is not one of {', '.join(LOG_TYPES)}")
        self.log_types.append(value)

    def opt_log_dest(self, value: str) -> None:
        kind = value.split()[0]
        if kind not in LOG_DESTS:
            raise self.error(f"{kind!r} is not one of {', '.join(LOG_DESTS)}")
        if kind == "file" and len(value.split(None, 1)) < 2:
            raise self.error("'log_dest file' needs a path")
        self.log_dests.append(value)

    # -- the result ------------------------------------------------------------------------
    def get(self, option: str, default):
        return self.values.get(option, (default, 0))[0]

    def build(self, source: str | None) -> BrokerSettings:
        local_only = not self.listeners and not self.default_given
        if local_only:
            self.default.host = LOCAL_ONLY_HOST
        listeners = ([self.default] if self.default_given or local_only else []) + self.listeners
        allow_anonymous = self.get("allow_anonymous", local_only)
        password_file = self.get("password_file", None)
        acl_file = self.get("acl_file", None)
        base = BrokerConfig()
        config = replace(
            base,
            max_inflight=self.get("max_inflight_messages", base.max_inflight),
            max_queued_messages=self.get("max_queued_messages", base.max_queued_messages),
            max_queued_bytes=self.get("max_queued_bytes", base.max_queued_bytes),
            retain_available=self.get("retain_available", base.retain_available),
            max_packet_size=self.get("max_packet_size", base.max_packet_size),
            max_keepalive=self.get("max_keepalive", base.max_keepalive),
            queue_qos0=self.get("queue_qos0_messages", base.queue_qos0),
            allow_zero_length_clientid=self.get("allow_zero_length_clientid",
                                                base.allow_zero_length_clientid),
            assigned_id_prefix=self.get("auto_id_prefix", base.assigned_id_prefix),
            sys_interval=self.get("sys_interval", base.sys_interval))
        if password_file is not None:
            self.number, self.option = self.values["password_file"][1], "password_file"
            try:
                auth: Authenticator = PasswordFile.load(password_file, anonymous=allow_anonymous)
            except (OSError, PasswordFileError) as exc:
                raise self.error(str(exc)) from None
        else:
            auth = AllowAll() if allow_anonymous else RefuseAll()
        authz: Authorizer | None = None
        if acl_file is not None:
            self.number, self.option = self.values["acl_file"][1], "acl_file"
            try:
                authz = AclFile.load(acl_file)
            except (OSError, AclError) as exc:
                raise self.error(str(exc)) from None
        bridges = self.bridge_settings()
        return BrokerSettings(
            bridges=bridges, listeners=tuple(self.finish(listener) for listener in listeners),
            config=config, auth=auth, authz=authz,
            persistence=PersistenceSettings(self.get("persistence", False),
                                            self.get("persistence_location", ""),
                                            self.get("persistence_file",
                                                     DEFAULT_PERSISTENCE_FILE)),
            allow_anonymous=allow_anonymous, password_file=password_file, acl_file=acl_file,
            log_types=tuple(self.log_types), log_dests=tuple(self.log_dests),
            notes=tuple(self.notes), source=source)

    def finish(self, listener: _Listener) -> ListenerSettings:
        """Check a listener's TLS options as a set (certfile and keyfile go together)."""
        tls = {option: value for option, (value, _) in listener.tls.items()}
        if not tls:
            return ListenerSettings(listener.host, listener.port, protocol=listener.protocol)
        self.number = max(line for _, line in listener.tls.values())
        for needed in ("certfile", "keyfile"):
            if needed not in tls:
                self.option = needed
                raise self.error(f"missing for the TLS listener on port {listener.port} "
                                 "(certfile and keyfile are both required)")
        for option, (value, line) in listener.tls.items():
            if option != "require_certificate" and not os.path.isfile(str(value)):
                self.number, self.option = line, option
                raise self.error(f"no such file: {value}")
        if tls.get("require_certificate") and "cafile" not in tls:
            self.option = "cafile"
            raise self.error("require_certificate true needs a cafile to check client "
                             "certificates against")
        return ListenerSettings(listener.host, listener.port, TlsSettings(
            tls["certfile"], tls["keyfile"], tls.get("cafile"),
            bool(tls.get("require_certificate", False))), listener.protocol)
