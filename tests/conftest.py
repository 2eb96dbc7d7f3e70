"""Suite-wide settings: which tests wait on real time.

Most of the suite is pure (codec, engines, simulator: no clock, no IO) and runs in well under
a minute. The rest waits on real clocks, sockets, subprocesses, notebook kernels or a
browser; those tests carry the ``realtime`` marker, so ``pytest -m "not realtime"`` is the
quick loop while working, and ``make test`` runs everything, in parallel (pytest-xdist).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Folders whose every test uses real sockets, processes or kernels, and single modules
# elsewhere that do.
REALTIME_FOLDERS = ("net", "backends", "notebooks")
REALTIME_MODULES = ("protocol/test_interop_mosquitto.py", "lab/test_sweep.py",
                    "sim/test_pcap.py", "test_cli.py", "test_packaging.py",
                    "world/test_clock.py")


def _is_realtime(path: Path) -> bool:
    relative = path.resolve().relative_to(HERE).as_posix()
    return relative.split("/")[0] in REALTIME_FOLDERS or relative in REALTIME_MODULES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_realtime(Path(str(item.fspath))):
            item.add_marker(pytest.mark.realtime)
