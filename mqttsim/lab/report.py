"""``report(results)``: a short lab write-up in one self-contained HTML file, to hand out.

It reads like a lab report: the question, the setup (what the clients do, their links, the
network drawn with every link's parameters), then each result as a figure with one or two
sentences that say what it shows and what to notice. Those sentences are written from the
numbers of this run or sweep (``report_text``), never canned; numbers are written for
reading (``report_format``: ``10,670``, ``40 ms``, ``66.7 %``), and a spread over seeds is
shown only where the seeds disagree.

Everything is inside the file (figures as base64 PNG, no scripts, no links to fetch), so it
opens the same anywhere, years later, and it prints on A4 or Letter: the page is at most
52 rem wide, tables are split rather than widened, figures scale to the page and are never
cut across pages.

``mqttsim run --out DIR`` and ``mqttsim sweep --out DIR`` write what ``mqttsim report DIR``
reads back (``report_io``).
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import numbers
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import report_text as text
from .report_figures import MAX_PANELS, other_combinations, sweep_figure, sweep_outcomes
from .report_format import (bounds_of, column_title, format_seconds, format_spread, format_value,
                            html_table, kind_of, parameter_title, parameter_words)
from .report_io import RUN_INFO, load_results, load_sweep, save_sweep

__all__ = ["report", "load_results", "save_sweep", "load_sweep", "flatten_parameters",
           "sweep_figure", "sweep_outcomes", "RUN_INFO", "RUN_FIGURES", "SWEEP_METRICS",
           "MAX_PANELS"]

#: Figures drawn for one run, in order: (title, name of the function in mqttsim.lab).
RUN_FIGURES = (("The network", "topology"), ("What happened to the messages", "outcomes_by_qos"),
               ("How late they arrived", "latency_cdf"),
               ("How the connections went", "connection_timeline"),
               ("What each delivered message cost in bytes", "bytes_per_message"))
#: Metrics drawn against each grid key of a sweep (after the outcome bars).
SWEEP_METRICS = ("delivery_ratio", "p99_latency", "bytes_per_copy")
#: A report's summary tables, split so that none is wider than a printed page.
OUTCOME_COLUMNS = ("sent", "expected", "delivered", "duplicates", "lost", "delivery_ratio")
COST_COLUMNS = ("p50_latency", "p99_latency", "mqtt_bytes", "bytes_per_copy")
MAX_TABLE_COLUMNS = 8  # wider tables are split: eight columns still fit an A4 page
DPI = 110  # figures are drawn a little larger than the page and scaled down: sharp in print


# --- Building blocks

def flatten_parameters(data: Mapping[str, Any], schema: Any = None,
                       prefix: str = "") -> list[tuple[str, Any]]:
    """A scenario dict as (dotted key, value) pairs, each key one that ``--set`` and a sweep
    grid take: clients by name (``clients.sub.keepalive``), other array entries by index
    (``clients.pub.publish.0.qos``, even where the file wrote a single table)."""
    if schema is None:
        from ..scenario.load import SCHEMA
        schema = SCHEMA
    pairs: list[tuple[str, Any]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        sub = schema.get(key) if isinstance(schema, Mapping) else None
        entries = [value] if isinstance(value, Mapping) else value
        if (isinstance(sub, list) and isinstance(entries, list) and entries
                and all(isinstance(item, Mapping) for item in entries)):
            for i, item in enumerate(entries):
                label = item.get("name", i) if key == "clients" else i
                pairs += flatten_parameters(item, sub[0], f"{dotted}.{label}.")
        elif isinstance(sub, Mapping) and isinstance(value, Mapping):
            pairs += flatten_parameters(value, sub, dotted + ".")
        else:
            pairs.append((dotted, value))
    return pairs


def _png(figure: Any, alt: str = "") -> str:
    """A Figure (or Axes) as an embedded PNG; the figure is closed afterwards."""
    fig = getattr(figure, "figure", figure)
    fig = getattr(fig, "figure", fig) if not hasattr(fig, "savefig") else fig
    if not hasattr(fig, "savefig"):
        raise TypeError(f"expected a matplotlib Figure or Axes, got {type(figure).__name__}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    pyplot = sys.modules.get("matplotlib.pyplot")  # only a figure made by pyplot needs it
    if pyplot is not None:
        pyplot.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}">'


class _Figures:
    """Numbers the figures of one report and writes each with its caption."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, title: str, draw: Callable[[], Any], sentences: Sequence[str]) -> str:
        """A figure, its number and title, and the sentences that say what to notice; a
        figure that cannot be drawn becomes a visible note (and a warning), so the rest of
        the report is still written."""
        self.count += 1
        words = " ".join(sentences)
        try:
            body = _png(draw(), alt=f"{title}. {words}")
        except Exception as error:  # noqa: BLE001 - shown in the report, not hidden
            warnings.warn(f"report: figure {title!r} could not be drawn: {error}",
                          stacklevel=3)
            body = (f'<p class="error">This figure could not be drawn: '
                    f'{html.escape(type(error).__name__)}: {html.escape(str(error))}</p>')
        return (f"<figure>{body}<figcaption><strong>Figure {self.count}. "
                f"{html.escape(title)}.</strong> <span class='says'>{html.escape(words)}"
                f"</span></figcaption></figure>")


