"""Trackers chosen on the Train tab: the form's report_to goes into the run.yaml the runner
writes, and the trainer parses that file to the same trackers, pointed at the run folder."""

from __future__ import annotations

import os
import sys

import pytest
import yaml

from core import trackers
from core.args import parse_train_args
from tests.test_webui_command import _defaults, run_to_end
from webui import command
from webui.form import form_values
from webui.runner import RunRequest, Runner

TRACKER_ENV = ("TENSORBOARD_LOGGING_DIR", "WANDB_DIR", "WANDB_MODE", "WANDB_PROJECT", "MLFLOW_TRACKING_URI")


@pytest.mark.parametrize("typed, trackers_asked", [
    ("tensorboard", ["tensorboard"]),
    ("tensorboard, wandb", ["tensorboard", "wandb"]),  # the field takes several, comma-separated
])
def test_trackers_from_the_train_tab_reach_the_trainer(tmp_path, monkeypatch, typed, trackers_asked):
    run_dir = tmp_path / "saves" / "tracked"
    config = command.config_from_form(form_values(_defaults(report_to=typed, output_dir=str(run_dir))))
    spec = command.LaunchSpec.of_config(config, num_processes=1)
    # The real runner writes run.yaml; a stand-in for the trainer's process ends at once.
    run_to_end(Runner(tmp_path / "saves", tmp_path, poll_s=0.1),
               RunRequest(spec.run_dir, [sys.executable, "-c", "pass"], spec.config, spec.launcher))
    run_yaml = run_dir / "run.yaml"
    assert yaml.safe_load(run_yaml.read_text())["report_to"] == typed

    # `launch.py train RUN/run.yaml`: the trainer's parse, then its set-up of the trackers.
    args = parse_train_args([str(run_yaml)])
    monkeypatch.setattr(trackers.os, "environ", {k: v for k, v in os.environ.items() if k not in TRACKER_ENV})
    trackers.prepare_trackers(args.training)
    assert args.training.report_to == trackers_asked
    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(run_dir.resolve() / "tensorboard")
    if "wandb" in trackers_asked:
        assert os.environ["WANDB_DIR"] == str(run_dir.resolve()) and os.environ["WANDB_MODE"] == "offline"
    else:
        assert "WANDB_DIR" not in os.environ
