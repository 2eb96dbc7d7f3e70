"""One look for every figure of the lab: a colour per QoS, per outcome, a marker per reason.

A student compares figures side by side (the outcome bars, the latency CDF, the sweep
lines, the timeline), so QoS 1 must be the same blue in all of them. The colours are the
Okabe-Ito palette, which stays distinguishable for colour-blind readers and in grey print.
Axis labels always carry a unit; ``axis_label`` builds them from a column name.
"""

from __future__ import annotations

from typing import Any

# --- Colours -----------------------------------------------------------------------------

QOS_COLORS: dict[int, str] = {0: "#E69F00", 1: "#0072B2", 2: "#CC79A7"}
"""QoS 0 orange, QoS 1 blue, QoS 2 purple: used for lines, markers, bars and nodes."""

QOS_LINESTYLES: dict[int, str] = {0: "-", 1: "--", 2: ":"}
QOS_MARKERS: dict[int, str] = {0: "o", 1: "s", 2: "^"}
QOS_LINEWIDTHS: dict[int, float] = {0: 3.0, 1: 2.2, 2: 1.6}
QOS_MARKERSIZES: dict[int, float] = {0: 9.0, 1: 6.5, 2: 4.5}
"""Where two QoS give the same numbers (QoS 1 and 2 on a good link), their lines would lie
exactly on top of each other: each QoS also has its own line style, marker shape and a
decreasing width and size, so the one drawn first stays visible around the next."""

QOS_NAMES: dict[int, str] = {0: "QoS 0 (at most once)", 1: "QoS 1 (at least once)",
                             2: "QoS 2 (exactly once)"}

OUTCOME_COLORS: dict[str, str] = {"delivered": "#009E73", "duplicate": "#F0E442",
                                  "lost": "#D55E00"}
OUTCOME_NAMES: dict[str, str] = {"delivered": "delivered once", "duplicate": "duplicate",
                                 "lost": "lost"}
OUTCOMES: tuple[str, ...] = ("delivered", "duplicate", "lost")  # bottom to top of a stack

NEUTRAL = "#7F7F7F"  # anything that is not one QoS: subscribers, mixed clients, CONNECT...
BROKER_COLOR = "#333333"
ROUTER_COLOR = "#BBBBBB"
OUTAGE_COLOR = "#D55E00"  # shaded, hatched: a link is down
CRASH_COLOR = "#999999"  # shaded: a client or the broker is not running
LOST_COLOR = OUTCOME_COLORS["lost"]  # an MQTT packet or TCP segment that never arrived
RETRANSMIT_COLOR = "#8C8C8C"

# --- Connection end reasons (res.connections.reason) -------------------------------------

REASON_STYLES: dict[str, tuple[str, str]] = {
    # reason: (marker, colour)
    "clean": ("o", "#009E73"),
    "keepalive": ("v", "#D55E00"),
    "pingresp_timeout": ("^", "#E69F00"),
    "tcp_timeout": ("s", "#56B4E9"),
    "syn_timeout": ("d", "#56B4E9"),
    "outage": ("X", "#D55E00"),
    "takeover": ("P", "#CC79A7"),
    "reset": ("X", "#000000"),
    "closed_by_peer": ("<", "#0072B2"),
    "client_crash": ("*", "#000000"),
    "broker_restart": ("D", "#000000"),
    "refused": ("x", "#D55E00"),
    "protocol_error": ("h", "#CC79A7"),
}
OTHER_REASON_STYLE = ("o", NEUTRAL)


def reason_style(reason: str) -> tuple[str, str]:
    """(marker, colour) for a connection's end reason; unknown reasons get a grey dot."""
    return REASON_STYLES.get(reason, OTHER_REASON_STYLE)


# --- Units -------------------------------------------------------------------------------

