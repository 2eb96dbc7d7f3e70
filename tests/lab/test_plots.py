"""The lab's figures, drawn from real runs, checked by what a student would read off them:
bar heights equal to the table's counts, one bar per connection, one arrow per packet with
mosquitto's labels, axis labels with units, and QoS 1 in the same blue everywhere."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba

from mqttsim import Scenario, run
from mqttsim.lab import (QOS_COLORS, against_parameter, bytes_by_qos, bytes_per_message,
                         connection_timeline, ladder, latency_cdf, latency_over_time,
                         mean_ci, outcomes_by_qos, t_quantile, topology, topology_graph,
                         wire_bytes)
from mqttsim.lab.style import OUTCOMES, axis_label
from mqttsim.lab.topology import path_edges

SCENARIOS = "data/scenarios"
BLUE = to_rgba(QOS_COLORS[1])


def story(clients: list[dict], duration: float = 30.0, **top) -> Scenario:
    return Scenario.from_dict({"name": "story", "duration": duration, "clients": clients,
                               **top})


@pytest.fixture(scope="module")
def intermittent():
    """30-35 s outages against a 10 s keepalive; meters at QoS 0, 1 and 2."""
    return run(Scenario.load(f"{SCENARIOS}/intermittent.toml"), seed=1)


@pytest.fixture(scope="module")
def sensor():
    """mosquitto_sub / mosquitto_pub -q 1 -m 12: one message, every packet on its own."""
    return run(Scenario.load(f"{SCENARIOS}/seed-sensor.toml").with_(qos=1), seed=1)


@pytest.fixture(scope="module")
def retrying():
    """MQTT 3.1 resending unacknowledged PUBLISHes on a timer over a slow lossy link:
    TCP retransmits and loses segments, and timer resends become duplicate deliveries."""
    res = run(story([{"name": "sub", "subscribe": [{"topic": "t", "qos": 1}]},
                     {"name": "pub", "version": 3, "retry_policy": "timer",
                      "retry_interval": 0.5,
                      "publish": {"topic": "t", "qos": 1, "count": 20, "interval": 0.5,
                                  "start": 1.0}}],
                    link={"latency": 0.3, "loss": 0.2}), seed=1)
    assert res.summary().loc[1, "duplicates"] > 0  # what the story is for
    return res


def by_gid(ax, gid: str) -> list:
    return [a for a in ax.findobj() if a.get_gid() == gid]


def texts(ax, gid: str) -> list[str]:
    return [t.get_text() for t in by_gid(ax, gid)]


# --- Outcomes --------------------------------------------------------------------------

def test_outcome_bars_are_the_summary_counts_stacked_per_qos(intermittent):
    ax = outcomes_by_qos(intermittent).axes[0]
    summary = intermittent.summary()
    columns = {"delivered": "delivered", "duplicate": "duplicates", "lost": "lost"}
    assert len(ax.patches) == 3 * len(summary)  # three outcomes for each of QoS 0, 1, 2
    for outcome in OUTCOMES:
        bars = by_gid(ax, outcome)
        assert [b.get_height() for b in bars] == list(summary[columns[outcome]])
    lost = by_gid(ax, "lost")
    assert [b.get_y() for b in lost] == list(summary["delivered"] + summary["duplicates"])
    assert lost[0].get_height() == 79  # QoS 0 published into a dead link
    assert [t.get_text() for t in ax.get_xticklabels()] == ["QoS 0", "QoS 1", "QoS 2"]
    assert "(messages × subscribers)" in ax.get_ylabel()
    assert "intermittent" in ax.get_title() and "seed 1" in ax.get_title()


def test_outcome_bars_in_percent_add_up_to_100_and_show_duplicates(retrying):
    summary = retrying.summary()
    ax = outcomes_by_qos(retrying, percent=True).axes[0]
    heights = {o: [b.get_height() for b in by_gid(ax, o)] for o in OUTCOMES}
    assert sum(h[0] for h in heights.values()) == pytest.approx(100)
    assert heights["duplicate"][0] == pytest.approx(
        100 * summary.loc[1, "duplicates"] / summary.loc[1, "expected"])
    assert ax.get_ylabel().endswith("(%)")
    # The same bars from the summary table instead of the Results.
    again = outcomes_by_qos(summary).axes[0]
    assert [b.get_height() for b in by_gid(again, "duplicate")] == [summary.loc[1, "duplicates"]]


def test_outcome_bars_of_a_run_where_nothing_was_expected_say_so():
    res = run(story([{"name": "lonely", "publish": {"topic": "t", "count": 2}}], duration=5),
              seed=1)
    ax = outcomes_by_qos(res).axes[0]
    assert not ax.patches
    assert any("no expected deliveries" in t.get_text() for t in ax.texts)


def test_a_table_without_the_outcome_columns_is_refused_by_name(intermittent):
    with pytest.raises(ValueError, match="qos_pub"):
        outcomes_by_qos(intermittent.packets)
    with pytest.raises(TypeError, match="Results"):
        latency_cdf([1, 2, 3])


# --- Against a parameter ----------------------------------------------------------------

def test_t_quantiles_match_the_printed_tables():
    for df, expected in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045),
                         (120, 1.980)]:
        assert t_quantile(0.95, df) == pytest.approx(expected, abs=5e-4)
    assert t_quantile(0.99, 5) == pytest.approx(4.032, abs=5e-4)
    assert t_quantile(0.95, 100_000) == pytest.approx(1.95996, abs=1e-4)
    mean, low, high = mean_ci([1, 2, 3])
    assert (mean, high - mean) == pytest.approx((2.0, 4.303 * 1 / math.sqrt(3)), abs=1e-3)
    assert math.isnan(mean_ci([5])[1])


def test_against_parameter_draws_means_and_t_bands_per_qos_and_metric():
    rows = []
    for loss, base in ((0.0, 0.0), (0.1, 10.0)):
        for seed, noise in zip((1, 2, 3), (-1.0, 0.0, 1.0)):
            for qos in (0, 1):
                rows.append({"link.loss": loss, "seed": seed, "qos": qos,
                             "lost": base + noise if qos == 0 else 0.0,
                             "duplicates": base / 2 + noise if qos == 1 else 0.0})
    table = pd.DataFrame(rows)
    ax = against_parameter(table, "link.loss").axes[0]
    assert len(ax.lines) == 4  # (QoS 0, QoS 1) x (duplicates, lost)
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"QoS 0: duplicates", "QoS 0: lost", "QoS 1: duplicates",
                          "QoS 1: lost"}
    assert list(lines["QoS 0: lost"].get_ydata()) == [0.0, 10.0]
    assert list(lines["QoS 1: duplicates"].get_ydata()) == [0.0, 5.0]
    assert lines["QoS 1: duplicates"].get_linestyle() != lines["QoS 1: lost"].get_linestyle()
    assert to_rgba(lines["QoS 1: lost"].get_color()) == BLUE
    half = 4.303 / math.sqrt(3)  # s = 1 over three seeds, t(0.95, 2) = 4.303
    band = ax.collections[1].get_paths()[0].vertices  # QoS 0, lost
    at = band[np.isclose(band[:, 0], 0.1), 1]
    assert at.min() == pytest.approx(10 - half, abs=1e-3)
    assert at.max() == pytest.approx(10 + half, abs=1e-3)
    assert ax.get_xlabel() == "link.loss (probability)"
    assert ax.get_ylabel() == "duplicates, lost (messages)"
    assert "3 seeds" in ax.get_title() and "95%" in ax.get_title()


def test_against_parameter_on_a_sweep_of_real_runs():
    base = story([{"name": "sub", "subscribe": [{"topic": "t", "qos": 1}]},
                  {"name": "pub", "publish": {"topic": "t", "count": 10, "interval": 0.5}}],
                 duration=15, qos=1)
    rows = []
    for latency in (0.01, 0.2):
        for seed in (1, 2):
            summary = run(base.with_(**{"link.latency": latency}), seed=seed).summary()
            for qos, row in summary.iterrows():
                rows.append({"link.latency": latency, "seed": seed, "qos": qos, **row})
    table = pd.DataFrame(rows)
    ax = against_parameter(table, "link.latency", "p50_latency").axes[0]
    (line,) = ax.lines
    assert line.get_label() == "QoS 1" and to_rgba(line.get_color()) == BLUE
    # Same seed, same scenario -> identical runs: the mean is the runs' value.
    assert list(line.get_ydata()) == pytest.approx(list(
        table.groupby("link.latency")["p50_latency"].mean()))
    assert line.get_ydata()[1] > 2 * 0.2  # publish and forward: two one-way trips at least
    assert ax.get_xlabel() == "link.latency (s)" and ax.get_ylabel() == "p50 latency (s)"


def test_against_parameter_refuses_tables_it_would_misdraw():
    table = pd.DataFrame({"link.loss": [0, 0, 0.1, 0.1], "keepalive": [10, 60, 10, 60],
                          "seed": 1, "qos": 1, "lost": [1, 2, 3, 4],
                          "p99_latency": [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(ValueError, match="keepalive"):  # a second swept parameter
        against_parameter(table, "link.loss", "lost")
    with pytest.raises(ValueError, match="different units"):
        against_parameter(table[table.keepalive == 10], "link.loss", ("lost", "p99_latency"))
    with pytest.raises(ValueError, match="'link.latency'"):
        against_parameter(table, "link.latency", "lost")


# --- Latency -----------------------------------------------------------------------------

def test_latency_cdf_rises_to_each_qos_delivery_ratio(intermittent):
    ax = latency_cdf(intermittent).axes[0]
    summary = intermittent.summary()
    assert [line.get_label().split(":")[0] for line in ax.lines] == ["QoS 0", "QoS 1", "QoS 2"]
    for line, (qos, row) in zip(ax.lines, summary.iterrows()):
        assert line.get_ydata()[-1] == pytest.approx(row["delivery_ratio"])
        assert to_rgba(line.get_color()) == to_rgba(QOS_COLORS[qos])
    assert ax.lines[0].get_ydata()[-1] < 0.7  # QoS 0 never reaches everyone
    assert ax.get_xlabel() == "latency (s)" and "fraction" in ax.get_ylabel()
    assert ax.get_xscale() == "log"  # 40 ms next to 40 s


def test_latency_over_time_plots_each_delivery_marks_losses_and_shades_outages(intermittent):
    ax = latency_over_time(intermittent).axes[0]
    expected = intermittent.outcomes[intermittent.outcomes["expected"]]
    for qos in (0, 1, 2):
        (dots,) = by_gid(ax, f"delivered-qos{qos}")
        mine = expected[expected["qos_pub"] == qos]
        assert len(dots.get_offsets()) == mine["latency"].notna().sum()
    (crosses,) = by_gid(ax, "lost-qos0")
    assert len(crosses.get_offsets()) == 79
    assert not by_gid(ax, "lost-qos1")
    spans = sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax.patches)
    assert spans == [(60.0, 90.0), (150.0, 185.0)]
    assert ax.get_xlabel() == "publish time (s)" and ax.get_ylabel() == "latency (s)"


def test_latency_over_time_draws_a_constant_latency_flat_without_an_offset_label():
    """05-sessions' clean session: every delivery takes 20 ms up to float rounding, which
    matplotlib zoomed into with a "1e-14 + 2e-2" offset, as if the latency varied."""
    away = story([{"name": "laptop", "subscribe": [{"topic": "chat/#", "qos": 1}],
                   "crashes": [{"at": 20.0, "down": 30.0}]},
                  {"name": "friend", "publish": {"topic": "chat/friend", "interval": 5.0,
                                                 "start": 2.0, "stop": 72.0, "qos": 1}}],
                 duration=80.0, link={"latency": 0.01})
    res = run(away, seed=1)
    latency = res.outcomes["latency"].dropna().astype(float)
    assert 0 < latency.max() - latency.min() < 1e-9  # the rounding noise is there
    fig = latency_over_time(res)
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    assert ax.yaxis.get_offset_text().get_text() == ""
    low, high = ax.get_ylim()
    assert low <= 0 < latency.max() < high  # seen from zero (and the strip for the losses)
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(set(labels)) == len(labels) >= 3, labels


# --- Bytes -------------------------------------------------------------------------------

def test_bytes_per_message_counts_mqtt_bytes_and_the_segments_that_carried_them(sensor):
    # QoS 1, one copy: PUBLISH 14 B to the broker and 14 B on to sub, a 4 B PUBACK each way;
    # every one in its own TCP segment with a 40-byte TCP/IP header and the 12-byte
    # timestamp option Linux puts on every segment.
    ax = bytes_per_message(sensor).axes[0]
    (mqtt,), (wire,) = by_gid(ax, "mqtt"), by_gid(ax, "wire")
    assert mqtt.get_height() == 2 * 14 + 2 * 4 == sensor.summary().loc[1, "bytes_per_copy"]
    assert wire.get_height() == 2 * (14 + 52) + 2 * (4 + 52)
    assert ax.get_ylabel() == "bytes per delivered copy (bytes)"
    assert to_rgba(mqtt.get_facecolor()[:3]) == BLUE[:3] + (1.0,)


def test_bytes_per_message_over_datagrams_charges_the_udp_header():
    res = run(Scenario.load(f"{SCENARIOS}/seed-sensor.toml").with_(qos=1,
                                                                   transport="datagram"),
              seed=1)
    table = bytes_by_qos(res)
    assert table.loc[1, "wire_per_copy"] == 2 * (14 + 28) + 2 * (4 + 28)
    ax = bytes_per_message(res).axes[0]
    assert "UDP/IP" in [t.get_text() for t in ax.get_legend().get_texts()][1]


def test_wire_bytes_share_out_every_payload_segment_retransmissions_included(intermittent,
                                                                              retrying):
    for res in (intermittent, retrying):
        packets = wire_bytes(res)
        s = res.segments
        carrying = s[s["kind"].isin(["data", "datagram"]) & (s["payload_bytes"] > 0)]
        assert packets["wire_bytes"].sum() == pytest.approx(carrying["bytes"].sum())
        # every packet that went out did so in at least one segment, with its header; the
        # others were still in a send buffer (TCP's Loss state sends nothing new into a dead
        # link) when their connection broke
        sent = packets["wire_bytes"] > 0
        assert (packets[sent]["wire_bytes"] > packets[sent]["bytes"]).all()
        broke = set(res.connections[res.connections["t_down"].notna()]["conn"])
        assert set(packets[~sent]["conn"]) <= broke
    table = bytes_by_qos(intermittent)
    summary = intermittent.summary()
    assert list(table["mqtt_per_copy"]) == pytest.approx(list(summary["bytes_per_copy"]))
    # QoS 2's four-packet handshake costs more TCP/IP than QoS 0's single PUBLISH.
    assert table.loc[2, "wire_per_copy"] - table.loc[2, "mqtt_per_copy"] > \
        table.loc[0, "wire_per_copy"] - table.loc[0, "mqtt_per_copy"]


# --- Connection timeline -----------------------------------------------------------------

def test_timeline_has_a_bar_per_connection_and_each_end_marked_with_its_reason(intermittent):
    ax = connection_timeline(intermittent).axes[0]
    conns = intermittent.connections
    bars = by_gid(ax, "connection")
    assert len(bars) == len(conns) == 10
    spans = sorted((round(b.get_x(), 6), round(b.get_x() + b.get_width(), 6)) for b in bars)
    ends = conns["t_down"].fillna(intermittent.scenario.duration)
    assert spans == sorted(zip(conns["t_up"].round(6), ends.round(6)))
    assert len(by_gid(ax, "end:keepalive")) == (conns["reason"] == "keepalive").sum() == 6
    labels = texts(ax, "reason-label")
    # After the first outage each client's backed-off retransmission reaches the closed
    # broker end first (RST); after the second, two give up waiting for PINGRESP and the
    # broker's retransmitted FIN reaches the third.
    assert labels.count("keepalive (client: pingresp_timeout)") == 2
    assert labels.count("keepalive (client: reset)") == 3
    assert labels.count("keepalive (client: closed_by_peer)") == 1
    assert len(by_gid(ax, "reconnect")) == 6
    assert len(by_gid(ax, "outage")) == 3 * 2  # three meters, two outages each
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"keepalive", "link outage", "reconnect, session resumed"} <= set(legend)
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["meter-q0", "meter-q1", "meter-q2", "monitor"]
    q1_bar = next(b for b in bars if b.get_y() < 1 < b.get_y() + b.get_height())
    assert to_rgba(q1_bar.get_facecolor()) == BLUE
    assert ax.get_xlabel() == "time (s)"


def test_timeline_reason_labels_never_overlap():
    """Two crashes of one client 4 s apart on a 300 s axis: the two "reset" labels would
    cover each other; the later one gives way (its marker and the legend remain)."""
    res = run(story([{"name": "sub", "subscribe": "t",
                      "crashes": [{"at": 100.0, "down": 1.0}, {"at": 104.0, "down": 1.0}]},
                     {"name": "pub", "publish": {"topic": "t", "interval": 10.0}}],
                    duration=300.0), seed=1)
    fig = connection_timeline(res)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    labels = by_gid(ax, "reason-label")
    assert len(labels) >= 2 and len(by_gid(ax, "end:" + labels[0].get_text().split()[0])) >= 2
    renderer = canvas.get_renderer()
    drawn = [t for t in labels if getattr(t, "drawn", True)]
    boxes = [t.get_window_extent(renderer) for t in drawn]
    assert drawn and drawn[0] is labels[0]
    for i, box in enumerate(boxes):
        for other in boxes[i + 1:]:
            assert not box.overlaps(other), [t.get_text() for t in drawn]


def test_timeline_shows_takeover_and_crash_and_picks_clients():
    res = run(story([{"name": "a", "client_id": "same", "subscribe": ["x"],
                      "crashes": [{"at": 3, "down": 2}]},
                     {"name": "b", "client_id": "same", "connect_at": 8.0}], duration=12),
              seed=1)
    ax = connection_timeline(res).axes[0]
    assert len(by_gid(ax, "connection")) == len(res.connections)
    assert len(by_gid(ax, "end:client_crash")) == 1
    assert len(by_gid(ax, "end:takeover")) == (res.connections["reason"] == "takeover").sum()
    (down,) = by_gid(ax, "down")  # a's crash, on a's row only
    assert (down.get_x(), down.get_width()) == (3, 2)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"takeover", "client_crash", "client or broker not running"} <= set(legend)
    only_b = connection_timeline(res, clients=["b"]).axes[0]
    assert len(by_gid(only_b, "connection")) == (res.connections["client"] == "b").sum()
    with pytest.raises(ValueError, match="'c'.*'a', 'b'"):
        connection_timeline(res, clients=["c"])


# --- Ladder ------------------------------------------------------------------------------

def arrow_start(arrow) -> tuple[float, float]:
    """(x, y) where an arrow leaves its sender's lifeline (x: 0 client, 1 broker)."""
    return tuple(arrow.get_path().vertices[0])


