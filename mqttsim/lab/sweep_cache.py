"""A sweep's cache: one JSON file per run, keyed by everything that determines its result.

Re-running a sweep after adding a grid value or a seed then runs only what is new, and a
sweep stopped with Ctrl-C picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "RunCache", "cache_key", "code_version", "default_cache_dir"]

#: Environment variable naming the cache directory (overrides the default).
CACHE_ENV = "MQTTSIM_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$MQTTSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/mqttsim/sweeps`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mqttsim" / "sweeps"


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the simulator's source (everything in mqttsim but the lab), so that editing
    the simulator without bumping ``__version__`` cannot serve stale cached results."""
    import mqttsim
    root = Path(mqttsim.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("lab/"):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{mqttsim.__version__}+{digest.hexdigest()[:16]}"


def _runner_name(runner: Callable | None) -> str:
    if runner is None:
        return "mqttsim.run"
    return f"{getattr(runner, '__module__', '?')}.{getattr(runner, '__qualname__', repr(runner))}"


def cache_key(scenario: Any, seed: int, runner: Callable | None = None) -> str:
    """sha256 of (the scenario's dict after overrides, seed, mqttsim version and code, runner)."""
    blob = json.dumps({"scenario": scenario.to_dict(), "seed": seed,
                       "mqttsim": code_version(), "runner": _runner_name(runner)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class RunCache:
    """Run summaries on disk (None: no cache, every get misses and put keeps nothing)."""

    def __init__(self, directory: Path | None):
        self.directory = directory

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[dict] | None:
        if self.directory is None:
            return None
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))["summary"]
        except (OSError, ValueError, KeyError):
            return None  # missing or unreadable (a half-written file): run again

    def put(self, key: str, record: dict) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record, default=str), encoding="utf-8")
        os.replace(temporary, path)  # readers never see half a file


