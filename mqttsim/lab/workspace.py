"""The students' own copies of the notebooks: ``make lab`` opens ``work/``, not ``notebooks/``.

A student runs cells, saves outputs and types answers; the repository's notebooks must stay
as committed (without outputs, exercises unanswered), because the test suite checks them
and ``git pull`` must not meet local edits. So ``make lab`` first copies every notebook of
``notebooks/`` that ``work/`` does not have yet (same folder layout, so relative paths and
the search for ``data/scenarios`` work the same), then starts JupyterLab in ``work/``, which
git ignores. A copy is never overwritten: the student's work is theirs. When the lab's
version of a notebook changed after it was copied, ``make lab`` says so and how to get the
new one (rename or delete the copy).

Run as ``python -m mqttsim.lab.workspace [SOURCE [TARGET]]`` (default ``notebooks work``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["prepare_workspace", "Prepared", "MANIFEST"]

MANIFEST = ".copied-from-notebooks.json"  # in TARGET: the digest of each source when copied
# The notebooks and what they read beside them (11-your-own-client runs my_client.py).
COPIED_SUFFIXES = (".ipynb", ".md", ".py", ".toml", ".txt", ".csv", ".json")


@dataclass
class Prepared:
    """What ``prepare_workspace`` did: relative paths copied now, and those whose source has
    changed since they were copied (left alone)."""

    copied: list[Path] = field(default_factory=list)
    outdated: list[Path] = field(default_factory=list)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sources(source: Path) -> list[Path]:
    return sorted(p.relative_to(source) for p in source.rglob("*")
                  if p.is_file() and p.suffix in COPIED_SUFFIXES
                  and not {".ipynb_checkpoints", "__pycache__", "reports"} & set(p.parts))


def prepare_workspace(source: Path | str, target: Path | str) -> Prepared:
    """Copy each notebook of ``source`` (with the files beside it: ``COPIED_SUFFIXES``)
    missing from ``target``; never overwrite."""
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise FileNotFoundError(f"no notebooks folder {source}")
    target.mkdir(parents=True, exist_ok=True)
    manifest_path = target / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    done = Prepared()
    for relative in _sources(source):
        key, digest = relative.as_posix(), _digest(source / relative)
        copy = target / relative
        if not copy.exists():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, copy)
            manifest[key] = digest
            done.copied.append(relative)
        elif key in manifest and manifest[key] != digest:
            done.outdated.append(relative)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    source, target = (Path(a) for a in (args + ["notebooks", "work"][len(args):])[:2])
    try:
        done = prepare_workspace(source, target)
    except OSError as error:
        print(f"mqttsim workspace: {error}", file=sys.stderr)
        return 2
    if done.copied:
        print(f"Copied {len(done.copied)} file(s) from {source}/ into {target}/, where you "
              f"work (git ignores {target}/; {source}/ stays as committed).")
    for relative in done.outdated:
        print(f"{source / relative} has changed since your copy {target / relative} was made; "
              f"to get the new one, rename or delete your copy and run make lab again.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