def test_ladder_of_a_qos1_publish_has_one_labelled_arrow_per_packet(sensor):
    ax = ladder(sensor, "pub").axes[0]
    arrows = by_gid(ax, "mqtt")
    assert len(arrows) == 5
    assert texts(ax, "mqtt-label") == ["CONNECT", "CONNACK", "PUBLISH (d0, q1, m1)",
                                       "PUBACK (m1)", "DISCONNECT"]
    publish, puback = arrows[2], arrows[3]
    assert arrow_start(publish)[0] == 0.0  # sent by pub
    assert arrow_start(puback)[0] == 1.0  # sent by the broker
    assert arrow_start(puback)[1] > arrow_start(publish)[1]  # later: further down
    assert to_rgba(publish.get_edgecolor()) == BLUE
    assert texts(ax, "lifeline-name") == ["pub", "broker"]
    assert texts(ax, "gap")  # the idle second before DISCONNECT is shortened, and says so
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[0] == "1.002" and ticks[-1] == "2.000"  # real times, not display units
    assert ax.get_ylabel().startswith("time (s)")


def test_ladder_shows_the_dup_resends_after_a_reconnect(intermittent):
    conns = intermittent.connections
    back = conns[conns["client"] == "meter-q1"]["t_up"].iloc[1]  # the first reconnect
    start, end = back - 1.0, back + 1.5
    ax = ladder(intermittent, "meter-q1", start, end).axes[0]
    p = intermittent.packets
    window = p[(p["t"] >= start) & (p["t"] <= end)
               & ((p["src"] == "meter-q1") | (p["dst"] == "meter-q1"))]
    assert len(by_gid(ax, "mqtt")) + len(by_gid(ax, "mqtt-lost")) == len(window)
    labels = texts(ax, "mqtt-label")
    dups = [t for t in labels if "(d1," in t]
    assert len(dups) == window["dup"].sum() > 0
    assert all(t.endswith(" DUP") and t.startswith("PUBLISH") for t in dups)
    assert sum(t.startswith("PUBACK") for t in labels) == (window["type"] == "PUBACK").sum()
    assert any("session present" in t for t in texts(ax, "connection-label"))


