"""Experiment trackers (--report_to tensorboard, wandb, mlflow): their files go into the run folder.

transformers' own callbacks do the logging; this module only points them at the run folder,
through the environment variables they read, unless the user has set those variables already:

    tensorboard  RUN/tensorboard/            TENSORBOARD_LOGGING_DIR (event files)
    wandb        RUN/wandb/offline-run-*/    WANDB_DIR, WANDB_MODE=offline (`wandb sync` uploads it
                                             later; set WANDB_MODE=online to log live), WANDB_PROJECT
    mlflow       RUN/mlruns/                 MLFLOW_TRACKING_URI (a local file store, which mlflow 3
                                             accepts with MLFLOW_ALLOW_FILE_STORE=true; `mlflow ui
                                             --backend-store-uri RUN/mlruns` shows it), MLFLOW_EXPERIMENT_NAME

The run's name in every tracker is the run folder's name. None of the packages is required: a
tracker that is not installed is refused in one line when the options are parsed
(core.evaluate.check_trackers).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from core.errors import UserError

PROJECT = "tuneforge"
TENSORBOARD_DIR = "tensorboard"
MLFLOW_DIR = "mlruns"


def reported(report_to: Any) -> set[str]:
    """The trackers a --report_to value names ("all": the three this module sets up)."""
    if report_to in (None, ""):
        return set()
    items = report_to if isinstance(report_to, (list, tuple)) else str(report_to).split(",")
    names = {str(i).strip() for i in items if str(i).strip()}
    return {"tensorboard", "wandb", "mlflow"} if "all" in names else names - {"none"}


# The trackers set up here, with the packages that provide them and what to install.
PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}
INSTALL = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow (or the lighter mlflow-skinny)"}


def check_trackers(report_to: Any) -> None:
    """A tracker named in --report_to that is not installed: one line saying what to install."""
    for name in sorted(reported(report_to) if "all" not in str(report_to) else ()):
        packages = PACKAGES.get(name)
        if packages and not any(importlib.util.find_spec(p) for p in packages):
            raise UserError(f"--report_to {name} needs the {packages[0]} package: pip install {INSTALL[name]}")


def prepare_trackers(training_args: Any) -> None:
    """Point the trackers of --report_to at the run folder (before the Trainer is built).

    `--report_to tensorboard,wandb` (or a YAML list, which the parser joins with commas) becomes
    the list transformers expects: it would take the whole text for one tracker's name.
    """
    items = training_args.report_to if isinstance(training_args.report_to, (list, tuple)) else [training_args.report_to]
    training_args.report_to = [n.strip() for item in items if item for n in str(item).split(",") if n.strip() not in ("", "none")]
    names = reported(training_args.report_to)
    if not names:
        return
    run_dir = Path(training_args.output_dir).resolve()
    if not getattr(training_args, "run_name", None):
        training_args.run_name = run_dir.name
    if "tensorboard" in names:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / TENSORBOARD_DIR))
    if "wandb" in names:
        os.environ.setdefault("WANDB_DIR", str(run_dir))
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_PROJECT", PROJECT)
    if "mlflow" in names:
        os.environ.setdefault("MLFLOW_TRACKING_URI", (run_dir / MLFLOW_DIR).as_uri())
        # mlflow 3 refuses a file store unless allowed: its database store needs a server or SQLAlchemy.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", PROJECT)
