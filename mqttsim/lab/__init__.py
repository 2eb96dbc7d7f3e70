"""The lab: figures, sweeps and reports, built on ``Results``.

Everything here reads result tables only (DESIGN.md: lab never reaches into engines or
drivers), so the same figure works for a simulated run and a run on real sockets::

    from mqttsim import Scenario, run
    from mqttsim.lab import outcomes_by_qos, ladder
    res = run(Scenario.load("data/scenarios/intermittent.toml"), seed=1)
    outcomes_by_qos(res)                       # a matplotlib Figure
    ladder(res, "meter-q1", start=99, end=101)

Every plot function takes a Results (or the table it draws), an optional ``ax`` to draw
into, and returns the Figure. Colours, markers and units shared by all figures are in
``mqttsim.lab.style``.
"""

import types as _types

from ._base import show_figures_in_notebooks as _show_figures_in_notebooks

from .dashboard import Dashboard, dashboard
from .ladder import ladder, packet_label
from .report import load_results, report
from .plots import (against_parameter, bytes_per_message, duplicates_and_losses, latency_cdf,
                    latency_over_time, outcome_counts, outcomes_by_qos)
from .questions import (message_fates, notice_times, offline_fates, publish_round_trips,
                        retained_and_wills, round_trips, time_to_notice)
from .stats import ci_table, mean_ci, t_quantile
from .style import OUTCOME_COLORS, QOS_COLORS
from .sweep import SweepResult, sweep
from .timeline import connection_timeline
from .topology import topology, topology_graph
from .wire import bytes_by_qos, wire_bytes

_show_figures_in_notebooks()

# __all__ below picks up every public name imported above it.

__all__ = sorted(name for name, value in globals().items()
                 if not name.startswith("_") and not isinstance(value, _types.ModuleType))