def test_ladder_across_an_outage_crosses_out_what_never_arrived(intermittent):
    ax = ladder(intermittent, "meter-q2", 58, 76).axes[0]
    p, s = intermittent.packets, intermittent.segments
    mine = ((p["src"] == "meter-q2") | (p["dst"] == "meter-q2")) & p["t"].between(58, 76)
    assert len(by_gid(ax, "mqtt-lost")) == p[mine]["dropped"].sum() > 0
    assert len(by_gid(ax, "mqtt-lost-cross")) == p[mine]["dropped"].sum()
    assert all(t.endswith("never arrived") for t in texts(ax, "mqtt-lost-label"))
    segs = ((s["src"] == "meter-q2") | (s["dst"] == "meter-q2")) & s["t"].between(58, 76)
    assert len(by_gid(ax, "tcp-lost")) == s[segs]["dropped"].notna().sum()
    assert any("lost: outage" in t for t in texts(ax, "tcp-lost-label"))
    assert by_gid(ax, "outage")
    assert any(t.startswith("connection 3 ended: keepalive")
               for t in texts(ax, "connection-label"))


def test_ladder_draws_tcp_retransmissions_and_only_problems_by_default(retrying):
    s = retrying.segments
    pub = (s["src"] == "pub") | (s["dst"] == "pub")
    window = s[pub & s["t"].between(0, 6)]
    ax = ladder(retrying, "pub", 0, 6).axes[0]
    resent = window["retransmission"] & window["dropped"].isna()
    assert len(by_gid(ax, "tcp-retransmission")) == resent.sum() > 0
    assert len(by_gid(ax, "tcp-lost")) == window["dropped"].notna().sum() > 0
    assert not by_gid(ax, "tcp")  # healthy segments only with tcp="all"
    every = ladder(retrying, "pub", 0, 6, tcp="all").axes[0]
    assert sum(len(by_gid(every, g)) for g in ("tcp", "tcp-retransmission", "tcp-lost")) \
        == len(window)
    bare = ladder(retrying, "pub", 0, 6, tcp="none").axes[0]
    assert not by_gid(bare, "tcp-lost") and len(by_gid(bare, "mqtt")) == len(by_gid(ax, "mqtt"))


