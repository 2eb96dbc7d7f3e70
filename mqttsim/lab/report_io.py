"""Results and sweeps on disk, for ``mqttsim report DIR``.

``mqttsim run --out DIR`` writes the tables as CSV; ``load_results(DIR)`` reads them back into
a ``Results`` so that ``mqttsim report DIR`` can rebuild the report without running again.
``save_sweep``/``load_sweep`` do the same for a sweep (``mqttsim sweep --out DIR``).
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["RUN_INFO", "load_results", "save_sweep", "load_sweep"]

#: What a results directory may hold besides the tables, to know the scenario and seed:
#: ``{"scenario": <Scenario.to_dict()>, "source": ..., "seed": ..., "backend": ...}``.
RUN_INFO = "run.json"
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
