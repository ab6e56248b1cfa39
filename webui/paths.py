"""Paths as the web UI shows and reads them: relative to the repository, where the runs start."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: launch.py lives here, runs start here


def display_path(path: Path | str) -> str:
    """A path as the user types it: relative to the repository when inside it."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def resolve_path(text: str) -> Path:
    """A path typed in the UI: relative ones are relative to the repository (the runs' cwd)."""
    p = Path(os.path.expanduser(text.strip()))
    return (p if p.is_absolute() else ROOT / p).resolve()
