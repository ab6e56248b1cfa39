"""The Train tab's watch of a starting run: until the first step is logged, the progress bar says
what the trainer is doing (its progress lines: loading libraries, downloading the model,
tokenizing) with the elapsed time; a download fills the bar; the lines stay out of the console."""

from __future__ import annotations

import json
import re
import time

from core import rundir
from core.progress import PROGRESS_PREFIX
from webui.context import AppContext
from webui.runner import Runner
from webui.tabs.train.watch import Watch, tick


def starting_run(tmp_path, console: str):
    run = tmp_path / "saves" / "run"
    run.mkdir(parents=True)
    rundir.write_status(run, "starting")
    (run / rundir.LAUNCH_JSON).write_text(json.dumps({"start_time": time.time() - 75}), encoding="utf-8")
    (run / rundir.CONSOLE_LOG).write_text(console, encoding="utf-8")
    ctx = AppContext(tmp_path / "saves", tmp_path, tmp_path / "m", runner=Runner(tmp_path / "saves", tmp_path), demo=None)
    return ctx, run


def test_the_bar_names_the_trainers_phase_with_the_elapsed_time(tmp_path):
    ctx, run = starting_run(tmp_path, f"{PROGRESS_PREFIX} 0.000 loading the libraries (torch, transformers)\n"
                                      "some warning\n"
                                      f"{PROGRESS_PREFIX} 0.000 loading the tokenizer and tokenizing the dataset\n")
    watch, outputs = tick(ctx, Watch.of(run), True, False, "en")
    # Started 75 s ago: the elapsed time is at least 1:15, however slowly this test runs.
    assert re.search(r"loading the tokenizer and tokenizing the dataset \((1:[1-5]\d|[2-9]:\d\d)\)", outputs["progress"])
    assert outputs["console"] == "some warning"


def test_a_download_fills_the_bar(tmp_path):
    ctx, run = starting_run(tmp_path, f"{PROGRESS_PREFIX} 0.420 downloading org/model: 420.0 of 1000.0 MB\n")
    watch, outputs = tick(ctx, Watch.of(run), True, False, "en")
    assert "width:42.0%" in outputs["progress"] and "downloading org/model: 420.0 of 1000.0 MB" in outputs["progress"]
