"""``dashboard(scenario)``: turn the knobs of a scenario and see what happens, in a notebook.

A student learns most by changing one thing and running again: more loss, a shorter
keepalive, QoS 1 instead of 0. The dashboard is a panel of ipywidgets controls over a
scenario, a Run button, and three figures that are redrawn in place: outcomes per QoS, the
connection timeline and the ladder diagram of one client.

Every control is a dotted override key of ``Scenario.with_`` (the keys ``mqttsim run --set``
takes), and only controls moved away from the scenario's own value become overrides: a
scenario whose link has two outages keeps them until the outage sliders are touched. The
controls change the scenario's *defaults* (top-level ``qos``, ``keepalive``... and the
``[link]`` table); a client that sets a value itself keeps it, and the panel names such
clients, because a control that silently does nothing teaches the wrong lesson.

Everything works without a browser (tests, scripts): ``dash.run()`` does what the button
does, ``dash.overrides()`` and ``dash.scenario()`` say what a run would use, and
``dash.results`` / ``dash.figures`` hold the last run's Results and Figures.
"""

from __future__ import annotations

import io
import math
from typing import Any

import ipywidgets as widgets
from IPython.display import Image
from matplotlib.figure import Figure

from .ladder import ladder
from .plots import outcomes_by_qos
from .timeline import connection_timeline

__all__ = ["dashboard", "Dashboard", "BANDWIDTHS"]

#: Bandwidth choices (bits/s) besides the scenario's own; inf is "no limit" in scenario files.
BANDWIDTHS = (("9.6 kbit/s (old modem)", 9_600.0), ("40 kbit/s (2G)", 40_000.0),
              ("512 kbit/s (satellite)", 512_000.0), ("2 Mbit/s (busy Wi-Fi)", 2_000_000.0),
              ("100 Mbit/s (LAN)", 100_000_000.0), ("no limit", math.inf))
VERSIONS = (("3.1", 3), ("3.1.1", 4), ("5.0", 5))
#: Top-level defaults a control sets, and what each falls back to when the file is silent.
TOP_DEFAULTS = {"qos": 0, "keepalive": 60, "clean": True, "version": 4}
CLIENT_KEYS = {"qos": "QoS", "keepalive": "keepalive", "clean": "clean session",
               "version": "protocol version"}
# A ladder of 12 packets is about 14 inches tall (with TCP's retransmissions): more would make
# the panel a long scroll of identical PUBLISH arrows. The chart sits in a box of
# LADDER_BOX_HEIGHT that scrolls, and starts shortly before the first outage, where there is
# something to see ("ladder from" moves it).
LADDER_PACKETS = 12
LADDER_BOX_HEIGHT = "520px"
LADDER_LEAD = 2.0  # seconds of the ladder before the first outage
AS_IS = "as-is"  # the choice that keeps the scenario's own value (None would read as unset)


def dashboard(scenario: Any, seed: int = 1, run: bool = True) -> Dashboard:
    """An ipywidgets panel over ``scenario`` (a ``Scenario``), showing its first run
    (``run=False``: empty until Run is pressed).

    Display it as the last expression of a cell. ``.run()`` is the Run button."""
    dash = Dashboard(scenario, seed=seed)
    if run:
        dash.run()
    return dash


def _version_number(value: Any) -> int:
    names = {"3.1": 3, "3.1.1": 4, "5": 5, "5.0": 5}
    return names.get(value, value) if isinstance(value, str) else int(value)