def _paragraphs(sentences: Sequence[str]) -> str:
    return f"<p>{html.escape(' '.join(sentences))}</p>" if sentences else ""


def _plots():
    """The lab's plot functions (the package exports them all, from plots.py, timeline.py,
    topology.py...), imported when a report is drawn: they pull in matplotlib."""
    import mqttsim.lab
    return mqttsim.lab


# --- The setup

def _client_rows(scenario: Any) -> pd.DataFrame:
    """One row per client, identical clients (``count = 5``) as one row: what it does,
    its keepalive and session, its access link."""
    from .topology import _client_groups, describe_link, describe_workload
    rows = []
    for name, members in _client_groups(scenario, group=True):
        c = members[0]
        up, down = describe_link(c.link.up), describe_link(c.link.down)
        rows.append({"client": name, "does": describe_workload(c),
                     "keepalive": f"{c.keepalive:g} s" if c.keepalive else "off",
                     "session": "clean" if c.clean else "persistent",
                     "link": up if up == down else f"up: {up}; down: {down}"})
    return pd.DataFrame(rows)


def _setup_section(scenario: Any, figures: _Figures, seeds: str | None,
                   backend: str | None) -> str:
    if scenario is None:
        return ("<h2>Setup</h2><p>The scenario is unknown (no run.json or scenario.toml next "
                "to the tables): figures that need it are left out.</p>")
    versions = sorted({c.version for c in scenario.clients})
    facts = [("Duration", format_seconds(scenario.duration)),
             ("Transport", "TCP" if scenario.transport == "tcp" else scenario.transport),
             ("MQTT version", ", ".join({3: "3.1", 4: "3.1.1", 5: "5.0"}.get(v, str(v))
                                        for v in versions)),
             ("Clients", format_value(len(scenario.clients), "count"))]
    if seeds:
        facts.append(("Seeds" if "," in seeds or ".." in seeds else "Seed", seeds))
    if backend:
        facts.append(("Backend", {"sim": "simulated (SimPy)"}.get(backend, backend)))
    if scenario.source:
        facts.append(("Scenario file", scenario.source))
    fact_list = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
                        for k, v in facts)
    clients = html_table(_client_rows(scenario), titles={
        "client": "Client", "does": "What it does", "keepalive": "Keepalive",
        "session": "Session", "link": "Access link (one way)"})
    plots = _plots()
    parameters = "".join(f"<tr><td class='text'><code>{html.escape(key)}</code></td>"
                         f"<td class='text'><code>{html.escape(json.dumps(v, default=str))}"
                         f"</code></td></tr>" for key, v in
                         flatten_parameters(scenario.to_dict()))
    return ("<h2>Setup</h2>"
            + (f"<p class='description'>{html.escape(scenario.description)}</p>"
               if scenario.description else "")
            + f"<dl class='facts'>{fact_list}</dl>{clients}"
            + figures("The network", lambda: plots.topology(scenario),
                      text.topology_sentences(scenario))
            + "<details><summary>Every parameter, as the keys <code>--set</code> and a "
              "sweep grid take</summary><table class='data'><thead><tr>"
              "<th class='text'>key</th><th class='text'>value</th></tr></thead>"
              f"<tbody>{parameters}</tbody></table></details>")


