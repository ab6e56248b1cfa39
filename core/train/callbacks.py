"""Trainer callbacks that keep the run directory and honour an abort request.

Only rank 0 writes files; every rank takes part in the abort decision so that all of them
save the same checkpoint and stop at the same step.
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any, Optional

from transformers import EarlyStoppingCallback, TrainerCallback

from core import rundir

# Keys the Trainer logs that are not curves: they go to status.json as the run's summary.
SUMMARY_SUFFIXES = ("_runtime", "_per_second")
SUMMARY_KEYS = ("train_loss", "total_flos", "num_input_tokens_seen", "train_tokens_per_second")
ROW_KEYS = {"loss", "eval_loss", "learning_rate", "grad_norm", "epoch"}


class Aborted(BaseException):
    """SIGTERM/SIGINT before the training loop started (a BaseException, like KeyboardInterrupt,
    so that no library `except Exception` swallows it)."""


class AbortSignal:
    """SIGTERM and SIGINT ask the run to stop: at once before training, at the next step during it."""

    def __init__(self) -> None:
        self.requested = False
        self.in_loop = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self.in_loop:
            raise Aborted(f"stopped by {signal.Signals(signum).name} before training started")


def _any_rank_requested(local: bool) -> bool:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return local
    flag = torch.tensor([1 if local else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def log_row(logs: dict[str, Any], state: Any, started: float, start_step: int) -> dict[str, Any]:
    """One trainer_log.jsonl row: the fixed fields of rundir.LOG_FIELDS plus a stage's extras."""
    step, total = state.global_step, state.max_steps
    elapsed = time.time() - started
    done = step - start_step
    remaining = elapsed / done * (total - step) if done > 0 and total else None
    row: dict[str, Any] = {
        "step": step,
        "total_steps": total,
        "epoch": round(state.epoch, 4) if state.epoch is not None else None,
        "loss": logs.get("loss"),
        "eval_loss": logs.get("eval_loss"),
        "learning_rate": logs.get("learning_rate"),
        "grad_norm": logs.get("grad_norm"),
        "tokens": int(getattr(state, "num_input_tokens_seen", 0) or 0),
        "elapsed_s": round(elapsed, 3),
        "remaining_s": round(remaining, 3) if remaining is not None else None,
        "percent": round(100.0 * step / total, 2) if total else None,
    }
    for key, value in logs.items():
        if key in ROW_KEYS or not isinstance(value, (int, float)) or is_summary_key(key):
            continue
        row[key] = value
    return {k: _clean(v) for k, v in row.items()}


def is_summary_key(key: str) -> bool:
    return key in SUMMARY_KEYS or key.endswith(SUMMARY_SUFFIXES)


class RunDirCallback(TrainerCallback):
    """Writes status.json and trainer_log.jsonl (rank 0) and turns an abort into save + stop."""

    def __init__(self, run_dir: Path, abort: AbortSignal):
        self.run_dir = Path(run_dir)
        self.abort = abort
        self.started = time.time()
        self.start_step = 0
        self.aborted = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()
        self.start_step = state.global_step
        self.abort.in_loop = True
        if state.is_world_process_zero:
            rundir.write_status(self.run_dir, "running", total_steps=state.max_steps, start_step=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if _any_rank_requested(self.abort.requested):
            self.aborted = True
            control.should_save = True
            control.should_training_stop = True

    def on_log(self, args, state, control, logs: Optional[dict[str, Any]] = None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if any(is_summary_key(k) for k in logs) and "loss" not in logs and "eval_loss" not in logs:
            rundir.write_status(self.run_dir, "running", summary={k: _clean(v) for k, v in logs.items()})
            return
        row = log_row(logs, state, self.started, self.start_step)
        rundir.append_log_row(self.run_dir, row)
        print(format_row(row), flush=True)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            rundir.write_status(self.run_dir, "running", last_checkpoint=f"checkpoint-{state.global_step}")


class EarlyStopping(EarlyStoppingCallback):
    """transformers' early stopping, which also says why it stopped (`reason`, for status.json)."""

    def __init__(self, patience: int):
        super().__init__(early_stopping_patience=patience)
        self.reason: Optional[str] = None

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        super().on_evaluate(args, state, control, metrics, **kwargs)
        if self.reason is None and self.early_stopping_patience_counter >= self.early_stopping_patience:
            name = args.metric_for_best_model
            name = name if name.startswith("eval_") else f"eval_{name}"
            best = [row for row in state.log_history if row.get(name) == state.best_metric]
            where = f" at step {best[0]['step']}" if best and "step" in best[0] else ""
            self.reason = (f"early stopping: {name} did not improve for {self.early_stopping_patience} evaluation"
                           f"{'s' if self.early_stopping_patience > 1 else ''} (best {state.best_metric:.4g}{where}), "
                           f"stopped at step {state.global_step} of {state.max_steps}")
            if state.is_world_process_zero:
                print(f"[tuneforge] {self.reason}", flush=True)


def format_row(row: dict[str, Any]) -> str:
    """The console line of a logging step."""
    parts = [f"[step {row['step']}/{row['total_steps']}]"]
    for key in ("loss", "eval_loss", "learning_rate", "grad_norm"):
        if row.get(key) is not None:
            parts.append(f"{key} {row[key]:.4g}")
    if row.get("tokens") and row.get("elapsed_s"):
        parts.append(f"tokens/s {row['tokens'] / row['elapsed_s']:.0f}")
    extras = [k for k in row if k not in rundir.LOG_FIELDS]
    parts += [f"{k} {row[k]:.4g}" for k in extras if isinstance(row[k], (int, float))]
    return " ".join(parts)