class Dashboard(widgets.VBox):
    """The panel: controls, a Run button, a status line and three figure areas."""

    def __init__(self, scenario: Any, seed: int = 1):
        if not getattr(scenario, "raw", None):
            raise ValueError("dashboard needs a Scenario built from a file or dict "
                             "(Scenario.load or Scenario.from_dict): its controls are "
                             "overrides of the scenario's keys")
        self.base = scenario
        self.results: Any = None
        self.figures: dict[str, Figure] = {}
        raw = scenario.raw
        link = raw.get("link") or {}
        self._initial: dict[str, Any] = {}
        style = {"description_width": "120px"}
        layout = widgets.Layout(width="340px")

        def control(name: str, widget: widgets.Widget) -> widgets.Widget:
            self._initial[name] = widget.value
            return widget

        gilbert = "gilbert" in link or any("gilbert" in (link.get(d) or {}) for d in ("up", "down"))
        self.loss = control("loss", widgets.FloatSlider(
            value=float(self._link_value(link, "loss", 0.0) or 0.0), min=0.0, max=0.5,
            step=0.01, description="link loss", disabled=gilbert, style=style, layout=layout,
            tooltip="probability that a packet is lost on the access link"))
        self.latency = control("latency", widgets.FloatSlider(
            value=float(self._link_value(link, "latency", 0.0) or 0.0), min=0.0,
            max=max(1.0, float(self._link_value(link, "latency", 0.0) or 0.0)), step=0.001,
            readout_format=".3f", description="latency (s)", style=style, layout=layout))
        own_bw = self._link_value(link, "bandwidth", None)
        options = [(f"as in the scenario ({_bits(own_bw)})", AS_IS)] + list(BANDWIDTHS)
        self.bandwidth = control("bandwidth", widgets.Dropdown(
            options=options, value=AS_IS, description="bandwidth", style=style, layout=layout))
        duration = float(scenario.duration)
        first = (self._link_value(link, "outages", None) or [[0.0, 0.0]])[0]
        self.outage_start = control("outage_start", widgets.FloatSlider(
            value=float(first[0]), min=0.0, max=duration, step=0.5,
            description="outage from (s)", style=style, layout=layout))
        self.outage_length = control("outage_length", widgets.FloatSlider(
            value=float(first[1] - first[0]), min=0.0, max=duration, step=0.5,
            description="outage for (s)", style=style, layout=layout))
        keepalive = int(raw.get("keepalive", TOP_DEFAULTS["keepalive"]))
        self.keepalive = control("keepalive", widgets.IntSlider(
            value=keepalive, min=0, max=max(120, keepalive), description="keepalive (s)",
            style=style, layout=layout))
        # Clients that name their own QoS would ignore a new default: then the buttons start
        # at "as set" and a QoS chosen overrides every publish and subscription.
        self._own_qos = _own_qos_keys(raw)
        qos_options = [("QoS 0", 0), ("QoS 1", 1), ("QoS 2", 2)]
        if self._own_qos:
            qos_options.insert(0, ("as set", AS_IS))
        self.qos = control("qos", widgets.ToggleButtons(
            options=qos_options, description="QoS",
            value=AS_IS if self._own_qos else int(raw.get("qos", TOP_DEFAULTS["qos"])),
            tooltips=(["each client's own QoS, as the scenario sets it"] * bool(self._own_qos)
                      + ["every publish and subscription at QoS 0", "... at QoS 1",
                         "... at QoS 2"]),
            style={"description_width": "120px", "button_width": "64px"}))
        self.clean = control("clean", widgets.Checkbox(
            value=bool(raw.get("clean", TOP_DEFAULTS["clean"])), description="clean session",
            style=style, layout=layout))
        self.version = control("version", widgets.Dropdown(
            options=VERSIONS, value=_version_number(raw.get("version", TOP_DEFAULTS["version"])),
            description="MQTT version", style=style, layout=layout))
        self.seed = control("seed", widgets.IntText(value=seed, description="seed",
                                                    style=style, layout=layout))
        names = [c.name for c in scenario.clients]
        publishers = [c.name for c in scenario.clients if c.publish]
        self.ladder_client = widgets.Dropdown(
            options=names, value=(publishers or names)[0], description="ladder of",
            style=style, layout=layout)
        outages = [span for c in scenario.clients for span in
                   (*c.link.up.outages, *c.link.down.outages)]
        first_outage = min((o.start for o in outages), default=None)
        self.ladder_start = widgets.FloatText(
            value=max(0.0, first_outage - LADDER_LEAD) if first_outage else 0.0,
            description="ladder from (s)", style=style, layout=layout)
        self.button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = widgets.HTML()
        self.outputs = {name: widgets.Output() for name in ("outcomes", "timeline", "ladder")}
        self.outputs["ladder"].layout = widgets.Layout(max_height=LADDER_BOX_HEIGHT,
                                                       overflow="auto")
        notes = self._notes(gilbert)
        left = widgets.VBox([self.loss, self.latency, self.bandwidth, self.outage_start,
                             self.outage_length, self.keepalive])
        right = widgets.VBox([self.qos, self.clean, self.version, self.seed,
                              self.ladder_client, self.ladder_start])
        super().__init__([
            widgets.HTML(f"<b>{scenario.name}</b>: {scenario.description}"),
            widgets.HBox([left, right]),
            widgets.HTML(notes) if notes else widgets.HTML(),
            widgets.HBox([self.button, self.status]),
            widgets.HBox([self.outputs["outcomes"], self.outputs["timeline"]]),
            self.outputs["ladder"]])

    # -- what the controls say ------------------------------------------------------------
    @staticmethod
    def _link_value(link: dict, key: str, default: Any) -> Any:
        """The value the scenario's [link] gives ``key`` (its up direction if only there)."""
        if key in link:
            return link[key]
        for direction in ("up", "down"):
            if key in (link.get(direction) or {}):
                return link[direction][key]
        return default

    def _link_keys(self, key: str) -> list[str]:
        """Where a link control writes: ``link.<key>``, and ``link.up/down.<key>`` too when
        the file sets it per direction (a later layer would win over ``link.<key>``)."""
        link = self.base.raw.get("link") or {}
        return [f"link.{key}"] + [f"link.{d}.{key}" for d in ("up", "down")
                                  if key in (link.get(d) or {})]

    def _changed(self, name: str) -> bool:
        return getattr(self, name).value != self._initial[name]

    def overrides(self) -> dict[str, Any]:
        """The ``Scenario.with_`` overrides the controls stand for (only those moved)."""
        result: dict[str, Any] = {}
        if self._changed("loss"):
            result.update(dict.fromkeys(self._link_keys("loss"), round(self.loss.value, 4)))
        if self._changed("latency"):
            result.update(dict.fromkeys(self._link_keys("latency"),
                                        round(self.latency.value, 6)))
        if self.bandwidth.value != AS_IS:
            result.update(dict.fromkeys(self._link_keys("bandwidth"), self.bandwidth.value))
        if self._changed("outage_start") or self._changed("outage_length"):
            start, length = float(self.outage_start.value), float(self.outage_length.value)
            spans = [[start, start + length]] if length > 0 else []
            result.update({key: spans for key in self._link_keys("outages")})
        for name in ("keepalive", "qos", "clean", "version"):
            if self._changed(name) and getattr(self, name).value != AS_IS:
                result[name] = getattr(self, name).value
        if "qos" in result:
            result.update(dict.fromkeys(self._own_qos, result["qos"]))
        return result

    def scenario(self) -> Any:
        """The scenario a run would use: the base scenario with ``overrides()`` applied."""
        overrides = self.overrides()
        return self.base.with_(**overrides) if overrides else self.base

    def _notes(self, gilbert: bool) -> str:
        """Clients a control does not reach, because they set the value themselves."""
        lines = []
        if gilbert:
            lines.append("The link loses packets in bursts (gilbert): the loss slider is off.")
        for key, what in CLIENT_KEYS.items():
            own = [c.get("name", "?") for c in self.base.raw.get("clients", [])
                   if key in c or (key == "qos" and _sets_qos(c))]
            if not own:
                continue
            who = (f"{', '.join(own)} set{'s' * (len(own) == 1)} {what} "
                   f"{'itself' if len(own) == 1 else 'themselves'}")
            if key == "qos":
                lines.append(f"{who}: the QoS buttons start at 'as set' (each keeps its own); "
                             "QoS 0, 1 or 2 puts every publish and subscription at that QoS.")
            else:
                lines.append(f"{who}: the {what} control applies to the other clients only.")
        own_link = [c.get("name", "?") for c in self.base.raw.get("clients", []) if "link" in c]
        if own_link:
            lines.append(f"{', '.join(own_link)} describe{'s' * (len(own_link) == 1)} "
                         "a link of its own: what it says wins over the link controls.")
        return "<br>".join(f"<small>{line}</small>" for line in lines)

    # -- running --------------------------------------------------------------------------
    def run(self) -> Any:
        """Run the scenario the controls describe and redraw the three figures.

        Returns the Results. A scenario the controls make impossible (ScenarioError) is
        reported in the status line, and the previous figures stay."""
        from ..scenario import ScenarioError, run
        try:
            scenario = self.scenario()
        except ScenarioError as error:
            self.status.value = f"<span style='color:#b00'>not run: {_html(str(error))}</span>"
            return None
        self.status.value = "running..."
        self.button.disabled = True
        try:
            res = run(scenario, seed=int(self.seed.value))
            client = self.ladder_client.value
            self.figures = {
                "outcomes": outcomes_by_qos(res),
                "timeline": connection_timeline(res),
                "ladder": ladder(res, client, start=float(self.ladder_start.value) or None,
                                 max_packets=LADDER_PACKETS)}
        finally:
            self.button.disabled = False
        self.results = res
        for name, figure in self.figures.items():
            _show(self.outputs[name], figure)
        summary = res.summary()
        parts = [f"QoS {q}: {int(r.delivered)} delivered, {int(r.duplicates)} duplicates, "
                 f"{int(r.lost)} lost" for q, r in summary.iterrows()]
        changed = ", ".join(f"{k}={v}" for k, v in self.overrides().items()) or "no changes"
        self.status.value = (f"seed {res.seed}, {changed}: " + "; ".join(parts)
                             if parts else f"seed {res.seed}, {changed}: no messages")
        return res