def test_ladder_without_a_window_stops_after_max_packets_and_says_so(intermittent):
    ax = ladder(intermittent, "meter-q1", max_packets=25).axes[0]
    assert len(by_gid(ax, "mqtt")) + len(by_gid(ax, "mqtt-lost")) == 25
    assert "first 25 packets" in ax.get_title() and "pass start/end" in ax.get_title()
    with pytest.raises(ValueError, match="no client 'nobody'"):
        ladder(intermittent, "nobody")
    with pytest.raises(ValueError, match="tcp must be one of"):
        ladder(intermittent, "meter-q1", tcp="some")


# --- Topology ----------------------------------------------------------------------------

def drawn_nodes(ax) -> int:
    return sum(len(c.get_offsets()) for gid in ("broker", "routers", "clients")
               for c in by_gid(ax, gid))


def test_topology_of_a_classroom_groups_the_hundred_students():
    classroom = Scenario.load(f"{SCENARIOS}/classroom.toml")
    graph = topology_graph(classroom)
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (103, 102)
    grouped = topology_graph(classroom, group=True)
    assert sorted(grouped.nodes) == ["ap", "broker", "student-1..100 (×100)", "teacher"]
    assert grouped.nodes["student-1..100 (×100)"]["count"] == 100
    ax = topology(classroom).axes[0]
    assert drawn_nodes(ax) == 4
    (links,) = by_gid(ax, "links")
    assert len(links.get_segments()) == 3
    assert sorted(texts(ax, "link-label")) == ["2 ms", "2 ms", "5 ms, 2 Mbit/s, queue 50"]
    assert "student-1..100 (×100)" in texts(ax, "node-label")
    full = topology(classroom, group=False).axes[0]
    assert drawn_nodes(full) == 103
    (links,) = by_gid(full, "links")
    assert len(links.get_segments()) == 102
    assert texts(full, "client-links-note") == ["every client link: 2 ms"]
    (students,) = [c for c in by_gid(full, "clients")]
    assert sum(tuple(fc) == BLUE for fc in students.get_facecolors()) == 100
    assert path_edges(classroom, "student-7") == [("student-7", "ap"), ("ap", "broker")]