# --- One run

def _copies(res: Any) -> dict[int, int]:
    """Per QoS, the most copies one subscriber got of a duplicated message."""
    out = res.outcomes
    dup = out[out["expected"].astype(bool) & (out["outcome"] == "duplicate")]
    return {int(q): int(g["copies"].max()) for q, g in dup.groupby("qos_pub")}


def _one_subscriber(res: Any) -> bool:
    out = res.outcomes[res.outcomes["expected"].astype(bool)]
    return out.empty or not out["msg_id"].duplicated().any()


def _alike_curves(res: Any) -> list[list[int]]:
    """QoS levels whose latency curves are identical (they would hide each other)."""
    out = res.outcomes[res.outcomes["expected"].astype(bool)]
    curves: dict[tuple, list[int]] = {}
    for qos, group in out.groupby("qos_pub", sort=True):
        lat = pd.to_numeric(group["latency"], errors="coerce")
        if lat.notna().any():
            key = (len(group), tuple(sorted(lat.dropna().round(9))))
            curves.setdefault(key, []).append(int(qos))
    return [levels for levels in curves.values() if len(levels) > 1]


def _outages(scenario: Any) -> list[tuple[float, float]]:
    from ._base import client_outages, merge_spans
    if scenario is None:
        return []
    return merge_spans([s for spans in client_outages(scenario).values() for s in spans])


def _run_sections(res: Any, figures: _Figures) -> str:
    plots = _plots()
    summary = res.summary()
    table = summary.reset_index() if len(summary) else summary
    parts = ["<h2>Results</h2>",
             figures("What happened to the messages", lambda: plots.outcomes_by_qos(res),
                     text.outcome_sentences(summary, _copies(res), _one_subscriber(res)))]
    if len(table):
        parts += [html_table(table, ["qos", *OUTCOME_COLUMNS],
                             caption="Messages per QoS they were published at"),
                  figures("How late they arrived", lambda: plots.latency_cdf(res),
                          text.latency_sentences(summary, _outages(res.scenario),
                                                 _alike_curves(res))),
                  html_table(table, ["qos", *COST_COLUMNS],
                             caption="Latency (publish to first delivery) and MQTT bytes "
                                     "per QoS")]
    parts.append(figures("How the connections went", lambda: plots.connection_timeline(res),
                         text.connection_sentences(res.connections)))
    ended = res.connections.dropna(subset=["reason"]) if "reason" in res.connections else None
    if ended is not None and len(ended):
        counts = (ended.groupby(["reason", "side"]).size().rename("connections")
                  .reset_index())
        counts["reason"] = counts["reason"].str.replace("_", " ")
        parts.append(html_table(counts, caption="Connections that ended, by reason"))
    if res.scenario is not None and len(table):
        header = "UDP/IP" if res.scenario.transport == "datagram" else "TCP/IP"
        parts.append(figures("What each delivered message cost in bytes",
                             lambda: plots.bytes_per_message(res),
                             text.bytes_sentences(plots.bytes_by_qos(res), header)))
    return "".join(parts)


# --- A sweep