UNITS: dict[str, str] = {
    # summary metrics (res.summary(), sweep tables)
    "sent": "messages", "expected": "messages", "delivered": "messages",
    "duplicates": "messages", "lost": "messages", "delivery_ratio": "fraction",
    "p50_latency": "s", "p99_latency": "s", "latency": "s", "mqtt_bytes": "bytes",
    "bytes_per_copy": "bytes per delivered copy",
    # times and scenario parameters (the last part of a dotted override key)
    "t": "s", "time": "s", "t_pub": "s", "duration": "s", "keepalive": "s",
    "bandwidth": "bit/s", "jitter": "s", "queue": "packets", "loss": "probability",
    "interval": "s", "size": "bytes", "max_queued": "messages", "max_inflight": "messages",
    "reconnect_delay": "s", "ping_timeout": "s", "retry_interval": "s", "initial_rto": "s",
    "min_rto": "s", "max_rto": "s", "mss": "bytes", "window": "bytes",
    "max_retransmits": "retransmissions", "session_expiry": "s", "utilisation": "%",
}


#: What a metric can be at all: a confidence band or interval is clipped to this range, so a
#: latency band never dips below zero and a delivery ratio never exceeds 1.
METRIC_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "fraction": (0.0, 1.0), "probability": (0.0, 1.0), "%": (0.0, 100.0),
    "s": (0.0, None), "messages": (0.0, None), "bytes": (0.0, None),
    "bytes per delivered copy": (0.0, None), "packets": (0.0, None),
}


def metric_bounds(name: str) -> tuple[float | None, float | None]:
    """(lowest, highest) possible value of a metric, from its unit; None: no bound."""
    return METRIC_BOUNDS.get(unit_of(name) or "", (None, None))


def qos_line_style(qos: Any) -> dict[str, Any]:
    """Matplotlib keyword arguments that tell a QoS's line apart even where it lies on
    another one: colour, line style, width, marker shape and size."""
    try:
        level = int(qos)
        return {"color": QOS_COLORS[level], "linestyle": QOS_LINESTYLES[level],
                "linewidth": QOS_LINEWIDTHS[level], "marker": QOS_MARKERS[level],
                "markersize": QOS_MARKERSIZES[level]}
    except (KeyError, TypeError, ValueError):
        return {"color": NEUTRAL, "linestyle": "-", "linewidth": 1.8, "marker": "o",
                "markersize": 5.0}


def unit_of(name: str) -> str | None:
    """The unit of a column or a dotted override key ("link.latency" -> "s"), if known."""
    if name in UNITS:
        return UNITS[name]
    last = name.rsplit(".", 1)[-1]
    return UNITS.get(last)


def axis_label(name: str, unit: str | None = None) -> str:
    """``"p99_latency"`` -> ``"p99 latency (s)"``; the unit is looked up unless given."""
    unit = unit if unit is not None else unit_of(name)
    text = name.replace("_", " ")
    return f"{text} ({unit})" if unit else text


def qos_color(qos: Any) -> str:
    """The QoS's colour (QOS_COLORS); anything else (None, NaN, "mixed") is grey."""
    try:
        return QOS_COLORS[int(qos)]
    except (KeyError, TypeError, ValueError):
        return NEUTRAL


def qos_label(qos: Any) -> str:
    try:
        return QOS_NAMES[int(qos)]
    except (KeyError, TypeError, ValueError):
        return str(qos)


__all__ = ["QOS_COLORS", "QOS_NAMES", "QOS_LINESTYLES", "QOS_MARKERS", "QOS_LINEWIDTHS",
           "QOS_MARKERSIZES", "qos_line_style", "METRIC_BOUNDS", "metric_bounds",
           "OUTCOME_COLORS", "OUTCOME_NAMES", "OUTCOMES", "NEUTRAL",
           "BROKER_COLOR", "ROUTER_COLOR", "OUTAGE_COLOR", "CRASH_COLOR", "LOST_COLOR",
           "RETRANSMIT_COLOR", "REASON_STYLES", "reason_style", "UNITS", "unit_of",
           "axis_label", "qos_color", "qos_label"]