def test_topology_labels_links_and_shows_their_utilisation():
    res = run(story([{"name": "cam", "attach": "gw",
                      "publish": {"topic": "v", "qos": 1, "interval": 0.1, "size": 1000}},
                     {"name": "viewer", "subscribe": ["v"]}],
                    duration=5, routers=["gw"],
                    links=[{"a": "gw", "b": "broker", "bandwidth": 200_000, "latency": 0.01}],
                    link={"latency": 0.001, "outages": [[2.0, 2.5]]}), seed=1)
    ax = topology(res, utilisation=True).axes[0]
    assert drawn_nodes(ax) == 4
    labels = texts(ax, "link-label")
    uplink = next(t for t in labels if "200 kbit/s" in t)
    links = res.links.set_index("link")["utilisation"]
    assert f"↑ {links['gw->broker'] * 100:.3g} %" in uplink
    assert links["gw->broker"] > 0.3  # 80 kbit/s of payload on a 200 kbit/s link
    assert any("down 2-2.5 s" in t for t in labels)
    colorbar = ax.figure.axes[1]
    assert colorbar.get_ylabel() == "link utilisation, busier direction (%)"
    with pytest.raises(ValueError, match="utilisation=True needs a Results"):
        topology(res.scenario, utilisation=True)


# --- One colour per QoS ------------------------------------------------------------------

