"""HTML reports: what a reader finds in the file, from a run, a results directory, a sweep:
the question, the setup, figures with sentences written from the numbers, readable tables."""

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


def cells(text: str) -> list[str]:
    return re.findall(r"<td class='(?:num|text)'>(.*?)</td>", text)


def test_run_report_has_question_setup_readable_numbers_and_every_figure(res, tmp_path) -> None:
    path = report(res, tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    assert "<h1>intermittent</h1>" in text
    assert "30-35 s outages vs a 10 s keepalive" in text
    assert "<strong>Question.</strong> What happens to messages published at QoS 0, QoS 1 " \
           "and QoS 2" in text
    summary = res.summary()
    assert summary.loc[0, "lost"] > 0  # the story the report must show
    shown = cells(text)
    for qos, row in summary.iterrows():
        for metric in ("sent", "delivered", "lost"):
            assert f"{int(row[metric]):,}" in shown, (qos, metric)
        assert f"{int(row['mqtt_bytes']):,}" in shown  # 7,585: thousands separated
        assert f"{row['delivery_ratio'] * 100:.1f} %".replace(".0 %", " %") in shown
    assert "40 ms" in shown and "30.9 s" in shown  # latencies with their unit
    assert not re.search(r"\de[+-]\d", "".join(shown))  # never 1.067e+04
    for raw in ("delivery_ratio", "p99_latency", "bytes_per_copy"):  # human column names
        assert f">{raw}<" not in text
    assert ">Delivered more than once</th>" in text and ">Delivery ratio</th>" in text
    assert "keepalive" in shown and "broker" in shown  # how the connections ended
    assert ">meter-q1</td>" in text and "publishes meters/q1 at QoS 1 every 1 s" in text
    assert "20 ms, down 60-90 s, 150-185 s" in text  # the setup: each client's link
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
    assert "QoS 0 delivered its one message exactly once." in text
    assert main(["report", str(tmp_path / "run"), "--scenario", scenario, "-o",
                 str(tmp_path / "q.html"), "--question", "Does sub print 12?", "--title",
                 "Lab 1"]) == 0
    asked = (tmp_path / "q.html").read_text(encoding="utf-8")
    assert "<h1>Lab 1</h1>" in asked and "Does sub print 12?" in asked
    capsys.readouterr()
    assert main(["report", str(tmp_path / "no")]) == 2
    assert "no such results directory" in capsys.readouterr().err


def test_sweep_report_has_grid_outcomes_per_qos_means_and_a_figure_per_metric(tmp_path) -> None:
    sensor = Scenario.load(SCENARIOS / "seed-sensor.toml")
    result = sweep(sensor, {"link.latency": [0.001, 0.01]}, seeds=2, workers=1,
                   cache_dir=False, progress=False)
    save_sweep(result, tmp_path / "sweep")
    text = report(tmp_path / "sweep", tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<h1>seed-sensor</h1>" in text
    assert "2 runs" not in text and "4 runs: 2 grid points x 2 seeds (0, 1); 0 failed" in text
    assert "<td class='text'>link latency (s)</td><td class='text'>1 ms, 10 ms</td>" in text
    assert "How do delivery, latency and bytes per message change with link latency " \
           "(1 ms and 10 ms)" in text
    slow = result.aggregate.loc[result.aggregate["link.latency"] == 0.01, "p99_latency"].item()
    assert f"<td class='num'>{slow * 1000:g} ms</td>" in text  # seeds agree: no "± 0"
    assert "±" not in text and "class='spread'" not in text
    assert "Every seed gave the same result, so there is no band." in text
    assert (f"The 99th-percentile latency rises from {0.006 * 1000:g} ms to "
            f"{slow * 1000:g} ms at QoS 0 as link latency goes from 1 ms to 10 ms.") in text
    assert "QoS 0 delivered every message exactly once at every link latency." in text
    # the network, the outcome bars per QoS, then delivery ratio, p99 latency, bytes per copy
    assert len(images(text)) == 5
    assert 'class="error"' not in text


def test_sweep_report_shows_a_spread_only_where_seeds_differ(tmp_path) -> None:
    lossy = Scenario.load(SCENARIOS / "lossy-2g.toml").with_(
        duration=40, **{"clients.field.count": 2, "clients.field.publish.0.stop": 30})
    result = sweep(lossy, {"link.loss": [0.0, 0.2]}, seeds=2, workers=1, cache_dir=False,
                   progress=False)
    text = report(result, tmp_path / "s.html").read_text(encoding="utf-8")
    agg = result.aggregate.set_index("link.loss")
    assert agg.loc[0.2, "p99_latency_ci95"] > 0 and agg.loc[0.0, "sent_ci95"] == 0
    spreads = re.findall(r"<span class='spread'>\((.*?)–(.*?)\)</span>", text)
    assert spreads  # where the seeds differ ...
    for low, _ in spreads:  # ... the interval never goes below zero (a latency, a count)
        assert not low.startswith("-"), low
    assert "95 % confidence interval over the seeds, cut off where the quantity cannot go" \
        in text
