"""The dashboard, driven as a student would drive it but without a browser: move controls,
press Run (``button.click()``), then check the scenario that ran and the figures shown."""

from __future__ import annotations

import base64
import math

import ipywidgets as widgets
import pytest

from mqttsim import Scenario, run
from mqttsim.lab import Dashboard, dashboard, outcome_counts

SCENARIOS = "data/scenarios"


def small_intermittent() -> Scenario:
    """intermittent.toml cut to 150 s with one outage (60-90 s): runs in a blink."""
    return Scenario.load(f"{SCENARIOS}/intermittent.toml").with_(
        duration=150.0, **{"link.outages": [[60.0, 90.0]]})


def shown_png(dash: Dashboard, name: str) -> bytes:
    """The PNG image an output area shows (notebook outputs hold it base64-encoded)."""
    [output] = dash.outputs[name].outputs
    assert output["output_type"] == "display_data"
    return base64.b64decode(output["data"]["image/png"])


def test_untouched_controls_run_the_scenario_as_it_is() -> None:
    sc = small_intermittent()
    dash = dashboard(sc, run=False)
    assert isinstance(dash, widgets.Widget)
    assert dash.overrides() == {}
    assert dash.scenario() is sc
    # The controls start at the scenario's values, not at arbitrary defaults.
    assert (dash.keepalive.value, dash.clean.value, dash.latency.value) == (10, False, 0.02)
    assert (dash.outage_start.value, dash.outage_length.value) == (60.0, 30.0)


def test_button_click_applies_every_control_and_redraws_the_figures() -> None:
    dash = dashboard(small_intermittent(), run=False)
    dash.loss.value = 0.05
    dash.latency.value = 0.1
    dash.bandwidth.value = 512_000.0
    dash.outage_start.value, dash.outage_length.value = 40.0, 20.0
    dash.keepalive.value = 5
    dash.qos.value = 1
    dash.clean.value = True
    dash.version.value = 5
    dash.seed.value = 7
    assert dash.overrides() == {"link.loss": 0.05, "link.latency": 0.1,
                                "link.bandwidth": 512_000.0, "link.outages": [[40.0, 60.0]],
                                "keepalive": 5, "qos": 1, "clean": True, "version": 5,
                                # the meters and the monitor set their own QoS: overridden
                                "clients.meter-q0.publish.0.qos": 1,
                                "clients.meter-q1.publish.0.qos": 1,
                                "clients.meter-q2.publish.0.qos": 1,
                                "clients.monitor.subscribe.0.qos": 1}
    dash.button.click()

    res = dash.results
    assert res is not None and res.seed == 7
    meter = next(c for c in res.scenario.clients if c.name == "meter-q1")
    assert (meter.keepalive, meter.clean, meter.version) == (5, True, 5)
    up = meter.link.up
    assert (up.loss.p, up.latency, up.bandwidth) == (0.05, 0.1, 512_000.0)
    assert [(o.start, o.end) for o in up.outages] == [(40.0, 60.0)]
    monitor = next(c for c in res.scenario.clients if c.name == "monitor")
    assert monitor.link.up.outages == ()  # its own link = { outages = [] } still wins
    # The run is the one mqttsim.run gives for that scenario and seed.
    again = run(dash.scenario(), seed=7)
    assert outcome_counts(res).equals(outcome_counts(again))
    # Three figures drawn and shown as PNG images in the three output areas.
    assert set(dash.figures) == {"outcomes", "timeline", "ladder"}
    bars = [p for p in dash.figures["outcomes"].axes[0].patches if p.get_gid() == "delivered"]
    assert sum(p.get_height() for p in bars) == outcome_counts(res)["delivered"].sum()
    ends = [a for a in dash.figures["timeline"].axes[0].lines
            if str(a.get_gid()).startswith("end:")]
    assert ends, "the 20 s outage against a 5 s keepalive must end connections"
    assert "meter-q0" in dash.figures["ladder"].axes[0].get_title()
    for name in dash.outputs:
        assert shown_png(dash, name).startswith(b"\x89PNG")
    assert "delivered" in dash.status.value and "keepalive=5" in dash.status.value


def test_second_run_replaces_the_figures_instead_of_adding_more() -> None:
    dash = dashboard(small_intermittent(), run=True)
    first = shown_png(dash, "outcomes")
    dash.keepalive.value = 60  # outages now shorter than 1.5 x keepalive: nothing is lost
    dash.ladder_client.value = "monitor"
    dash.run()
    assert len(dash.outputs["outcomes"].outputs) == 1
    assert shown_png(dash, "outcomes") != first
    assert outcome_counts(dash.results)["lost"].sum() == 0
    assert "monitor" in dash.figures["ladder"].axes[0].get_title()


