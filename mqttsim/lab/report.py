"""``report(results)``: one self-contained HTML file to hand in, mail or archive.

Everything is inside the file (figures as base64 PNG, no scripts, no links to fetch), so it
opens the same anywhere, years later. It shows what was run (scenario name, description and
every parameter as the dotted key ``--set`` takes), what came out (the per-QoS summary, how
connections ended) and the standard figures; for a sweep, the grid, the means with their
95 % confidence intervals and a figure per grid key and metric.

``mqttsim run --out DIR`` writes the tables as CSV; ``load_results(DIR)`` reads them back into
a ``Results`` so that ``mqttsim report DIR`` can rebuild the report without running again.
``save_sweep``/``load_sweep`` do the same for a sweep (``mqttsim sweep --out DIR``).
"""

from __future__ import annotations

import ast
import base64
import datetime
import html
import io
import json
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["report", "load_results", "save_sweep", "load_sweep", "flatten_parameters",
           "sweep_figure", "RUN_INFO"]

#: What a results directory may hold besides the tables, to know the scenario and seed:
#: ``{"scenario": <Scenario.to_dict()>, "source": ..., "seed": ..., "backend": ...}``.
RUN_INFO = "run.json"
#: Figures drawn for one run, in order: (title, name of the function in mqttsim.lab).
RUN_FIGURES = (("Outcomes by QoS", "outcomes_by_qos"), ("Latency", "latency_cdf"),
               ("Connections", "connection_timeline"), ("Bytes per message", "bytes_per_message"),
               ("Topology", "topology"))
#: Metrics drawn against each grid key of a sweep.
SWEEP_METRICS = ("delivery_ratio", "p99_latency", "bytes_per_copy")
#: Panels of a sweep figure at most (one per combination of the other grid keys' values).
MAX_PANELS = 6
_PAYLOAD_COLUMNS = {"received": "payload", "published": "payload", "drops": "payload"}


# --- Reading a results directory back

def load_results(directory: str | os.PathLike, scenario: Any = None) -> Any:
    """A ``Results`` from the CSV files ``Results.to_csv`` / ``mqttsim run --out`` wrote.

    The scenario comes from ``scenario`` (a Scenario or a TOML path), else from ``run.json``
    or ``scenario.toml`` in the directory; without one, figures that need the topology are
    left out of a report. Payloads are bytes again; there are no segment payloads (no pcap).
    """
    from ..scenario import Results, Scenario
    from ..scenario.results import TABLES
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such results directory")
    missing = [f"{name}.csv" for name in TABLES if not (folder / f"{name}.csv").is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a results directory (mqttsim run --out): "
                                f"missing {', '.join(missing)}")
    info: dict[str, Any] = {}
    if (folder / RUN_INFO).is_file():
        info = json.loads((folder / RUN_INFO).read_text(encoding="utf-8"))
    if isinstance(scenario, (str, os.PathLike)):
        scenario = Scenario.load(scenario)
    if scenario is None and "scenario" in info:
        scenario = Scenario.from_dict(info["scenario"], info.get("source"))
    if scenario is None and (folder / "scenario.toml").is_file():
        scenario = Scenario.load(folder / "scenario.toml")
    tables = {name: _read_table(folder / f"{name}.csv", _PAYLOAD_COLUMNS.get(name))
              for name in TABLES}
    return Results(scenario, info.get("seed"), info.get("backend", "sim"), tables)


def _read_table(path: Path, payload: str | None) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    if payload and payload in frame.columns:
        frame[payload] = [_bytes(v) for v in frame[payload]]
    return frame


def _bytes(value: Any) -> Any:
    """``"b'12'"`` (how pandas writes bytes) -> ``b'12'``; anything else as it is."""
    if isinstance(value, str) and value[:2] in ("b'", 'b"'):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


# --- A sweep on disk: what `mqttsim sweep --out DIR` writes and `mqttsim report DIR` reads

def save_sweep(result: Any, directory: str | os.PathLike) -> list[Path]:
    """Write ``sweep.csv`` (the tidy table; also ``sweep.parquet`` when pyarrow is
    installed), ``aggregate.csv``, ``failures.csv`` and ``sweep.json`` (scenario, grid,
    seeds: what ``load_sweep`` needs to rebuild the SweepResult)."""
    import importlib.util

    from .sweep import code_version
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "sweep.csv", folder / "aggregate.csv", folder / "failures.csv",
               folder / "sweep.json"]
    result.table.to_csv(written[0], index=False)
    result.aggregate.to_csv(written[1], index=False)
    pd.DataFrame([{"params": json.dumps(f.params, default=str), "seed": f.seed,
                   "error": f.error} for f in result.failures],
                 columns=["params", "seed", "error"]).to_csv(written[2], index=False)
    scenario = result.scenario
    info = {"scenario": scenario.to_dict(), "source": scenario.source, "grid": result.grid,
            "seeds": result.seeds, "columns": result.columns, "complete": result.complete,
            "ran": result.ran, "cached": result.cached, "seconds": result.seconds,
            "failures": [list(f) for f in result.failures], "mqttsim": code_version()}
    written[3].write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
    if importlib.util.find_spec("pyarrow") is not None:
        written.append(folder / "sweep.parquet")
        result.table.to_parquet(written[-1], index=False)
    return written