def _spread_table(result: Any, columns: Sequence[str], caption: str) -> str:
    """The sweep's means per (grid point, QoS) with the 95 % interval where the seeds
    differ, clipped to what each quantity can be. With several grid keys the metrics are
    split over more tables, so that none is wider than a printed page."""
    aggregate = result.aggregate
    keys = [*result.columns.values(), "qos"]
    shown = aggregate[keys].copy()
    titles = {k: parameter_title(k) for k in result.columns.values()}
    shown["runs"] = aggregate["runs"]
    present = [c for c in columns if c in aggregate]
    for column in present:
        ci = aggregate.get(f"{column}_ci95", pd.Series([float("nan")] * len(aggregate)))
        shown[column] = [format_spread(m, m - h, m + h, kind_of(column), bounds_of(column))
                         for m, h in zip(aggregate[column], ci)]
    for key in result.columns.values():
        if pd.api.types.is_numeric_dtype(shown[key]):
            shown[key] = [format_value(v, kind_of(key)) for v in shown[key]]
    per_table = max(2, MAX_TABLE_COLUMNS - len(keys) - 1)
    chunks = [present[i:i + per_table] for i in range(0, len(present), per_table)]
    return "".join(
        html_table(shown, [*keys, "runs", *chunk], titles=titles, raw=chunk,
                   caption=caption + (f" ({i + 1} of {len(chunks)})" if len(chunks) > 1
                                      else ""))
        for i, chunk in enumerate(chunks))