def _entries(value: Any) -> list:
    """A publish or subscribe value as a list of entries (one table or filter: a list of one)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _own_qos_keys(raw: dict) -> list[str]:
    """The override keys of every QoS a client sets itself: its own ``qos``, and each
    publish and subscription that names one (``clients.<name>.publish.<i>.qos``)."""
    keys = []
    for client in raw.get("clients", []):
        name = client.get("name")
        if "qos" in client:
            keys.append(f"clients.{name}.qos")
        for kind in ("publish", "subscribe"):
            for i, entry in enumerate(_entries(client.get(kind))):
                if isinstance(entry, dict) and "qos" in entry:
                    keys.append(f"clients.{name}.{kind}.{i}.qos")
    return keys


def _sets_qos(client: dict) -> bool:
    """Whether every publish and subscription of a client names its own QoS."""
    publish = client.get("publish", [])
    publish = [publish] if isinstance(publish, dict) else publish
    return bool(publish) and all("qos" in p for p in publish)


def _show(output: widgets.Output, figure: Figure) -> None:
    """Replace what ``output`` shows with ``figure`` as a PNG: works in a kernel (the
    front end redraws) and outside one (tests read ``output.outputs``)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    output.outputs = ()
    output.append_display_data(Image(data=buffer.getvalue(), format="png"))


def _bits(value: Any) -> str:
    if value is None or value == math.inf:
        return "no limit"
    value = float(value)
    for unit, size in (("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value:g} bit/s"


def _html(text: str) -> str:
    import html
    return html.escape(text)
