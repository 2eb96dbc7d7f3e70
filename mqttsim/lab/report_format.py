"""Numbers and tables as a reader wants them in a report: ``10,670`` not ``1.067e+04``,
``40 ms`` and ``66.7 %`` with their units, "Delivered once" not ``delivered``, and a spread
shown only where the seeds disagree.

Each summary column has a *kind* (count, share, seconds, bytes) that decides how its values
are written; an interval is clipped to what the quantity can be (a share lies in [0, 1], a
latency is never negative: ``style.metric_bounds``) before it is written.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .style import metric_bounds, unit_of

__all__ = ["COLUMN_NAMES", "column_title", "kind_of", "format_value", "format_seconds",
           "format_share", "format_count", "format_general", "format_spread", "html_table",
           "parameter_title", "parameter_words"]

#: Human names of the summary and sweep columns (``Results.summary()``, ``SweepResult``).
COLUMN_NAMES: dict[str, str] = {
    "qos": "QoS", "seed": "Seed", "runs": "Seeds", "sent": "Published",
    "expected": "Expected deliveries", "delivered": "Delivered once",
    "duplicates": "Delivered more than once", "lost": "Lost",
    "delivery_ratio": "Delivery ratio", "p50_latency": "Median latency",
    "p99_latency": "99th-percentile latency", "mqtt_bytes": "MQTT bytes",
    "bytes_per_copy": "MQTT bytes per delivered copy",
    "reason": "How it ended", "side": "Noticed first by", "connections": "Connections",
}

_KINDS: dict[str, str] = {
    "sent": "count", "expected": "count", "delivered": "count", "duplicates": "count",
    "lost": "count", "runs": "count", "connections": "count", "mqtt_bytes": "count",
    "delivery_ratio": "share", "p50_latency": "seconds", "p99_latency": "seconds",
    "latency": "seconds", "bytes_per_copy": "bytes",
}


def kind_of(column: str) -> str:
    """How a column's values are written: count, share, seconds, bytes or number."""
    if column in _KINDS:
        return _KINDS[column]
    unit = unit_of(column)
    return {"s": "seconds", "fraction": "share", "probability": "share"}.get(unit or "",
                                                                         "number")


def parameter_title(key: str) -> str:
    """A grid or override key as a column title: ``link.latency`` -> ``link latency (s)``."""
    if key in ("qos", "set.qos"):  # a sweep's grid key qos: the scenario's default QoS
        return "QoS setting"
    unit = unit_of(key)
    text = key.replace("_", " ").replace(".", " ")
    return f"{text} ({unit})" if unit and unit not in ("fraction",) else text


def parameter_words(key: str) -> str:
    """A key as words in a sentence, without its unit: ``link.latency`` -> ``link latency``."""
    if key in ("qos", "set.qos"):
        return "QoS setting"
    return key.replace("_", " ").replace(".", " ")


def column_title(column: str) -> str:
    """The human name of a column; unknown columns read as words, with their unit."""
    return COLUMN_NAMES.get(column) or parameter_title(column)


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _trim(text: str) -> str:
    """``"12.50"`` -> ``"12.5"``, ``"3.00"`` -> ``"3"``: no trailing zeros after a point."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_general(value: float, digits: int = 3) -> str:
    """About ``digits`` significant figures, thousands separated, never in e-notation:
    10670.3 -> ``10,670``, 76.616 -> ``76.6``, 0.00042 -> ``0.00042``."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return _trim(f"{value:,.{min(decimals, 12)}f}")


def format_count(value: float) -> str:
    """Whole counts as ``1,234``; a mean over seeds keeps one decimal (``98.5``)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return _trim(f"{value:,.1f}")


def format_share(value: float) -> str:
    """A fraction as a percentage with at most one decimal; never rounded to a
    misleading 100 % or 0 %: 0.9996 -> ``> 99.9 %``."""
    percent = value * 100
    if 99.95 <= percent < 100:
        return "> 99.9 %"
    if 0 < percent < 0.05:
        return "< 0.1 %"
    return f"{_trim(f'{percent:.1f}')} %"


def format_seconds(value: float) -> str:
    """A duration in the unit that reads best: ``0.4 ms``, ``40 ms``, ``30.9 s``, ``1,250 s``."""
    if value == 0:
        return "0 s"
    if abs(value) < 1:
        return f"{format_general(value * 1000)} ms"
    return f"{format_general(value)} s"


def format_value(value: Any, kind: str = "number") -> str:
    """One cell: ``–`` for a missing value, else by kind (see ``kind_of``)."""
    if _missing(value):
        return "–"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    value = float(value) if not float(value).is_integer() else int(value)
    if kind == "count":
        return format_count(value)
    if kind == "share":
        return format_share(value)
    if kind == "seconds":
        return format_seconds(value)
    if kind == "bytes":
        return f"{format_general(value)} B" if abs(value) < 1000 else f"{value:,.0f} B"
    return format_count(value) if float(value).is_integer() else format_general(value)


def format_spread(mean: Any, low: Any, high: Any, kind: str = "number",
                  bounds: tuple[float | None, float | None] = (None, None)) -> str:
    """``mean (low–high)`` with the interval clipped to ``bounds``; just ``mean`` when there
    is no interval (one seed) or it has no width (every seed gave the same number): a
    "± 0" tells the reader nothing."""
    text = format_value(mean, kind)
    if _missing(mean) or _missing(low) or _missing(high):
        return text
    floor, ceiling = bounds
    low = max(low, floor) if floor is not None else low
    high = min(high, ceiling) if ceiling is not None else high
    low_text, high_text = format_value(low, kind), format_value(high, kind)
    if high - low <= 1e-12 * max(1.0, abs(mean)) or low_text == high_text:
        return text
    return f"{text} <span class='spread'>({low_text}–{high_text})</span>"


def _cell(column: str, value: Any) -> str:
    return html.escape(format_value(value, kind_of(column)))


def html_table(frame: pd.DataFrame, columns: Sequence[str] | None = None,
               titles: dict[str, str] | None = None, raw: Sequence[str] = (),
               caption: str | None = None) -> str:
    """A table with human column titles and readable numbers; columns in ``raw`` hold HTML
    already (e.g. a spread). Text columns are left-aligned, numbers right-aligned."""
    if frame is None or frame.empty:
        return "<p>(nothing to show)</p>"
    columns = list(columns or frame.columns)
    titles = titles or {}
    numeric = {c for c in columns if c not in raw
               and pd.api.types.is_numeric_dtype(frame[c])}
    head = "".join(f"<th class='{'num' if c in numeric or c in raw else 'text'}'>"
                   f"{html.escape(titles.get(c, column_title(c)))}</th>" for c in columns)
    rows = []
    for record in frame[columns].to_dict("records"):
        cells = []
        for c in columns:
            text = str(record[c]) if c in raw else _cell(c, record[c])
            cells.append(f"<td class='{'num' if c in numeric or c in raw else 'text'}'>"
                         f"{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f"<table class='data'>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def bounds_of(column: str) -> tuple[float | None, float | None]:
    """What a metric can be (see ``style.metric_bounds``)."""
    return metric_bounds(column)