def _seed_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}..{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _has_spread(result: Any, key: str, metric: str) -> bool:
    column = f"{metric}_ci95"
    if column not in result.aggregate:
        return False
    return bool((pd.to_numeric(result.aggregate[column], errors="coerce").fillna(0) > 0).any())


def _where_words(where: Mapping[str, Any]) -> str:
    return ", ".join(f"{parameter_words(k)} = {format_value(v, kind_of(k))}"
                     for k, v in where.items())


def _sweep_sections(result: Any, figures: _Figures) -> str:
    keys = list(result.columns.values())
    grid = pd.DataFrame([{"key": parameter_title(column),
                          "values": ", ".join(format_value(v, kind_of(column))
                                              if isinstance(v, numbers.Real) else
                                              json.dumps(v, default=str) for v in values)}
                         for column, values in zip(keys, result.grid.values())])
    state = "" if result.complete else (" <strong>Interrupted: only the runs that had "
                                        "finished are included.</strong>")
    points = result.runs // len(result.seeds)
    parts = ["<h2>The sweep</h2>",
             f"<p>{result.runs} runs: {points} grid point{'s' * (points != 1)} x "
             f"{len(result.seeds)} seeds ({html.escape(_seed_text(result.seeds))}); "
             f"{len(result.failures)} failed.{state}</p>",
             html_table(grid, titles={"key": "Parameter", "values": "Values"})]
    if result.failures:
        failed = pd.DataFrame([{"point": json.dumps(f.params, default=str), "seed": f.seed,
                                "error": f.error} for f in result.failures])
        parts += ["<h3>Failed runs</h3>", html_table(failed)]
    if result.table.empty:
        return "".join(parts)
    spread = any(_has_spread(result, k, m) for k in keys for m in SWEEP_METRICS)
    note = ("Means over the seeds; in brackets the 95 % confidence interval (Student's t), "
            "where the seeds differ." if spread else
            "Every seed gave the same numbers, so there is no interval to show.")
    parts.append("<h2>Results</h2>")
    for key in keys:
        others, combos, _ = other_combinations(result, key)
        sets = [dict(zip(others, values)) for values in combos.itertuples(index=False)] \
            if others else [{}]
        words = [s for where in sets for s in
                 ([f"With {_where_words(where)}:"] if where else [])
                 + text.sweep_outcome_sentences(result.aggregate, key, where)]
        parts.append(figures(f"What happened to the messages, by {parameter_words(key)}",
                             lambda k=key: sweep_outcomes(result, k), words))
        for metric in SWEEP_METRICS:
            if metric not in result.table.columns:
                continue
            has = _has_spread(result, key, metric)
            words = [s for where in sets for s in text.sweep_metric_sentences(
                result.aggregate, key, metric, where, None)]
            words.append("The shaded band is the 95 % confidence interval over the seeds, "
                         "cut off where the quantity cannot go." if has else
                         "Every seed gave the same result, so there is no band.")
            parts.append(figures(f"{column_title(metric)} against "
                                 f"{parameter_words(key)}",
                                 lambda k=key, m=metric: sweep_figure(result, k, m), words))
    parts += [f"<p class='note'>{note}</p>",
              _spread_table(result, OUTCOME_COLUMNS, "Messages, per grid point and QoS"),
              _spread_table(result, COST_COLUMNS, "Latency and MQTT bytes, per grid point "
                                                  "and QoS")]
    return "".join(parts)


_STYLE = """
@page { margin: 14mm 12mm; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; overflow-wrap: break-word; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ccc; }
h2, h3 { break-after: avoid; page-break-after: avoid; }
.question { font-size: 1.1rem; background: #f4f6f8; border-left: 4px solid #0072B2;
            padding: 0.5rem 0.8rem; }
.description { font-size: 1.05rem; color: #444; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
table.data { border-collapse: collapse; margin: 0.6rem 0 1.2rem; font-size: 0.85rem;
             max-width: 100%; break-inside: avoid; page-break-inside: avoid; }
table.data caption { text-align: left; font-weight: 600; padding-bottom: 0.2rem; }
table.data th, table.data td { padding: 0.2rem 0.5rem; border-bottom: 1px solid #ddd;
                               vertical-align: top; }
table.data th { font-weight: 600; border-bottom: 2px solid #999; }
table.data .num { text-align: right; } table.data .text { text-align: left; }
table.data td.text { overflow-wrap: break-word; } table.data td code { overflow-wrap: anywhere; }
.spread { color: #666; font-size: 0.85em; white-space: nowrap; }
figure { margin: 1.2rem 0; break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { margin-top: 0.3rem; font-size: 0.95rem; }
details { margin: 0.5rem 0 1rem; } code { font-size: 0.85em; }
.note { color: #555; font-size: 0.9rem; } .error { color: #b00; }
footer { color: #777; font-size: 0.8rem; margin-top: 2rem; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  details { display: none; }
}
"""


# --- The report

def report(results_or_dir: Any = None, path: str | os.PathLike = "report.html",
           sweep: Any = None, question: str | None = None,
           title: str | None = None) -> Path:
    """Write an HTML report to ``path`` and return its path.

    ``results_or_dir``: a ``Results`` (from ``mqttsim.run``), a directory written by
    ``mqttsim run --out`` (see ``load_results``) or by ``mqttsim sweep --out``, or a
    ``SweepResult``. ``sweep``: a ``SweepResult`` to add (grid, means and intervals,
    outcome bars per QoS and a figure per grid key and metric). ``question``: the question
    the report answers (default: one written from the scenario or the sweep's grid);
    ``title``: the heading (default: the scenario's name).
    """
    from .. import __version__
    from .sweep import SweepResult
    res = results_or_dir
    if isinstance(res, SweepResult):
        res, sweep = None, res
    elif isinstance(res, (str, os.PathLike)):
        folder = Path(res)
        if (folder / "sweep.json").is_file() and not (folder / "outcomes.csv").is_file():
            res, sweep = None, sweep if sweep is not None else load_sweep(folder)
        else:
            res = load_results(folder)
    if res is None and sweep is None:
        raise ValueError("nothing to report: give a Results, a results directory or a sweep")
    scenario = res.scenario if res is not None else sweep.scenario
    name = title or getattr(scenario, "name", None) or "mqttsim run"
    if question is None:
        question = (text.sweep_question(sweep) if sweep is not None else
                    text.run_question(scenario) if scenario is not None else
                    "What happened to the messages of this run?")
    seeds = (_seed_text(sweep.seeds) if sweep is not None else
             None if getattr(res, "seed", None) is None else str(res.seed))
    figures = _Figures()
    sections = [f"<h1>{html.escape(name)}</h1>",
                f"<p class='question'><strong>Question.</strong> {html.escape(question)}</p>",
                _setup_section(scenario, figures, seeds, getattr(res, "backend", None))]
    if res is not None:
        sections.append(_run_sections(res, figures))
    if sweep is not None:
        sections.append(_sweep_sections(sweep, figures))
    when = datetime.datetime.now().isoformat(timespec="seconds")
    sections.append(f"<footer>Written by mqttsim {html.escape(__version__)}, {when}. "
                    "Every sentence under a figure was written from this run's numbers."
                    "</footer>")
    document = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{html.escape(name)} - mqttsim report</title>"
                f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")
    return out
