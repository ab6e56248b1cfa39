"""Experiment trackers (--report_to): TensorBoard, wandb (offline) and mlflow (local file store)
write into the run folder, each readable by its own tool; a missing tracker is one line."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path

import pytest

from core import trackers
from core.errors import UserError
from core.rundir import read_log_rows
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def tracked_run(demo_model, tmp_path_factory) -> Path:
    from tests.conftest import ROOT

    out = tmp_path_factory.mktemp("trackers") / "run"
    result = run_cli(["train", "--model_name_or_path", str(demo_model), "--dataset_dir", str(ROOT / "data"),
                      "--output_dir", str(out), "--do_train", "--template", "llama2", "--dataset", "demo_sft",
                      "--max_samples", "8", "--cutoff_len", "64", "--per_device_train_batch_size", "4", "--max_steps", "2",
                      "--logging_steps", "1", "--report_to", "tensorboard,wandb,mlflow"],
                     env={"WANDB_SILENT": "true"})
    assert result.returncode == 0, result.output[-3000:]
    return out


def clean_env(monkeypatch) -> None:
    for name in ("TENSORBOARD_LOGGING_DIR", "WANDB_DIR", "WANDB_MODE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_log_rows(run_dir) if r.get("loss") is not None]


def test_tensorboard_event_files_in_the_run_folder_are_readable_by_tensorboard(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = glob.glob(str(tracked_run / "tensorboard" / "events.out.tfevents.*"))
    reader = EventAccumulator(str(Path(events).parent))
    reader.Reload()
    points = reader.Scalars("train/loss")
    assert [p.step for p in points] == [1, 2]
    assert [p.value for p in points] == pytest.approx(losses(tracked_run), rel=1e-6)


def test_wandb_writes_an_offline_run_into_the_run_folder(tracked_run):
    (run_file,) = glob.glob(str(tracked_run / "wandb" / "offline-run-*" / "run-*.wandb"))
    data = Path(run_file).read_bytes()
    assert data.startswith(b":W&B")  # wandb's own record log, which `wandb sync` uploads
    assert b"train/loss" in data
    for loss in losses(tracked_run):  # each logged value is in it (as JSON text)
        assert repr(loss).encode() in data


def test_mlflow_logs_into_a_local_file_store_in_the_run_folder(tracked_run, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 reads a file store only when allowed

    client = MlflowClient(tracking_uri=(tracked_run / "mlruns").as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "tuneforge"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run"  # the run folder's name
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in history] == pytest.approx(losses(tracked_run), rel=1e-6)


def test_a_tracker_that_is_not_installed_is_one_line_naming_the_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("wandb", "mlflow") else real(name, *a))
    with pytest.raises(UserError, match=r"^--report_to wandb needs the wandb package: pip install wandb$"):
        trackers.check_trackers("tensorboard,wandb")
    with pytest.raises(UserError, match="pip install mlflow"):
        trackers.check_trackers(["mlflow"])
    trackers.check_trackers("none")
    trackers.check_trackers(None)


def test_report_to_lists_become_transformers_lists_and_set_the_folders(monkeypatch, tmp_path):
    from types import SimpleNamespace

    clean_env(monkeypatch)
    monkeypatch.setattr(trackers.os, "environ", {})
    args = SimpleNamespace(report_to=["tensorboard,mlflow"], output_dir=str(tmp_path / "r1"), run_name=None)
    trackers.prepare_trackers(args)
    assert args.report_to == ["tensorboard", "mlflow"] and args.run_name == "r1"
    assert trackers.os.environ["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / "r1" / "tensorboard")
    assert trackers.os.environ["MLFLOW_TRACKING_URI"] == (tmp_path / "r1" / "mlruns").as_uri()
    assert "WANDB_DIR" not in trackers.os.environ
    none = SimpleNamespace(report_to=[], output_dir=str(tmp_path), run_name=None)
    trackers.prepare_trackers(none)
    assert none.report_to == [] and none.run_name is None
