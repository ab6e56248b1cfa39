"""The run directory: the contract between the trainer, which writes it, and the UI, which reads it.

Light imports only (no torch): the web UI uses this module at start.

    run.yaml            the arguments of the run (`launch.py train run.yaml` reruns it)
    launch.json         how it was launched: argv, world size, pids, start time
    status.json         {"state": ..., "error": str|null, "updated": time, ...}
    trainer_log.jsonl   one row per logging step (LOG_FIELDS, plus a stage's extra metrics)
    console.log         stdout and stderr of the run
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from core.atomic import write_atomic

STATES = ("starting", "running", "finished", "failed", "aborted")
ACTIVE_STATES = ("starting", "running")
LOG_FIELDS = (
    "step", "total_steps", "epoch", "loss", "eval_loss", "learning_rate", "grad_norm",
    "tokens", "elapsed_s", "remaining_s", "percent",
)

RUN_YAML = "run.yaml"
LAUNCH_JSON = "launch.json"
STATUS_JSON = "status.json"
TRAINER_LOG = "trainer_log.jsonl"
CONSOLE_LOG = "console.log"
LOSS_PLOT = "training_loss.html"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so a reader never sees half a file (core/atomic.py)."""
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))


def read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_status(run_dir: Path, state: str, error: Optional[str] = None, **extra: Any) -> None:
    assert state in STATES, state
    current = read_json(Path(run_dir) / STATUS_JSON) or {}
    current.update(extra)
    current.update({"state": state, "error": error, "updated": time.time()})
    write_json_atomic(Path(run_dir) / STATUS_JSON, current)


def update_launch(run_dir: Path, **fields: Any) -> None:
    """Merge fields into launch.json (the UI writes the launcher's, the trainer its own)."""
    current = read_json(Path(run_dir) / LAUNCH_JSON) or {}
    current.update(fields)
    write_json_atomic(Path(run_dir) / LAUNCH_JSON, current)


def append_log_row(run_dir: Path, row: dict[str, Any]) -> None:
    with open(Path(run_dir) / TRAINER_LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()


CHECKPOINT_DONE = "trainer_state.json"  # the Trainer writes it last: a checkpoint without it is half-saved


def checkpoints(run_dir: Path, complete: bool = True) -> list[Path]:
    """checkpoint-N folders by step; with complete, only those whose save finished."""
    found = []
    for path in Path(run_dir).glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if step.isdigit() and path.is_dir() and (not complete or (path / CHECKPOINT_DONE).is_file()):
            found.append((int(step), path))
    return [path for _, path in sorted(found)]


def pid_alive(pid: Optional[int]) -> bool:
    """Whether a process runs under this pid; a zombie (exited, not yet reaped) does not."""
    import psutil

    if not pid:
        return False
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True


def tail_text(path: Path, max_bytes: int = 8192) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def last_error_line(console_text: str) -> Optional[str]:
    """The line that says why a run failed: the last exception or error line of its log."""
    lines = [line.strip() for line in console_text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("[tuneforge] error:"):
            return line.removeprefix("[tuneforge] error:").strip()
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt")) or line.startswith(("error:", "Error:", "Killed")):
            return line
    return lines[-1] if lines else None


@dataclass
class RunInfo:
    """A run as the UI shows it: its folder, state (with dead runs detected) and config."""

    path: Path
    state: str
    error: Optional[str]
    status: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    launch: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


def run_info(run_dir: Path) -> Optional[RunInfo]:
    """Read a run's state; an active run whose processes are gone is reported as failed."""
    run_dir = Path(run_dir)
    status = read_json(run_dir / STATUS_JSON)
    if status is None:
        return None
    launch = read_json(run_dir / LAUNCH_JSON) or {}
    state, error = status.get("state", "failed"), status.get("error")
    if state in ACTIVE_STATES and not _any_alive(launch, status):
        state = "failed"
        error = error or last_error_line(tail_text(run_dir / CONSOLE_LOG)) or "the run's process ended without a final state"
    return RunInfo(run_dir, state, error, status, _read_yaml(run_dir / RUN_YAML), launch)


def _any_alive(launch: dict[str, Any], status: dict[str, Any]) -> bool:
    pids = [launch.get("pid"), launch.get("trainer_pid"), status.get("pid")]
    if not any(pids):
        # Just created by a launcher that has not recorded a pid yet: give it a moment.
        return time.time() - float(status.get("updated", 0)) < 30
    return any(pid_alive(p) for p in pids)


def record_template(run_dir: Path, name: str) -> None:
    """Write the template a run resolved into its run.yaml (an empty --template means the
    tokenizer's own or 'default'), so chat, export and a rerun use the same one."""
    from core.atomic import write_atomic
    import yaml

    path = Path(run_dir) / RUN_YAML
    config = _read_yaml(path)
    if not config or "_error" in config or config.get("template") == name:
        return
    config["template"] = name
    write_atomic(path, yaml.safe_dump(config, allow_unicode=True, sort_keys=False))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml

        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, ImportError):
        return {}
    except Exception as err:  # yaml.YAMLError: a corrupt run.yaml must not hide the run
        return {"_error": str(err).splitlines()[0]}


def find_runs(root: Path) -> list[RunInfo]:
    """Every run below root (any depth up to 3), newest first, found by its status.json."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for status in root.glob("**/" + STATUS_JSON):
        if len(status.relative_to(root).parts) > 4:
            continue
        info = run_info(status.parent)
        if info is not None:
            runs.append(info)
    runs.sort(key=lambda r: (r.path / STATUS_JSON).stat().st_mtime if (r.path / STATUS_JSON).exists() else 0, reverse=True)
    return runs


class IncrementalReader:
    """Reads only the bytes appended to a growing file since the last call.

    A trailing line without its newline is kept back until the writer finishes it, so a
    JSON row is never parsed half-written.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""
        self._inode: Optional[int] = None
        # True after a read that started the file over (a resumed run rewrites its log):
        # whoever accumulates the lines must drop what it had.
        self.restarted = False

    def read_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                inode = os.fstat(fh.fileno()).st_ino
                fh.seek(0, os.SEEK_END)
                self.restarted = False
                if inode != self._inode or fh.tell() < self.offset:  # replaced or truncated: start over
                    self.restarted = self._inode is not None
                    self.offset, self._partial, self._inode = 0, b"", inode
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [line.decode("utf-8", errors="replace") for line in lines]

    def read_rows(self) -> list[dict[str, Any]]:
        rows = []
        for line in self.read_lines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a corrupt line must not stop the stream
            if isinstance(row, dict):
                rows.append(row)
        return rows


def read_log_rows(run_dir: Path) -> list[dict[str, Any]]:
    return IncrementalReader(Path(run_dir) / TRAINER_LOG).read_rows()
