"""Exercises 7-12: retained messages, wills, MQTT 5 session expiry, shared subscriptions, the
broker's offline queue, and reading a capture. Same rules as ``exercises`` (where ``check``
and ``EXERCISES`` live): each checker works out the right answer from a real simulator run
at check time and its verdict says what is wrong, never what is right.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from .exercises import Exercise, _as_set, _join, _number, _parts, _seed_sensor

__all__ = ["retained_scenario", "wills_scenario", "expiry_scenario", "shared_scenario",
           "queue_scenario", "MQTT_EXERCISES"]


def _scenario(data: dict) -> Any:
    from ..scenario import Scenario
    return Scenario.from_dict(data)


def _run(scenario: Any) -> Any:
    from ..scenario import run
    return run(scenario, seed=1)


# --- 7. Retained messages ----------------------------------------------------------------

def retained_scenario() -> Any:
    """Three sensors publish under home/; a display subscribes to home/+/temp at 12 s."""
    return _scenario({
        "name": "late-display", "duration": 20.0, "link": {"latency": 0.01},
        "clients": [
            {"name": "kitchen", "publish": {"topic": "home/kitchen/temp", "interval": 2.0,
                                            "start": 1.0, "count": 5, "retain": True}},
            {"name": "bath", "publish": {"topic": "home/bath/temp", "pattern": "once",
                                         "start": 3.0}},
            {"name": "garage", "publish": {"topic": "home/garage/temp", "pattern": "once",
                                           "start": 4.0, "retain": True}},
            {"name": "display", "connect_at": 12.0, "subscribe": "home/+/temp"}]})


@lru_cache(maxsize=None)
def _retained_truth() -> tuple[int, int]:
    """(messages the display receives, sequence number of the kitchen message it gets)."""
    res = _run(retained_scenario())
    got = res.received[res.received["subscriber"] == "display"]
    kitchen = got[got["topic"] == "home/kitchen/temp"]
    seq = int(kitchen["payload"].iloc[0].split(b"#")[1].split()[0]) if len(kitchen) else 0
    return len(got), seq


def _check_retained(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("received", "kitchen_seq"), "answers")
    if parts is None:
        return False, problem
    received, seq = _retained_truth()
    hints = []
    if _number(parts["received"]) != received:
        hints.append("'received': the broker keeps one retained message per topic, the last "
                     "one published with RETAIN [MQTT-3.3.1-5], and sends it to a new "
                     "subscriber whose filter matches [MQTT-3.3.1-6]; a message published "
                     "without RETAIN is not kept for anybody who subscribes later")
    if _number(parts["kitchen_seq"]) != seq:
        hints.append("'kitchen_seq': a new retained message on a topic replaces the one "
                     "before (section 3.3.1.3): which kitchen message was the broker holding at "
                     "12 s? (payloads say 'msg kitchen#N')")
    if hints:
        return False, _join(hints)
    return True, ("a late joiner sees each topic's last retained value at once, with the "
                  "RETAIN flag set (res.received's retain column).")


# --- 8. Wills ----------------------------------------------------------------------------

def wills_scenario() -> Any:
    """Three sensors with a will on status/<name>; a monitor subscribes to status/#.
    polite sends DISCONNECT at 12 s, crashy's process dies at 12 s, faraway's link dies
    at 15 s for good. Keepalive 10 s."""
    def sensor(name: str, **more: Any) -> dict:
        return {"name": name, "will": {"topic": f"status/{name}", "message": "offline"},
                **more}
    return _scenario({
        "name": "wills", "duration": 60.0, "keepalive": 10, "link": {"latency": 0.01},
        "clients": [{"name": "monitor", "subscribe": "status/#"},
                    sensor("polite", disconnect_at=12.0),
                    sensor("crashy", crashes=[{"at": 12.0, "down": 100.0}]),
                    sensor("faraway", link={"outages": [[15.0, 1000.0]]})]})


@lru_cache(maxsize=None)
def _wills_truth() -> tuple[frozenset, float]:
    res = _run(wills_scenario())
    got = res.received[res.received["subscriber"] == "monitor"]
    senders = frozenset(t.split("/", 1)[1] for t in got["topic"])
    faraway = got.loc[got["topic"] == "status/faraway", "t"]
    return senders, float(faraway.iloc[0]) if len(faraway) else float("nan")


def _check_wills(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("wills_from", "faraway_at"), "answers")
    if parts is None:
        return False, problem
    senders, at = _wills_truth()
    mine = _as_set(parts["wills_from"])
    if mine is None:
        return False, "'wills_from' should be a set of client names, e.g. {'polite'}"
    hints = []
    if mine != set(senders):
        if "polite" in mine:
            hints.append("'wills_from': a client that sends DISCONNECT asks the broker to "
                         "throw its will away [MQTT-3.14.4-3]")
        if set(senders) - mine:
            hints.append("'wills_from': the broker publishes the will whenever the network "
                         "connection closes without a DISCONNECT [MQTT-3.1.2-8], whatever "
                         "the reason: a crash, a keepalive timeout...")
        if mine - set(senders) - {"polite"}:
            hints.append("'wills_from': only the three sensors have wills")
    value = _number(parts["faraway_at"])
    if value is None:
        hints.append("'faraway_at' should be a time in seconds")
    elif abs(value - at) > 1.0:
        if value < 15.0:
            hints.append("'faraway_at': that is before faraway's link even died")
        else:
            hints.append("'faraway_at': nothing tells the broker that faraway's link died: "
                         "when does it give up on a silent client (exercise 4), counted from "
                         "the last packet it received?")
    if hints:
        return False, _join(hints)
    return True, ("a will says 'gone without saying goodbye', as soon as the broker knows: "
                  "at once for a reset, after 1.5 keepalives for a silent link.")


# --- 9. MQTT 5 session expiry ------------------------------------------------------------

def expiry_scenario() -> Any:
    """MQTT 5: a phone (clean start off, session expiry 60 s) subscribed at QoS 1 is away
    from 10 s to 30 s; a friend publishes every 2 s at 1, 3, ..., 43 s."""
    return _scenario({
        "name": "phone-expiry", "duration": 50.0, "version": 5, "qos": 1, "clean": False,
        "link": {"latency": 0.01},
        "clients": [{"name": "phone", "subscribe": "chat/#", "session_expiry": 60,
                     "crashes": [{"at": 10.0, "down": 20.0}]},
                    {"name": "friend", "publish": {"topic": "chat/friend", "interval": 2.0,
                                                   "start": 1.0, "stop": 44.0}}]})


@lru_cache(maxsize=None)
def _received_with_expiry(seconds: int) -> int:
    res = _run(expiry_scenario().with_(**{"clients.phone.session_expiry": seconds}))
    return int(res.received["payload"].nunique())


def _check_expiry(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("expiry_60", "expiry_10"), "message counts")
    if parts is None:
        return False, problem
    hints = []
    if _number(parts["expiry_60"]) != _received_with_expiry(60):
        hints.append("'expiry_60': the phone is away for 20 s, less than its session expiry: "
                     "the broker keeps the session and queues its QoS 1 messages "
                     "[MQTT-3.1.2-23]; count every message")
    if _number(parts["expiry_10"]) != _received_with_expiry(10):
        hints.append("'expiry_10': the session outlives the connection by 10 s only, then "
                     "the broker discards it with everything queued in it [MQTT-3.1.2-23]; "
                     "what is published after that has no session to go to, and the new "
                     "connection starts from nothing until it subscribes again")
    if hints:
        return False, _join(hints)
    return True, ("MQTT 5 splits 3.1.1's clean session in two: clean start (at connect) and "
                  "session expiry (how long after disconnect).")


# --- 10. Shared subscriptions ------------------------------------------------------------

def shared_scenario() -> Any:
    """MQTT 5: three workers share $share/workers/jobs (w3 joins at 6 s), a logger subscribes
    to jobs, a producer publishes 30 jobs every 0.5 s from 2 s."""
    def worker(name: str, at: float = 0.0) -> dict:
        return {"name": name, "connect_at": at, "subscribe": "$share/workers/jobs"}
    return _scenario({
        "name": "job-queue", "duration": 20.0, "version": 5, "link": {"latency": 0.01},
        "clients": [worker("w1"), worker("w2"), worker("w3", 6.0),
                    {"name": "logger", "subscribe": "jobs"},
                    {"name": "producer", "connect_at": 1.0,
                     "publish": {"topic": "jobs", "interval": 0.5, "start": 2.0,
                                 "count": 30}}]})


SHARED_KEYS = ("w1", "w2", "w3", "logger")


@lru_cache(maxsize=None)
def _shared_truth() -> dict[str, int]:
    res = _run(shared_scenario())
    counts = res.received.groupby("subscriber").size()
    return {name: int(counts.get(name, 0)) for name in SHARED_KEYS}


def _check_shared(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, SHARED_KEYS, "message counts per subscriber")
    if parts is None:
        return False, problem
    truth = _shared_truth()
    mine = {k: _number(parts[k]) for k in SHARED_KEYS}
    hints = []
    if mine["logger"] != truth["logger"]:
        hints.append("'logger': an ordinary subscription is not part of any group: it gets "
                     "a copy of every message, shared subscribers or not (4.8.2)")
    workers = ("w1", "w2", "w3")
    if any(mine[w] != truth[w] for w in workers):
        if None not in (mine[w] for w in workers) and \
                sum(mine[w] for w in workers) != sum(truth[w] for w in workers):
            hints.append("the workers: each message goes to exactly one member of the "
                         "group (section 4.8.2): what must their counts add up to?")
        else:
            hints.append("the workers: the broker hands the group's messages to its "
                         "connected members in turn; w3 only takes part once it has "
                         "subscribed (6 s). Count res.received per subscriber")
    if hints:
        return False, _join(hints)
    return True, "a shared subscription spreads the load; an ordinary one sees everything."


# --- 11. The broker's offline queue ------------------------------------------------------

QUEUE_LIMIT = 5


def queue_scenario() -> Any:
    """A persistent-session phone away 10-30 s; a friend publishes at QoS 1 every 2 s (1, 3,
    ..., 43 s); the broker queues at most QUEUE_LIMIT messages per client."""
    return _scenario({
        "name": "small-queue", "duration": 50.0, "qos": 1, "clean": False,
        "broker": {"max_queued": QUEUE_LIMIT}, "link": {"latency": 0.01},
        "clients": [{"name": "phone", "subscribe": "chat/#",
                     "crashes": [{"at": 10.0, "down": 20.0}]},
                    {"name": "friend", "publish": {"topic": "chat/friend", "interval": 2.0,
                                                   "start": 1.0, "stop": 44.0}}]})


@lru_cache(maxsize=None)
def _queue_truth() -> tuple[int, int, str]:
    """(messages the phone got, messages dropped for it, which of the away ones it kept)."""
    res = _run(queue_scenario())
    out = res.outcomes[res.outcomes["subscriber"] == "phone"]
    dropped = out[out["reason"].astype(str).str.endswith("queue_full")]
    away = out[(out["t_pub"] > 10.0) & (out["t_pub"] < 30.0)]
    kept = away[away["outcome"] == "delivered"]
    which = "oldest" if len(kept) and kept["t_pub"].max() < dropped["t_pub"].min() else "newest"
    return int(res.received["payload"].nunique()), len(dropped), which


def _check_queue(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("received", "dropped", "kept"), "answers")
    if parts is None:
        return False, problem
    received, dropped, kept = _queue_truth()
    hints = []
    if str(parts["kept"]).strip().lower() not in ("oldest", "newest"):
        hints.append("'kept' is 'oldest' or 'newest': which of the messages published while "
                     "the phone was away are still in the queue when it comes back?")
    elif str(parts["kept"]).strip().lower() != kept:
        hints.append("'kept': a full queue refuses what arrives next; it does not make room "
                     "by throwing out what it holds (look at the t_pub of the "
                     "'broker:queue_full' rows of res.outcomes)")
    if _number(parts["dropped"]) != dropped:
        hints.append(f"'dropped': the broker queues at most {QUEUE_LIMIT} messages for an "
                     "absent client (broker max_queued, mosquitto's max_queued_messages); "
                     "how many were published while the phone was away?")
    if _number(parts["received"]) != received:
        hints.append("'received': everything before the crash, the queued messages when it "
                     "comes back, and everything after")
    if hints:
        return False, _join(hints)
    return True, ("a queue limit protects the broker's memory; the dropped messages are "
                  "counted (res.drops), never lost silently.")


# --- 12. Reading a capture ---------------------------------------------------------------

@lru_cache(maxsize=None)
def _capture_truth() -> tuple[int, int, int]:
    """(frames, frames with MQTT bytes, MQTT bytes pub sent), read back from the capture of
    seed-sensor.toml at QoS 1 that ``Results.to_pcap`` writes."""
    from ..protocol import Decoder
    from ..protocol.packets import Connect
    from ..scenario.pcap import read_pcap
    res = _run(_seed_sensor().with_(qos=1))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sensor.pcap"
        res.to_pcap(path)
        frames = read_pcap(path)
    data = frames[frames["length"] > 0]
    pub_address = None
    for row in data.itertuples():
        packets = Decoder(version=4).feed(row.payload)
        if packets and isinstance(packets[0], Connect) and packets[0].client_id == "pub":
            pub_address = row.src
            break
    pub_bytes = int(data.loc[data["src"] == pub_address, "length"].sum())
    return len(frames), len(data), pub_bytes


def _check_capture(answer: Any) -> tuple[bool, str]:
    parts, problem = _parts(answer, ("frames", "with_mqtt", "pub_bytes"), "answers")
    if parts is None:
        return False, problem
    frames, with_mqtt, pub_bytes = _capture_truth()
    hints = []
    if _number(parts["frames"]) != frames:
        hints.append("'frames': every record of the file counts, TCP's own too (SYN, SYN-ACK, "
                     "ACK, FIN): len(read_pcap(path)), or the lines of `tshark -r FILE`")
    if _number(parts["with_mqtt"]) != with_mqtt:
        hints.append("'with_mqtt': a frame carries MQTT when its TCP payload is not empty "
                     "(the length column; tshark's tcp.len > 0)")
    if _number(parts["pub_bytes"]) != pub_bytes:
        hints.append("'pub_bytes': add up the TCP payload of the frames whose source is pub's "
                     "address (the one whose CONNECT carries client id 'pub'), all packets "
                     "of its session, not only the PUBLISH")
    if hints:
        return False, _join(hints)
    return True, ("the capture holds the very bytes res.packets lists, wrapped in TCP/IP: "
                  "open it in Wireshark to see them dissected as MQTT.")


MQTT_EXERCISES = (
    Exercise("retained", "A display subscribes to home/+/temp at 12 s: how many messages does "
             "it get, and which kitchen message?", _check_retained),
    Exercise("wills", "Which sensors' wills reach the monitor, and when does faraway's "
             "arrive?", _check_wills),
    Exercise("session-expiry", "MQTT 5: how many messages does the phone get with a session "
             "expiry of 60 s, and of 10 s?", _check_expiry),
    Exercise("shared-subscriptions", "MQTT 5: how many jobs does each worker of a shared "
             "subscription get, and the logger?", _check_shared),
    Exercise("offline-queue", "The broker queues at most 5 messages for an absent client: "
             "what does the phone get, and what is dropped?", _check_queue),
    Exercise("capture", "In the capture of the sensor story at QoS 1: how many frames, how "
             "many with MQTT, how many MQTT bytes from pub?", _check_capture),
)
