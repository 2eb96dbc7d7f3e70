"""`mqttsim compare`'s printed table: rows about the whole run have no QoS, shown as a dash."""

from __future__ import annotations

from pathlib import Path

from mqttsim import Scenario, run
from mqttsim.scenario.compare import Comparison, agreement_table

SEED = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "seed-sensor.toml"


def test_rows_without_a_qos_print_a_dash_not_nan() -> None:
    res = run(Scenario.load(SEED), seed=1)
    table = agreement_table(res, res)
    assert table["qos"].isna().any()  # the connection rows: the case this test is about
    text = str(Comparison({"sim": res, "sockets": res}, table, 1.0))
    assert "NaN" not in text and "nan" not in text, text
    for line in text.splitlines():
        if line.lstrip().startswith(("disconnects", "connections opened")):
            assert " - " in line, line
