"""Each lesson scenario of issue 17 shows the effect it promises, in the Results tables of a
real (simulated) run, and its figure draws those numbers.

The scenarios are run directly here (well under a second each); the notebooks that teach
them are executed by tests/notebooks/. The expected behaviour comes from the MQTT 3.1.1
specification (statement ids in each test) and from Linux's TCP give-up
(net.ipv4.tcp_retries2 = 15: 924.6 s of retransmitting, mqttsim.netmodel.rto).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mqttsim import Scenario, run
from mqttsim.lab import (duplicates_and_losses, message_fates, notice_times, offline_fates,
                         outcomes_by_qos, publish_round_trips, retained_and_wills,
                         round_trips, time_to_notice)
from mqttsim.netmodel.rto import give_up_after

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"


def load(name: str) -> Scenario:
    return Scenario.load(SCENARIOS / f"{name}.toml")


@pytest.fixture(scope="module")
def duplicates():
    return run(load("duplicates"), seed=1)


@pytest.fixture(scope="module")
def half_open():
    return run(load("half-open"), seed=1)


@pytest.fixture(scope="module")
def offline():
    return run(load("offline-queue"), seed=1)


@pytest.fixture(scope="module")
def retained():
    return run(load("retained-and-wills"), seed=1)


def by_gid(ax, gid):
    return [a for a in ax.get_children() if a.get_gid() == gid]


# --- Question 1: why did I get a message twice? -------------------------------------------

def test_v311_MQTT_4_3_2_qos1_duplicates_after_each_reconnect_and_qos2_exactly_once(duplicates):
    summary = duplicates.summary()
    outages = len(load("duplicates").clients[0].link.up.outages)
    assert summary.loc[1, "duplicates"] >= 2 * outages  # several at every outage
    assert summary.loc[1, "lost"] == 0  # at least once: nothing lost
    assert summary.loc[2, ["duplicates", "lost"]].tolist() == [0, 0]  # exactly once
    assert summary.loc[0, "lost"] > 100 and summary.loc[0, "duplicates"] == 0  # at most once


def test_v311_MQTT_3_3_1_1_the_duplicates_are_resends_with_dup_set_of_acks_lost_in_an_outage(
        duplicates):
    out = duplicates.outcomes
    twice = out[out["outcome"] == "duplicate"]
    assert set(twice["publisher"]) == {"sensor-q1"} and set(twice["copies"]) == {2}
    # Each one was published in the last half second before an outage: its PUBLISH got
    # through, its PUBACK (a round trip later) ran into the outage.
    starts = [o.start for o in load("duplicates").clients[0].link.up.outages]
    for t in twice["t_pub"]:
        assert any(0 < start - t <= 0.5 for start in starts), t
    # The sensor sent them again with DUP = 1 on a new connection [MQTT-3.3.1-1] ...
    packets = duplicates.packets
    resent = packets[(packets["src"] == "sensor-q1") & (packets["type"] == "PUBLISH")
                     & packets["dup"].astype(bool) & packets["t_recv"].notna()]
    assert len(resent) >= len(twice)
    # ... but the broker does not pass DUP on to subscribers [MQTT-3.3.1-3]: the phone's
    # second copy looks exactly like a new message.
    received = duplicates.received
    assert not received.loc[received["topic"] == "sensor/q1", "dup"].astype(bool).any()


def test_without_a_persistent_session_nothing_is_resent_and_nothing_duplicated():
    summary = run(load("duplicates").with_(clean=True), seed=1).summary()
    assert summary["duplicates"].sum() == 0
    assert summary.loc[1, "lost"] > 0  # at least once only while the session lives


def test_the_duplicates_figures_show_and_label_the_few_duplicates(duplicates):
    summary = duplicates.summary()
    fig = duplicates_and_losses(duplicates)
    dup_ax, lost_ax = fig.axes
    assert [b.get_height() for b in by_gid(dup_ax, "duplicates")] == list(summary["duplicates"])
    assert [b.get_height() for b in by_gid(lost_ax, "lost")] == list(summary["lost"])
    assert [t.get_text() for t in dup_ax.texts] == [str(n) for n in summary["duplicates"]]
    # In the stacked bars, 13 of 1,041 is a sliver: it is named beside its bar.
    ax = outcomes_by_qos(duplicates).axes[0]
    labels = [a.get_text() for a in by_gid(ax, "outcome-label")]
    assert f"{summary.loc[1, 'duplicates']} duplicate" in labels


# --- Question 3: why does it take 15 minutes to notice the connection is dead? -----------

def test_v311_MQTT_3_1_2_24_keepalive_notices_in_seconds_tcp_give_up_in_a_quarter_hour(
        half_open):
    times = notice_times(half_open).set_index(["client", "side"])
    give_up = give_up_after(load("half-open").tcp.max_retransmits, 0.2, 120.0)
    assert give_up == pytest.approx(924.6, abs=0.1)
    # Keepalive 30: the broker closes after 1.5 x 30 s without a packet [MQTT-3.1.2-24].
    assert times.loc[("sensor-ka30", "broker"), "reason"] == "keepalive"
    assert times.loc[("display-ka30", "broker"), "seconds"] <= 45
    assert times.loc[("display-ka30", "client"), "reason"] == "pingresp_timeout"
    assert times.loc[("display-ka30", "broker"), "seconds"] < times.loc[
        ("display-ka30", "client"), "seconds"] <= 2 * 30
    # A client that keeps publishing sends no PINGREQ (keepalive counts what it *sends*,
    # [MQTT-3.1.2-23]): it learns only when its in-flight window is full and it falls quiet.
    busy = times.loc[("sensor-ka30", "client")]
    assert busy["reason"] == "pingresp_timeout"
    assert busy["seconds"] > 4 * times.loc[("sensor-ka30", "broker"), "seconds"]
    # Keepalive 0: only TCP's retransmission give-up, by the side that has data to send.
    for client, side in (("sensor-ka0", "client"), ("display-ka0", "broker")):
        assert times.loc[(client, side), "reason"] == "tcp_timeout"
        assert give_up <= times.loc[(client, side), "seconds"] <= give_up + 120
    # The side with nothing to send never learns: the connection stays half-open.
    assert times.loc[("sensor-ka0", "broker"), "reason"] == "never"
    assert times.loc[("display-ka0", "client"), "reason"] == "never"


def test_a_smaller_tcp_retries2_gives_up_sooner():
    times = notice_times(run(load("half-open").with_(**{"tcp.max_retransmits": 8}), seed=1))
    times = times.set_index(["client", "side"])
    assert times.loc[("sensor-ka0", "client"), "reason"] == "tcp_timeout"
    assert times.loc[("sensor-ka0", "client"), "seconds"] < give_up_after(8, 0.2, 120.0) + 60


def test_the_notice_figure_has_a_bar_per_side_and_hatches_the_never(half_open):
    ax = time_to_notice(half_open, tcp_give_up=924.6).axes[0]
    assert len(by_gid(ax, "never-broker")) == 1 and len(by_gid(ax, "never-client")) == 1
    widths = sorted(b.get_width() for b in by_gid(ax, "noticed-broker"))
    assert widths[0] == pytest.approx(40.05) and widths[-1] > 924.6
    assert any("tcp_timeout" in t.get_text() for t in ax.texts)


# --- Question 4: where did my messages go while the device was offline? ------------------

def test_v311_MQTT_3_1_2_4_a_persistent_session_queues_up_to_max_queued_and_counts_the_rest(
        offline):
    sc = load("offline-queue")
    away = (30.0, 90.0)  # the app is killed at 30 s and restarts at 90 s; the message of
    # 90.0 s is still one it missed: its connection is up again only 0.2 s later.
    published = offline.published
    during = published[(published["t_pub"] >= away[0]) & (published["t_pub"] <= away[1])]
    q1_away, q0_away = (int((during["qos"] == q).sum()) for q in (1, 0))
    drops = offline.drops.groupby(["client", "reason"]).size()
    assert drops[("phone-persistent", "queue_full")] == q1_away - sc.broker.max_queued
    assert drops[("phone-persistent", "qos0_offline")] == q0_away  # QoS 0 not queued
    assert "phone-clean" not in set(offline.drops["client"])  # no session: nothing to drop
    fates = message_fates(offline)
    kept = fates[(fates["subscriber"] == "phone-persistent") & (fates["fate"] == "queued")]
    assert len(kept) == sc.broker.max_queued
    assert (offline.outcomes.loc[kept.index, "t_first_delivery"] >= away[1]).all()
    clean = fates[fates["subscriber"] == "phone-clean"]
    assert (clean["fate"] == "no_session").sum() == q1_away + q0_away


def test_a_longer_queue_keeps_everything_the_persistent_phone_missed():
    res = run(load("offline-queue").with_(**{"broker.max_queued": 100}), seed=1)
    assert "queue_full" not in set(res.drops["reason"])
    assert res.summary().loc[1, "lost"] == 61  # the clean phone's QoS 1 messages only


def test_the_fates_figure_counts_each_fate_in_its_legend(offline):
    ax = offline_fates(offline).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "dropped: queue full (41)" in legend
    assert "kept while away, delivered on return (20)" in legend


# --- Question 6: retained messages and wills ----------------------------------------------

def test_v311_MQTT_3_3_1_6_a_late_subscriber_gets_the_retained_value_at_once(retained):
    got = retained.received
    dash = got[got["subscriber"] == "dashboard"]
    first = dash.groupby("topic")["t"].min()
    retained_copy = dash.groupby("topic")["retain"].first()
    for sensor in ("sensor-retained", "sensor-polite"):
        assert first[f"sensors/{sensor}"] < 70.5 and retained_copy[f"sensors/{sensor}"]
    assert first["sensors/sensor-plain"] >= 95.0  # waits for the next reading


def test_v311_MQTT_3_1_2_8_wills_come_one_and_a_half_keepalives_after_the_last_packet(
        retained):
    got = retained.received
    wills = got[(got["subscriber"] == "dashboard") & (got["payload"] == b"offline")]
    at = dict(zip(wills["topic"], wills["t"]))
    assert set(at) == {"status/sensor-retained", "status/sensor-plain"}  # not the polite one
    assert 120 < at["status/sensor-retained"] <= 120 + 1.5 * 10 + 0.5
    assert 120 + 30 < at["status/sensor-plain"] <= 120 + 1.5 * 60 + 0.5
    # [MQTT-3.1.2-10]: the polite sensor's DISCONNECT discarded its will.
    assert not (got["topic"] == "status/sensor-polite").any()
    late = got[got["subscriber"] == "late-dashboard"]
    assert set(late.loc[late["retain"].astype(bool), "topic"]) == {
        "status/sensor-retained", "status/sensor-plain", "sensors/sensor-retained",
        "sensors/sensor-polite"}


def test_the_retained_figure_marks_retained_copies_and_wills(retained):
    ax = retained_and_wills(retained).axes[0]

    def points(gid):
        return sum(len(c.get_offsets()) for c in by_gid(ax, gid))

    assert points("will-dashboard") == 2 and points("will-late-dashboard") == 2
    assert points("retained-dashboard") == 2 and points("retained-late-dashboard") == 2
    assert points("live-dashboard") == 3


# --- Question 7: the simulator's stand-in for your own client -----------------------------

def test_own_client_round_trips_are_a_round_trip_and_some_a_retransmission_more():
    res = run(load("own-client"), seed=1)
    trips = publish_round_trips(res, "device")
    waited = trips["t_acked"] - trips["t_sent"]
    assert len(trips) == 20 and waited.notna().all()  # QoS 1 over TCP: nothing lost
    assert waited.min() >= 0.3 - 1e-9  # 150 ms each way
    assert (waited > 0.3 + 0.2).any()  # a retransmission (at least Linux's 200 ms RTO)
    ax = round_trips(trips, rtt=0.3).axes[0]
    assert len(by_gid(ax, "slow")) == int((waited > 1.5 * 0.3).sum()) > 0
    frame = pd.DataFrame({"t_sent": [0.0], "t_acked": [float("nan")]})
    assert len(by_gid(round_trips(frame).axes[0], "waiting")) == 1
