"""Sweeps: the table a user gets, the cache, failures, Ctrl-C, Dask, the command line.

Small scenarios keep this quick: seed-sensor (one message, ~0.1 s a run) and intermittent
cut to 60 s.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mqttsim import Scenario, run
from mqttsim.cli import main
from mqttsim.lab.cli_lab import parse_grid, split_values
from mqttsim.lab.report import load_sweep, save_sweep
from mqttsim.lab.sweep import SweepError, aggregate, sweep

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "data" / "scenarios"
GRID = {"link.latency": [0.001, 0.05], "qos": [0, 1]}


@pytest.fixture(scope="module")
def sensor() -> Scenario:
    return Scenario.load(SCENARIOS / "seed-sensor.toml")


def refuse_slow_links(scenario: Scenario, seed: int):
    """A user's own runner (module level, so worker processes can import it) that gives up
    on some points, as a measurement that needs a fast link might."""
    if scenario.clients[0].link.up.latency >= 0.05:
        raise RuntimeError(f"link too slow to measure (seed {seed})")
    return run(scenario, seed=seed, capture=False)


def die_on_slow_links(scenario: Scenario, seed: int):
    """A runner whose worker process dies outright (as when the kernel kills it)."""
    if scenario.clients[0].link.up.latency >= 0.05:
        os._exit(3)
    return run(scenario, seed=seed, capture=False)


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.json"))


@pytest.fixture(scope="module")
def pooled(sensor):
    """GRID with seeds 0 and 1 on two local worker processes: the reference table."""
    return sweep(sensor, GRID, seeds=2, workers=2, cache_dir=False, progress=False)


# --- The table


def test_table_has_one_row_per_point_seed_and_qos_with_the_summary_of_that_run(
        sensor, pooled) -> None:
    table = pooled.table
    assert pooled.complete and not pooled.failures and pooled.seeds == [0, 1]
    assert list(table.columns[:4]) == ["link.latency", "set.qos", "seed", "qos"]
    assert {"sent", "delivered", "lost", "delivery_ratio", "p99_latency",
            "bytes_per_copy"} <= set(table.columns)
    # seed-sensor publishes one message at the default QoS: one row per run, qos = set.qos.
    assert len(table) == 2 * 2 * 2
    assert (table["qos"] == table["set.qos"]).all()
    # Every row is exactly what mqttsim.run gives for that point and seed.
    row = table[(table["link.latency"] == 0.05) & (table["set.qos"] == 1)
                & (table["seed"] == 1)].iloc[0]
    expected = run(sensor.with_(**{"link.latency": 0.05, "qos": 1}), seed=1).summary().loc[1]
    for metric, value in expected.items():
        assert row[metric] == pytest.approx(value), metric
    # A slower link, a later delivery. QoS 1 costs, on each of the two hops (publisher to
    # broker, broker to subscriber), a packet id in the PUBLISH (2 bytes) and a PUBACK (4).
    fast, slow = (table[table["link.latency"] == v]["p50_latency"].mean() for v in (0.001, 0.05))
    assert slow > 10 * fast
    by_qos = table.groupby("qos")["bytes_per_copy"].first()
    assert by_qos[1] - by_qos[0] == 2 * (2 + 4)


def test_same_seeds_give_the_same_table_in_processes_and_here(sensor, pooled) -> None:
    here = sweep(sensor, GRID, seeds=2, workers=1, cache_dir=False, progress=False)
    pd.testing.assert_frame_equal(pooled.table, here.table)
    pd.testing.assert_frame_equal(pooled.aggregate, here.aggregate)


def test_aggregate_gives_means_and_student_t_intervals() -> None:
    table = pd.DataFrame({"link.loss": [0.1] * 3 + [0.2], "seed": [0, 1, 2, 0],
                          "qos": [1] * 4, "lost": [1.0, 2.0, 3.0, 5.0],
                          "sent": [10, 10, 10, 10]})
    agg = aggregate(table, ["link.loss"])
    first, second = agg.iloc[0], agg.iloc[1]
    assert first["runs"] == 3 and first["lost"] == 2.0
    # t(0.975, 2) = 4.303; s = 1; n = 3.
    assert first["lost_ci95"] == pytest.approx(4.303 / math.sqrt(3), rel=1e-3)
    assert first["sent_ci95"] == 0.0  # every seed agrees
    assert second["runs"] == 1 and math.isnan(second["lost_ci95"])  # one seed: unknown


# --- The cache


def test_cache_hit_skips_the_run_and_a_new_seed_runs_only_itself(sensor, tmp_path) -> None:
    cache = tmp_path / "cache"
    grid = {"link.latency": [0.001, 0.002]}
    first = sweep(sensor, grid, seeds=3, workers=1, cache_dir=cache, progress=False)
    assert (first.ran, first.cached) == (6, 0)
    assert len(cache_files(cache)) == 6

    second = sweep(sensor, grid, seeds=3, workers=1, cache_dir=cache, progress=False)
    assert (second.ran, second.cached) == (0, 6)
    assert second.seconds < first.seconds / 3
    pd.testing.assert_frame_equal(first.table, second.table)

    # Proof that the numbers come from the cache, not from a run: edit one cached summary.
    path = cache_files(cache)[0]
    record = json.loads(path.read_text())
    record["summary"][0]["delivered"] = 999
    path.write_text(json.dumps(record))
    third = sweep(sensor, grid, seeds=3, workers=1, cache_dir=cache, progress=False)
    assert (third.table["delivered"] == 999).sum() == 1

    more = sweep(sensor, grid, seeds=4, workers=1, cache_dir=cache, progress=False)
    assert (more.ran, more.cached) == (2, 6)  # seed 3 at both points


def test_cache_key_follows_the_scenario_and_the_environment_variable(sensor, tmp_path,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("MQTTSIM_CACHE_DIR", str(tmp_path / "env"))
    sweep(sensor, {"link.latency": [0.001]}, seeds=1, workers=1, progress=False)
    assert len(cache_files(tmp_path / "env")) == 1
    # A different base scenario (another keepalive) is another experiment: no hit.
    other = sweep(sensor.with_(keepalive=30), {"link.latency": [0.001]}, seeds=1, workers=1,
                  progress=False)
    assert (other.ran, other.cached) == (1, 0)


# --- Refusing a bad grid before anything runs


def test_unknown_grid_key_is_refused_up_front_listing_valid_keys(sensor, tmp_path) -> None:
    with pytest.raises(SweepError) as caught:
        sweep(sensor, {"link.latency": [0.001], "link.los": [0.1]}, seeds=2,
              cache_dir=tmp_path, progress=False)
    message = str(caught.value)
    assert "grid key 'link.los'" in message and "did you mean 'loss'" in message
    assert "valid keys" in message
    assert "link.{bandwidth,jitter,latency,loss,outages,queue}" in message
    assert "clients.<name>" in message and "sub, pub" in message
    assert cache_files(tmp_path) == []  # nothing ran


def test_refused_value_is_named_before_any_run(sensor, tmp_path) -> None:
    calls: list[int] = []
    with pytest.raises(SweepError, match=r"grid point link.loss=1.5 is refused.*probability"):
        sweep(sensor, {"link.loss": [0.0, 1.5]}, seeds=2, cache_dir=tmp_path,
              progress=lambda done, total: calls.append(done))
    assert calls == [] and cache_files(tmp_path) == []


@pytest.mark.parametrize("grid, message", [
    ({"link.loss": []}, "empty"),
    ({"link.loss": 0.1}, "list of values"),
])
def test_grid_values_must_be_lists(sensor, grid, message) -> None:
    with pytest.raises(SweepError, match=message):
        sweep(sensor, grid, seeds=1, cache_dir=False, progress=False)


# --- Failures and Ctrl-C


def test_failing_run_is_recorded_and_the_others_complete(sensor, tmp_path) -> None:
    result = sweep(sensor, {"link.latency": [0.001, 0.05, 0.002]}, seeds=2, workers=2,
                   cache_dir=tmp_path, progress=False, runner=refuse_slow_links)
    assert result.complete
    assert sorted(f.seed for f in result.failures) == [0, 1]
    params, seed, error = result.failures[0]
    assert params == {"link.latency": 0.05}
    assert error.startswith("RuntimeError: link too slow to measure")
    assert "test_sweep.py" in error  # where it was raised
    assert sorted(result.table["link.latency"].unique()) == [0.001, 0.002]
    assert len(result.table) == 4
    assert len(cache_files(tmp_path)) == 4  # failures are not cached: a re-run tries again


def test_a_worker_that_dies_fails_its_runs_not_the_sweep(sensor) -> None:
    result = sweep(sensor, {"link.latency": [0.001, 0.05]}, seeds=2, workers=2,
                   cache_dir=False, progress=False, runner=die_on_slow_links)
    assert result.complete
    assert {f.params["link.latency"] for f in result.failures} >= {0.05}
    assert all("worker running it died" in f.error for f in result.failures)
    runs_with_rows = len(result.table[["link.latency", "seed"]].drop_duplicates())
    assert runs_with_rows + len(result.failures) == 4


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupt_keeps_the_finished_runs(workers, tmp_path) -> None:
    scenario = Scenario.load(SCENARIOS / "intermittent.toml").with_(duration=60)
    seen: list[int] = []

    def stop_after_three(done: int, total: int) -> None:
        seen.append(done)
        if done == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises

    result = sweep(scenario, {"link.latency": [0.01, 0.02, 0.03, 0.04]}, seeds=2,
                   workers=workers, cache_dir=tmp_path, progress=stop_after_three)
    assert not result.complete and "INCOMPLETE" in repr(result)
    kept = result.table[["link.latency", "seed"]].drop_duplicates()
    assert 3 <= len(kept) < 8 and result.ran == len(kept)
    assert len(result.table) == 3 * len(kept)  # three QoS rows per run
    assert len(cache_files(tmp_path)) == len(kept)
    again = sweep(scenario, {"link.latency": [0.01, 0.02, 0.03, 0.04]}, seeds=2,
                  workers=workers, cache_dir=tmp_path, progress=False)
    assert again.complete and (again.cached, again.ran) == (len(kept), 8 - len(kept))


# --- Dask


def test_dask_local_cluster_gives_the_same_table_as_local_processes(sensor, pooled) -> None:
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        on_cluster = sweep(sensor, GRID, seeds=2, executor=client.get_executor(),
                           cache_dir=False, progress=False)
        by_client = sweep(sensor, {"link.latency": [0.001]}, seeds=2, executor=client,
                          cache_dir=False, progress=False)
        by_address = sweep(sensor, {"link.latency": [0.001]}, seeds=1,
                           executor=cluster.scheduler_address, cache_dir=False, progress=False)
        with pytest.warns(DeprecationWarning, match="executor="):
            old_name = sweep(sensor, {"link.latency": [0.001]}, seeds=2, client=client,
                             cache_dir=False, progress=False)
        workers_used = {w["id"] for w in client.scheduler_info()["workers"].values()}
    pd.testing.assert_frame_equal(pooled.table, on_cluster.table)
    assert len(workers_used) == 2
    assert by_address.complete and len(by_address.table) == 1
    assert by_client.complete and list(by_client.table["seed"]) == [0, 1]
    pd.testing.assert_frame_equal(by_client.table, old_name.table)


def test_any_executor_runs_the_sweep_and_is_left_open_for_its_owner(sensor, pooled) -> None:
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(max_workers=2) as threads:
        result = sweep(sensor, GRID, seeds=2, executor=threads, cache_dir=False,
                       progress=False)
        assert threads.submit(int, "7").result() == 7  # the sweep did not shut it down
    pd.testing.assert_frame_equal(pooled.table, result.table)


def test_executor_and_its_old_name_together_or_a_non_executor_are_refused(sensor) -> None:
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(max_workers=1) as threads, pytest.warns(DeprecationWarning):
        with pytest.raises(TypeError, match="both executor= and its old name client="):
            sweep(sensor, seeds=1, executor=threads, client=threads, cache_dir=False,
                  progress=False)
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        sweep(sensor, seeds=1, executor=object(), cache_dir=False, progress=False)


# --- Saved sweeps and the command line


def test_saved_sweep_loads_back(sensor, tmp_path) -> None:
    result = sweep(sensor, {"link.latency": [0.001, 0.05]}, seeds=2, workers=1,
                   cache_dir=False, progress=False, runner=refuse_slow_links)
    save_sweep(result, tmp_path)
    loaded = load_sweep(tmp_path)
    pd.testing.assert_frame_equal(loaded.table, result.table)
    pd.testing.assert_frame_equal(loaded.aggregate, result.aggregate)
    assert loaded.failures == result.failures
    assert loaded.scenario == sensor and loaded.grid == result.grid


def test_saved_sweep_has_parquet_when_pyarrow_is_installed(sensor, tmp_path) -> None:
    pytest.importorskip("pyarrow")
    result = sweep(sensor, {"link.latency": [0.001]}, seeds=2, workers=1, cache_dir=False,
                   progress=False)
    save_sweep(result, tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sweep.parquet"), result.table)


def test_grid_values_split_on_top_level_commas_only() -> None:
    assert split_values("0,0.05, 0.1") == ["0", "0.05", "0.1"]
    assert split_values("[[60, 90]],[]") == ["[[60, 90]]", "[]"]
    assert split_values('"a,b",c') == ['"a,b"', "c"]
    assert parse_grid(["link.loss=0,0.05", "transport=tcp,datagram",
                       "link.outages=[[60, 90]],[]"]) == {
        "link.loss": [0, 0.05], "transport": ["tcp", "datagram"],
        "link.outages": [[[60, 90]], []]}


def test_cli_sweep_writes_the_table_and_figures(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    status = main(["sweep", str(SCENARIOS / "seed-sensor.toml"), "--grid", "qos=0,1,2",
                   "--set", "link.latency=0.01", "--seeds", "2", "--workers", "1",
                   "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "-q"])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "6 runs (6 ran, 0 from the cache)" in printed.out
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 6
    assert list(table[["set.qos", "seed", "qos"]].itertuples(index=False, name=None)) == [
        (0, 0, 0), (0, 1, 0), (1, 0, 1), (1, 1, 1), (2, 0, 2), (2, 1, 2)]
    assert (table["delivered"] == 1).all() and (table["p50_latency"] > 0.05).all()
    assert (out / "delivery_ratio-vs-set.qos.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(pd.read_csv(out / "aggregate.csv")) == 3


def test_cli_sweep_refuses_an_unknown_key(tmp_path, capsys) -> None:
    status = main(["sweep", str(SCENARIOS / "seed-sensor.toml"), "--grid", "link.lat=1,2",
                   "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert "did you mean 'latency'" in err and "valid keys" in err
    assert cache_files(tmp_path) == []


def _sigint_as_in_a_terminal() -> None:
    """A foreground command in a terminal gets SIGINT with its default action. A test run
    started in the background by a shell without job control (``make test &`` in a script)
    inherits SIGINT *ignored*, and so would the sweep: it would finish all its runs and exit
    0, the ``assert 0 == 130`` this test once failed with."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_cli_ctrl_c_keeps_finished_runs_and_writes_them(tmp_path) -> None:
    """A real SIGINT to the whole process group, as a terminal's Ctrl-C sends it.

    Deterministic by construction: the first two runs (one per worker) are short, every
    later one simulates a million seconds (minutes of CPU), and the SIGINT goes out only once
    the two short runs are in the cache, that is once the sweep's parent is inside its
    Ctrl-C handling and both workers have installed theirs. However slow the machine, the
    sweep can neither finish before the SIGINT nor be interrupted before it began; and the
    long runs must be stopped, not waited for.
    """
    out, cache = tmp_path / "out", tmp_path / "cache"
    process = subprocess.Popen(
        [sys.executable, "-m", "mqttsim", "sweep", str(SCENARIOS / "intermittent.toml"),
         "--grid", "duration=5,1000000", "--seeds", "2", "--workers", "2",
         "--out", str(out), "--cache-dir", str(cache), "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_sigint_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 60
        while len(cache_files(cache)) < 2 and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
        assert len(cache_files(cache)) == 2, "the two short runs did not finish in 60 s"
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the workers too
            process.wait(timeout=10)
    assert process.returncode == 130, stderr
    assert "sweep interrupted: 2 of 4 runs done and kept" in stderr, stderr
    runs = pd.read_csv(out / "sweep.csv")[["duration", "seed"]].drop_duplicates()
    assert runs.values.tolist() == [[5.0, 0], [5.0, 1]]
    assert json.loads((out / "sweep.json").read_text())["complete"] is False