def test_link_controls_reach_per_direction_values_and_name_clients_they_miss() -> None:
    sc = Scenario.load(f"{SCENARIOS}/lossy-2g.toml")
    dash = dashboard(sc, run=False)
    assert "40 kbit/s" in dash.bandwidth.label  # the scenario's own uplink
    dash.bandwidth.value = math.inf
    built = dash.scenario()
    field = next(c for c in built.clients if c.name == "field-1")
    # lossy-2g sets bandwidth per direction: both directions must follow the control.
    assert (field.link.up.bandwidth, field.link.down.bandwidth) == (None, None)
    notes = dash.children[2].value
    assert "dashboard describes a link of its own" in notes


def test_a_control_that_cannot_reach_a_client_is_named() -> None:
    notes = dashboard(small_intermittent(), run=False).children[2].value
    assert "meter-q0, meter-q1, meter-q2 set QoS themselves" in notes
    assert "'as set'" in notes  # ... and what the QoS buttons do about it
    sc = Scenario.from_dict({"name": "own-keepalive", "duration": 5.0, "clients": [
        {"name": "sub", "subscribe": "t", "keepalive": 30}]})
    notes = dashboard(sc, run=False).children[2].value
    assert "sub sets keepalive itself: the keepalive control applies to the other" in notes


def test_qos_buttons_change_what_happens_when_every_client_sets_its_own_qos() -> None:
    """intermittent.toml: every meter and the monitor name their QoS. The buttons start at
    "as set" (the file's mix), and QoS 0 puts every message at QoS 0: the QoS 1 and 2 meters'
    backlog is then lost in the outages too."""
    dash = dashboard(small_intermittent())
    assert dash.qos.value == "as-is" and dash.overrides() == {}
    mixed = outcome_counts(dash.results)
    assert set(mixed.index) == {0, 1, 2}
    dash.qos.value = 0
    dash.button.click()
    for client in dash.results.scenario.clients:
        assert {p.qos for p in client.publish} <= {0}, client
        assert {s.qos for s in client.subscribe} <= {0}, client
    counts = outcome_counts(dash.results)
    assert list(counts.index) == [0]
    assert counts.loc[0, "lost"] > mixed.loc[0, "lost"]  # the QoS 1 and 2 backlog is lost now
    assert "QoS 0:" in dash.status.value and "QoS 1:" not in dash.status.value
    dash.qos.value = "as-is"
    assert dash.overrides() == {}


def test_a_scenario_with_one_default_qos_has_no_as_set_button() -> None:
    dash = dashboard(Scenario.load(f"{SCENARIOS}/seed-sensor.toml"), run=False)
    assert [value for _, value in dash.qos.options] == [0, 1, 2] and dash.qos.value == 0
    dash.qos.value = 2
    assert dash.overrides() == {"qos": 2}


def test_the_panel_shows_the_first_run_without_a_click() -> None:
    dash = dashboard(small_intermittent())
    assert dash.results is not None and dash.results.seed == 1
    for name in dash.outputs:
        assert shown_png(dash, name).startswith(b"\x89PNG")
    assert "delivered" in dash.status.value
    assert dashboard(small_intermittent(), run=False).results is None


def test_the_ladder_is_short_scrolls_and_starts_before_the_first_outage() -> None:
    dash = dashboard(small_intermittent())
    assert dash.ladder_start.value == 58.0  # the outage is at 60 s
    png = shown_png(dash, "ladder")
    height_px = int.from_bytes(png[20:24], "big")  # the PNG header's IHDR height
    assert height_px <= 80 * 15, height_px  # at most 15 inches at the panel's 80 dpi
    box = dash.outputs["ladder"].layout
    assert box.overflow == "auto" and box.max_height
    title = dash.figures["ladder"].axes[0].get_title()
    assert "first 12 packets" in title and "58" in title


def test_impossible_scenario_is_reported_not_raised() -> None:
    # An empty client id asks the broker to pick one, which MQTT 3.1.1 allows only with a
    # clean session [MQTT-3.1.3-7]: unticking "clean session" makes the scenario impossible.
    sc = Scenario.from_dict({"name": "anonymous", "duration": 5.0, "clients": [
        {"name": "anon", "client_id": "", "subscribe": "sensor"}]})
    dash = dashboard(sc, run=True)
    before = shown_png(dash, "timeline")
    dash.clean.value = False
    assert dash.run() is None
    assert "not run" in dash.status.value and "MQTT-3.1.3-7" in dash.status.value
    assert shown_png(dash, "timeline") == before  # the last good figures stay
    assert dash.results.scenario is sc
    dash.clean.value = True
    dash.outage_start.value = 1.0  # moved and moved back: no override
    dash.outage_start.value = 0.0
    assert dash.overrides() == {}


def test_scenario_without_raw_is_refused() -> None:
    sc = Scenario.load(f"{SCENARIOS}/seed-sensor.toml")
    bare = Scenario(name="bare", clients=sc.clients)
    with pytest.raises(ValueError, match="Scenario.from_dict"):
        dashboard(bare)
