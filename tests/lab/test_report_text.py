"""The words and numbers of a report: sentences written from known numbers, numbers written
for reading, intervals clipped to what a quantity can be."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mqttsim import Scenario, run
from mqttsim.lab import against_parameter, report
from mqttsim.lab.report_format import format_spread, format_value
from mqttsim.lab.report_text import (bytes_sentences, connection_sentences,
                                     latency_sentences, outcome_sentences,
                                     sweep_metric_sentences)
from mqttsim.lab.stats import ci_table, clip_interval, mean_ci


def summary(rows: dict[int, dict]) -> pd.DataFrame:
    frame = pd.DataFrame([{"qos": q, **r} for q, r in rows.items()]).set_index("qos")
    frame["delivery_ratio"] = (frame["delivered"] + frame["duplicates"]) / frame["expected"]
    return frame


# --- Sentences from known numbers ----------------------------------------------------------

def test_a_run_with_duplicates_and_losses_says_so_in_numbers() -> None:
    table = summary({1: dict(sent=100, expected=100, delivered=95, duplicates=3, lost=2),
                     2: dict(sent=100, expected=100, delivered=100, duplicates=0, lost=0)})
    said = outcome_sentences(table, copies={1: 2})
    assert said == ["QoS 1 delivered 98 of 100 messages, 3 of them twice; 2 were lost.",
                    "QoS 2 delivered all 100 messages exactly once.",
                    "Only QoS 1 lost messages; QoS 1 delivered duplicates, QoS 2 none."]
    more = outcome_sentences(table, copies={1: 3}, one_subscriber=False)
    assert more[0] == ("QoS 1 delivered 98 of 100 deliveries, 3 of them more than once; "
                       "2 were lost.")


def test_a_run_where_nothing_went_wrong_says_nothing_was_tested() -> None:
    table = summary({0: dict(sent=5, expected=5, delivered=5, duplicates=0, lost=0),
                     1: dict(sent=1, expected=1, delivered=1, duplicates=0, lost=0)})
    said = outcome_sentences(table)
    assert said[:2] == ["QoS 0 delivered all 5 messages exactly once.",
                        "QoS 1 delivered its one message exactly once."]
    assert said[2].startswith("Nothing was lost or duplicated")
    assert outcome_sentences(pd.DataFrame())[0].startswith("No message was published")


def test_latency_sentences_name_median_tail_and_the_outage_behind_it() -> None:
    table = summary({0: dict(sent=10, expected=10, delivered=6, duplicates=0, lost=4),
                     1: dict(sent=10, expected=10, delivered=10, duplicates=0, lost=0)})
    table["p50_latency"] = [0.04, 0.04]
    table["p99_latency"] = [0.041, 30.9]
    said = latency_sentences(table, outages=[(60.0, 90.0)], curves_alike=[[1, 2]])
    assert said[0] == "Half of the messages arrived within 40 ms at every QoS."
    assert said[1] == ("The slowest 1 % took much longer: 30.9 s at QoS 1 (772 times its "
                       "median), about as long as the longest link outage (30 s): those "
                       "messages waited for the link to come back.")
    assert said[2] == ("Each curve levels off at the share of messages that arrived at all: "
                       "60 % for QoS 0 and 100 % for QoS 1.")
    assert "QoS 1 and QoS 2 curves coincide" in said[3]


def test_connection_and_bytes_sentences_count_what_the_tables_hold() -> None:
    connections = pd.DataFrame({
        "client": ["a", "b", "a", "b"], "reason": ["keepalive", "keepalive", None, None],
        "side": ["broker", "broker", None, None],
        "detail": ["nothing received for 1.5 x 10 s keepalive"] * 2 + [None, None],
        "session_present": [False, False, True, False]})
    assert connection_sentences(connections) == [
        "2 connections of 4 ended before the run did: 2 keepalive (nothing received for "
        "1.5 x 10 s keepalive; noticed by the broker).",
        "The clients reconnected 2 times; 1 of those reconnects found their session still "
        "on the broker."]
    assert connection_sentences(connections[2:]) == [
        "2 clients connected once each and stayed connected for the whole run."]
    data = pd.DataFrame({"copies": [10, 10], "mqtt_per_copy": [72.5, 92.7],
                         "wire_per_copy": [174.0, 386.0]}, index=pd.Index([0, 2], name="qos"))
    assert bytes_sentences(data) == [
        "Each delivered copy cost 72.5 bytes at QoS 0 and 92.7 at QoS 2 in MQTT packets; "
        "with the TCP/IP segments that carried them, 174 and 386 bytes.",
        "On the wire, QoS 2 costs 2.2 times as much as QoS 0 per copy: the acknowledgements "
        "are packets too."]


def test_sweep_sentences_follow_the_numbers_and_group_equal_lines() -> None:
    aggregate = pd.DataFrame({"keepalive": [5, 30, 5, 30, 5, 30], "qos": [0, 0, 1, 1, 2, 2],
                              "delivery_ratio": [1.0, 0.66, 1.0, 1.0, 1.0, 1.0]})
    said = sweep_metric_sentences(aggregate, "keepalive", "delivery_ratio")
    assert said[0] == ("The delivery ratio falls from 100 % to 66 % at QoS 0 and stays at "
                       "100 % at QoS 1 and QoS 2 as keepalive goes from 5 s to 30 s.")
    assert said[1].startswith("QoS 1 and QoS 2 give the same numbers")


def test_a_real_run_with_duplicates_gets_the_sentence_in_its_report(tmp_path) -> None:
    """MQTT 3.1 resending on a timer over a slow lossy link: duplicates at QoS 1."""
    scenario = Scenario.from_dict({
        "name": "retrying", "duration": 30, "link": {"latency": 0.3, "loss": 0.2},
        "clients": [{"name": "sub", "subscribe": [{"topic": "t", "qos": 1}]},
                    {"name": "pub", "version": 3, "retry_policy": "timer",
                     "retry_interval": 0.5,
                     "publish": {"topic": "t", "qos": 1, "count": 20, "interval": 0.5,
                                 "start": 1.0}}]})
    res = run(scenario, seed=1)
    row = res.summary().loc[1]
    assert row["duplicates"] > 1
    text = report(res, tmp_path / "r.html").read_text(encoding="utf-8")
    arrived = int(row["delivered"] + row["duplicates"])
    assert re.search(f"QoS 1 delivered {arrived} of {int(row['expected'])} messages, "
                     f"{int(row['duplicates'])} of them (twice|more than once)", text)
    assert "QoS 1 delivered duplicates." in text


# --- Numbers for reading -------------------------------------------------------------------

@pytest.mark.parametrize("value, kind, shown", [
    (10670.3, "number", "10,670"), (1234, "count", "1,234"), (98.5, "count", "98.5"),
    (0.6667, "share", "66.7 %"), (1.0, "share", "100 %"), (0.9996, "share", "> 99.9 %"),
    (0.0002, "share", "< 0.1 %"), (0.04, "seconds", "40 ms"), (0.0004, "seconds", "0.4 ms"),
    (30.94, "seconds", "30.9 s"), (1250.0, "seconds", "1,250 s"), (72.5, "bytes", "72.5 B"),
    (7585.0, "bytes", "7,585 B"), (0.000123, "number", "0.000123"), (float("nan"), "count", "–"),
    (None, "seconds", "–")])
def test_numbers_are_written_for_reading(value, kind, shown) -> None:
    assert format_value(value, kind) == shown


def test_no_e_notation_at_any_magnitude() -> None:
    for exponent in range(-6, 10):
        for kind in ("number", "seconds", "bytes", "count"):
            assert "e" not in format_value(1.2345 * 10 ** exponent, kind).replace(" ", "")


def test_a_spread_is_shown_only_where_there_is_one_and_inside_its_bounds() -> None:
    assert format_spread(0.06, 0.06, 0.06, "seconds", (0, None)) == "60 ms"  # no "± 0"
    assert format_spread(0.06, float("nan"), float("nan"), "seconds") == "60 ms"  # one seed
    assert format_spread(3.97, -22.0, 29.9, "seconds", (0, None)) == \
        "3.97 s <span class='spread'>(0 s–29.9 s)</span>"
    assert format_spread(0.98, 0.9, 1.06, "share", (0, 1)) == \
        "98 % <span class='spread'>(90 %–100 %)</span>"


# --- Intervals clipped to what is possible --------------------------------------------------

def test_intervals_are_clipped_to_the_quantitys_range() -> None:
    mean, low, high = mean_ci([0.0, 0.2])  # t(0.95, 1) = 12.7: the interval is huge
    assert low < 0 < 1 < high
    assert clip_interval(low, high, (0.0, 1.0)) == (0.0, 1.0)
    lows, highs = clip_interval([-1.0, 0.5], [0.5, 2.0], (0.0, None))
    assert list(lows) == [0.0, 0.5] and list(highs) == [0.5, 2.0]
    table = pd.DataFrame({"x": [1, 1], "latency": [0.01, 5.0]})
    row = ci_table(table, ["x"], "latency", bounds=(0.0, None)).iloc[0]
    assert row["low"] == 0.0 and row["high"] > 5.0


def test_sweep_bands_never_leave_what_the_metric_can_be() -> None:
    rows = [{"link.loss": loss, "seed": seed, "qos": 1, "p99_latency": latency,
             "delivery_ratio": ratio}
            for loss, pairs in ((0.0, [(0.04, 1.0), (0.05, 1.0)]),
                                (0.2, [(0.05, 1.0), (30.0, 0.5)]))
            for seed, (latency, ratio) in enumerate(pairs)]
    table = pd.DataFrame(rows)
    for metric, low, high in (("p99_latency", 0.0, np.inf), ("delivery_ratio", 0.0, 1.0)):
        ax = against_parameter(table, "link.loss", metric).axes[0]
        (band,) = ax.collections
        y = band.get_paths()[0].vertices[:, 1]
        assert y.min() >= low and y.max() <= high, metric
        assert y.min() == low or y.max() == high  # without clipping it would go beyond
