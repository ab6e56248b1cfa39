"""Progress lines: how a command run as a subprocess (export, the demo-model build) tells the web
UI how far it is, on its stdout: `[tuneforge-progress] FRACTION MESSAGE`."""

from __future__ import annotations

import os
from typing import Callable, Optional

PROGRESS_PREFIX = "[tuneforge-progress]"


def print_progress(fraction: float, message: str) -> None:
    print(f"{PROGRESS_PREFIX} {fraction:.3f} {message}", flush=True)


def read_progress(line: str) -> Optional[tuple[float, str]]:
    """(fraction, message) of a progress line; None for any other line (or a garbled fraction)."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    fraction, _, message = line[len(PROGRESS_PREFIX):].strip().partition(" ")
    try:
        return float(fraction), message
    except ValueError:
        return None


def every_percent(report: Callable[[float, str], None]) -> Callable[[float, str], None]:
    """`report`, called only when the fraction has grown by a whole percent (and at the end):
    a download of many GB reports every chunk, and the console and the UI need far fewer lines."""
    last = [-1]

    def forward(fraction: float, message: str) -> None:
        percent = int(fraction * 100)
        if percent > last[0]:
            last[0] = percent
            report(fraction, message)

    return forward


def part_of(report: Callable[[float, str], None], start: float, end: float) -> Callable[[float, str], None]:
    """`report` for one part of a job: the part's fractions 0..1 land on start..end of the bar
    (a hub download fills the first half of the Chat and Export bars, loading or merging the rest)."""
    return lambda fraction, message: report(start + (end - start) * fraction, message)


def launched_by_web_ui() -> bool:
    """The web UI's runner captures the trainer's console (and reads progress lines from it)."""
    return bool(os.environ.get("TUNEFORGE_CONSOLE_CAPTURED"))


def print_phase(message: str) -> None:
    """What the trainer is doing before its first logged step (loading libraries, tokenizing,
    loading the model): the web UI shows the latest phase with the elapsed time; a terminal
    gets a plain line. Rank 0 only."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if launched_by_web_ui():
        print_progress(0.0, message)
    else:
        print(f"[tuneforge] {message}", flush=True)