def test_qos_1_is_the_same_blue_in_every_figure(intermittent, sensor):
    seen = {}
    ax = outcomes_by_qos(intermittent).axes[0]
    seen["outcomes"] = ax.get_xticklabels()[1].get_color()
    seen["cdf"] = latency_cdf(intermittent).axes[0].lines[1].get_color()
    ax = latency_over_time(intermittent).axes[0]
    seen["over time"] = by_gid(ax, "delivered-qos1")[0].get_facecolor()[0]
    ax = bytes_per_message(intermittent).axes[0]
    seen["bytes"] = by_gid(ax, "mqtt")[1].get_facecolor()
    ax = connection_timeline(intermittent).axes[0]
    seen["timeline"] = ax.get_yticklabels()[1].get_color()
    ax = ladder(sensor, "pub").axes[0]
    seen["ladder"] = by_gid(ax, "mqtt")[2].get_edgecolor()
    ax = topology(intermittent).axes[0]
    clients = by_gid(ax, "clients")[0]
    seen["topology"] = clients.get_facecolors()[1]  # meter-q1, second in the scenario
    table = pd.DataFrame({"x": [1, 2], "seed": 1, "qos": 1, "lost": [0, 1]})
    seen["sweep"] = against_parameter(table, "x", "lost").axes[0].lines[0].get_color()
    assert {name: to_rgba(c) for name, c in seen.items()} == {name: BLUE for name in seen}


def test_axis_labels_carry_units():
    assert axis_label("p99_latency") == "p99 latency (s)"
    assert axis_label("clients.student.link.bandwidth") == "clients.student.link.bandwidth (bit/s)"
    assert axis_label("bytes_per_copy") == "bytes per copy (bytes per delivered copy)"


def test_plots_draw_into_a_given_axes():
    from matplotlib.figure import Figure
    res = run(Scenario.load(f"{SCENARIOS}/seed-sensor.toml"), seed=1)
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert outcomes_by_qos(res, ax=left) is fig
    assert latency_cdf(res, ax=right) is fig
    assert [b.get_height() for b in by_gid(left, "delivered")] == [1]
