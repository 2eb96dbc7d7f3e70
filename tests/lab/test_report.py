"""HTML reports: what a reader finds in the file, from a run, a results directory, a sweep."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from mqttsim import Scenario, run
from mqttsim.cli import main
from mqttsim.lab.report import RUN_FIGURES, flatten_parameters, load_results, report, save_sweep
from mqttsim.lab.sweep import sweep

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "data" / "scenarios"
PNG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def intermittent() -> Scenario:
    # Up to the end of the first outage: QoS 0 loses messages, QoS 1 and 2 hold them.
    return Scenario.load(SCENARIOS / "intermittent.toml").with_(duration=100)


@pytest.fixture(scope="module")
def res(intermittent):
    return run(intermittent, seed=1)


def images(text: str) -> list[bytes]:
    return [base64.b64decode(data) for data in PNG.findall(text)]


def test_run_report_has_scenario_summary_numbers_and_every_figure(res, tmp_path) -> None:
    path = report(res, tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    assert "<h1>intermittent</h1>" in text
    assert "30-35 s outages vs a 10 s keepalive" in text
    summary = res.summary()
    assert summary.loc[0, "lost"] > 0  # the story the report must show
    for qos, row in summary.iterrows():
        for metric in ("sent", "delivered", "lost", "mqtt_bytes"):
            assert f"<td>{int(row[metric])}</td>" in text, (qos, metric)
        assert f"<td>{row['delivery_ratio']:.4g}</td>" in text
    assert "<td>keepalive</td>" in text  # how the connections ended
    pngs = images(text)
    assert len(pngs) == len(RUN_FIGURES)
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000 for png in pngs)
    assert 'class="error"' not in text
    assert "http" not in text.replace("http-equiv", "")  # nothing to fetch: self-contained


def test_parameters_are_shown_as_keys_that_set_them(intermittent, tmp_path) -> None:
    pairs = flatten_parameters(intermittent.to_dict())
    assert ("clients.meter-q1.publish.0.qos", 1) in pairs
    assert ("link.outages", [[60.0, 90.0], [150.0, 185.0]]) in pairs
    # Every key shown really is a parameter: setting them all gives the same scenario.
    assert intermittent.with_(**dict(pairs)) == intermittent


def test_report_rebuilt_from_a_results_directory(res, intermittent, tmp_path) -> None:
    res.to_csv(tmp_path / "run")
    (tmp_path / "run" / "run.json").write_text(json.dumps(
        {"scenario": intermittent.to_dict(), "source": intermittent.source, "seed": 1}))
    loaded = load_results(tmp_path / "run")
    assert loaded.scenario == intermittent and loaded.seed == 1
    pd.testing.assert_frame_equal(loaded.summary(), res.summary())
    assert list(loaded.received["payload"][:2]) == list(res.received["payload"][:2])
    text = report(tmp_path / "run", tmp_path / "from-dir.html").read_text(encoding="utf-8")
    assert "<h1>intermittent</h1>" in text and len(images(text)) == len(RUN_FIGURES)


def test_cli_report_of_a_run_out_directory(tmp_path, capsys) -> None:
    scenario = str(SCENARIOS / "seed-sensor.toml")
    assert main(["run", scenario, "--out", str(tmp_path / "run")]) == 0
    assert main(["report", str(tmp_path / "run"), "--scenario", scenario,
                 "-o", str(tmp_path / "r.html")]) == 0
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h1>seed-sensor</h1>" in text and len(images(text)) == len(RUN_FIGURES)
    capsys.readouterr()
    assert main(["report", str(tmp_path / "no")]) == 2
    assert "no such results directory" in capsys.readouterr().err


def test_sweep_report_has_grid_means_with_intervals_and_a_figure_per_metric(tmp_path) -> None:
    sensor = Scenario.load(SCENARIOS / "seed-sensor.toml")
    result = sweep(sensor, {"link.latency": [0.001, 0.01]}, seeds=2, workers=1,
                   cache_dir=False, progress=False)
    save_sweep(result, tmp_path / "sweep")
    text = report(tmp_path / "sweep", tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<h1>seed-sensor</h1>" in text
    assert "2 runs" not in text and "4 runs: 2 grid points x 2 seeds (0, 1); 0 failed" in text
    assert "<code>link.latency</code></td><td>0.001, 0.01</td>" in text
    slow = result.aggregate.loc[result.aggregate["link.latency"] == 0.01, "p99_latency"].item()
    assert f"{slow:.4g} ± 0" in text  # same result for both seeds: a zero-width interval
    assert len(images(text)) == 3  # delivery ratio, p99 latency, bytes per copy
    assert 'class="error"' not in text