def load_sweep(directory: str | os.PathLike) -> Any:
    """The SweepResult that ``save_sweep`` wrote into ``directory``."""
    from ..scenario import Scenario
    from .sweep import Failure, SweepResult, aggregate, column_name
    folder = Path(directory)
    info = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
    table = pd.read_csv(folder / "sweep.csv")
    columns = info.get("columns") or {key: column_name(key) for key in info["grid"]}
    return SweepResult(
        table=table, aggregate=aggregate(table, list(columns.values())),
        failures=[Failure(dict(p), int(s), str(e)) for p, s, e in info.get("failures", [])],
        complete=bool(info.get("complete", True)), grid=info["grid"], seeds=info["seeds"],
        scenario=Scenario.from_dict(info["scenario"], info.get("source")),
        ran=int(info.get("ran", 0)), cached=int(info.get("cached", 0)), columns=columns,
        seconds=float(info.get("seconds", 0.0)))


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


def _png(figure: Any) -> str:
    """A Figure (or Axes) as an embedded PNG; the figure is closed afterwards."""
    fig = getattr(figure, "figure", figure)
    fig = getattr(fig, "figure", fig) if not hasattr(fig, "savefig") else fig
    if not hasattr(fig, "savefig"):
        raise TypeError(f"expected a matplotlib Figure or Axes, got {type(figure).__name__}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    pyplot = sys.modules.get("matplotlib.pyplot")  # only a figure made by pyplot needs it
    if pyplot is not None:
        pyplot.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="">'


def _figure(title: str, draw: Callable[[], Any]) -> str:
    """One figure section; a figure that cannot be drawn becomes a visible note (and a
    warning), so the rest of the report is still written."""
    try:
        body = _png(draw())
    except Exception as error:  # noqa: BLE001 - shown in the report, not hidden
        warnings.warn(f"report: figure {title!r} could not be drawn: {error}", stacklevel=3)
        body = (f'<p class="error">This figure could not be drawn: '
                f'{html.escape(type(error).__name__)}: {html.escape(str(error))}</p>')
    return f'<figure><figcaption>{html.escape(title)}</figcaption>{body}</figure>'


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return "–" if value != value else f"{value:.4g}"
    return str(value)


def _html_table(frame: pd.DataFrame, index: bool = True) -> str:
    if frame is None or frame.empty:
        return "<p>(empty)</p>"
    return frame.to_html(index=index, border=0, classes="data", na_rep="–",
                         float_format=lambda v: f"{v:.4g}", escape=True)


def _plots():
    """The lab's plot functions (the package exports them all, from plots.py, timeline.py,
    topology.py...), imported when a report is drawn: they pull in matplotlib."""
    import mqttsim.lab
    return mqttsim.lab


# --- Sections

def _scenario_section(scenario: Any, seed: Any = None, backend: str | None = None) -> str:
    if scenario is None:
        return ("<p>The scenario is unknown (no run.json or scenario.toml next to the tables): "
                "figures that need it are left out.</p>")
    facts = [f"{len(scenario.clients)} clients", f"{scenario.duration:g} s",
             f"transport {scenario.transport}"]
    if seed is not None:
        facts.append(f"seed {seed}")
    if backend:
        facts.append(f"backend {backend}")
    if scenario.source:
        facts.append(f"from {scenario.source}")
    rows = "".join(f"<tr><td><code>{html.escape(key)}</code></td>"
                   f"<td><code>{html.escape(json.dumps(value, default=str))}</code></td></tr>"
                   for key, value in flatten_parameters(scenario.to_dict()))
    description = (f"<p class='description'>{html.escape(scenario.description)}</p>"
                   if scenario.description else "")
    return (f"{description}<p>{html.escape(', '.join(facts))}</p>"
            f"<details><summary>Parameters (as <code>--set</code> keys)</summary>"
            f"<table class='data'><tr><th>key</th><th>value</th></tr>{rows}</table></details>")


def _run_sections(res: Any) -> str:
    summary = res.summary()
    parts = ["<h2>Summary per QoS</h2>",
             "<p>One row per QoS the messages were published with; latencies in seconds.</p>",
             _html_table(summary.reset_index() if len(summary) else summary, False)]
    ended = res.connections.dropna(subset=["reason"]) if "reason" in res.connections else None
    if ended is not None and len(ended):
        counts = ended.groupby(["reason", "side"]).size().rename("connections").reset_index()
        parts += ["<h2>How connections ended</h2>",
                  "<p><code>side</code>: who noticed first.</p>", _html_table(counts, False)]
    plots = _plots()
    parts.append("<h2>Figures</h2>")
    for title, name in RUN_FIGURES:
        if name == "topology" and res.scenario is None:
            continue
        parts.append(_figure(title, lambda name=name: getattr(plots, name)(res)))
    return "".join(parts)


def _with_ci(aggregate: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Means as "mean ± half-width" text, for reading (the numbers are in aggregate.csv)."""
    shown = aggregate[[*keys, "runs"]].copy()
    for column in aggregate.columns:
        if column.endswith("_ci95") or column in (*keys, "runs"):
            continue
        ci = aggregate.get(f"{column}_ci95")
        shown[column] = [_number(m) + ("" if c is None or c != c else f" ± {c:.2g}")
                         for m, c in zip(aggregate[column],
                                         ci if ci is not None else [None] * len(aggregate))]
    return shown


def _sweep_sections(result: Any) -> str:
    keys = list(result.columns.values())
    grid = "".join(f"<tr><td><code>{html.escape(key)}</code></td><td>"
                   f"{html.escape(', '.join(json.dumps(v, default=str) for v in values))}"
                   f"</td></tr>" for key, values in result.grid.items())
    state = "" if result.complete else (" <strong>Interrupted: only the runs that had "
                                        "finished are included.</strong>")
    points = result.runs // len(result.seeds)
    parts = ["<h2>Sweep</h2>",
             f"<p>{result.runs} runs: {points} grid point{'s' * (points != 1)} x "
             f"{len(result.seeds)} seeds ({html.escape(_seed_text(result.seeds))}); "
             f"{len(result.failures)} failed.{state}</p>",
             f"<table class='data'><tr><th>grid key</th><th>values</th></tr>{grid}</table>",
             "<h3>Means over seeds (± 95 % confidence interval)</h3>",
             _html_table(_with_ci(result.aggregate, [*keys, "qos"]), False)]
    if result.failures:
        failed = pd.DataFrame([{"point": json.dumps(f.params, default=str), "seed": f.seed,
                                "error": f.error} for f in result.failures])
        parts += ["<h3>Failed runs</h3>", _html_table(failed, False)]
    if not result.table.empty:
        parts.append("<h3>Figures</h3>")
        for key in keys:
            for metric in SWEEP_METRICS:
                if metric in result.table.columns:
                    parts.append(_figure(f"{metric} against {key}",
                                         lambda k=key, m=metric: sweep_figure(result, k, m)))
    return "".join(parts)


def sweep_figure(result: Any, key: str, metric: str) -> Any:
    """``metric`` against the grid column ``key``, one line per QoS; with other grid keys,
    one panel per combination of their values (at most ``MAX_PANELS``), since averaging
    over them would mix different experiments into one line."""
    from matplotlib.figure import Figure
    plots = _plots()
    table = result.table
    others = [c for c in result.columns.values() if c != key]
    if not others:
        return plots.against_parameter(table, key, metric)
    every = table[others].drop_duplicates()
    combos = every.head(MAX_PANELS)
    columns = min(len(combos), 3)
    rows = -(-len(combos) // columns)
    fig = Figure(figsize=(6.5 * columns, 4.3 * rows), layout="constrained")
    if len(every) > len(combos):
        fig.suptitle(f"the first {len(combos)} of {len(every)} combinations of "
                     f"{', '.join(others)}")
    for i, values in enumerate(combos.itertuples(index=False)):
        ax = fig.add_subplot(rows, columns, i + 1)
        mask = (table[others] == pd.Series(list(values), index=others)).all(axis=1)
        plots.against_parameter(table[mask], key, metric, ax=ax)
        where = ", ".join(f"{k} = {v}" for k, v in zip(others, values))
        ax.set_title(f"{ax.get_title()}\nwith {where}", fontsize="small")
    return fig


def _seed_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}..{seeds[-1]}"
    return ", ".join(map(str, seeds))


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; } .description { font-size: 1.1rem; color: #444; }
table.data { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
table.data th, table.data td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #ddd;
                               text-align: right; }
table.data td:first-child, table.data th:first-child { text-align: left; }
figure { margin: 1rem 0; } figcaption { font-weight: 600; margin-bottom: 0.3rem; }
figure img { max-width: 100%; } .error { color: #b00; } footer { color: #777; font-size: 0.8rem; }
"""


# --- The report

def report(results_or_dir: Any = None, path: str | os.PathLike = "report.html",
           sweep: Any = None) -> Path:
    """Write an HTML report to ``path`` and return its path.

    ``results_or_dir``: a ``Results`` (from ``mqttsim.run``), a directory written by
    ``mqttsim run --out`` (see ``load_results``) or by ``mqttsim sweep --out``, or a
    ``SweepResult``. ``sweep``: a ``SweepResult`` to add (grid, means and CIs, figures
    against each grid key).
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
    name = getattr(scenario, "name", None) or "mqttsim run"
    sections = [f"<h1>{html.escape(name)}</h1>",
                _scenario_section(scenario, getattr(res, "seed", None),
                                  getattr(res, "backend", None))]
    if res is not None:
        sections.append(_run_sections(res))
    if sweep is not None:
        sections.append(_sweep_sections(sweep))
    when = datetime.datetime.now().isoformat(timespec="seconds")
    sections.append(f"<footer>mqttsim {html.escape(__version__)}, {when}</footer>")
    document = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<title>{html.escape(name)} - mqttsim report</title>"
                f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")
    return out
