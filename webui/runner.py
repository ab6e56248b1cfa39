"""The runner: owns the training subprocesses of one app server, and their queue.

One Runner per app server (not per browser tab): every browser session of the same server sees
the same active run and the same queue, and the UI says so. Runs are started as a new session
(process group) with an argument list, never a shell string, and the app's environment plus the
variables the request adds (the chosen GPUs); their stdout and stderr go to the run's
console.log. Abort signals every process of the run: SIGTERM, a grace period in which the
trainer saves a checkpoint, then SIGKILL, all within ABORT_GRACE_S + a moment. A run found alive
on disk when the app starts (an earlier app process started it) is re-attached: it can be
watched and aborted, and the queue waits for it.

"Every process of the run" is more than the launcher's process group: torchrun starts each rank
in a session of its own, so a rank would survive killpg(launcher) and be orphaned by a SIGKILL of
the launcher. Each run's environment carries TUNEFORGE_RUN_ID (recorded in launch.json), which
every process it spawns inherits; the runner finds the ranks by it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from core import rundir
from core.atomic import write_atomic
from core.errors import UserError

# Time the trainer gets to save a checkpoint after SIGTERM. The promise is "no process of the run
# left 5 s after Abort"; a save still running then is cut short, and the half-written
# checkpoint is skipped by Resume (core.rundir.complete_checkpoints).
ABORT_GRACE_S = 3.5
POLL_S = 0.5
RUN_ID_ENV = "TUNEFORGE_RUN_ID"


@dataclass
class RunRequest:
    """A run to start: where, with which argv, and the config its run.yaml gets."""

    run_dir: Path
    argv: list[str]
    config: dict[str, Any] = field(default_factory=dict)  # written to run_dir/run.yaml at start (empty: kept)
    launcher: dict[str, Any] = field(default_factory=dict)  # recorded in launch.json (processes, accelerate config)
    env: dict[str, str] = field(default_factory=dict)  # variables the run gets beyond the app's own (the chosen GPUs)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    resume: bool = False  # reuse an existing run dir (resume from its checkpoint)

    @property
    def name(self) -> str:
        return self.run_dir.name


@dataclass
class ActiveRun:
    run_dir: Path
    pgid: int
    proc: Optional[subprocess.Popen] = None  # None: re-attached, started by an earlier app process
    started: float = field(default_factory=time.time)
    aborting: bool = False
    run_id: Optional[str] = None  # TUNEFORGE_RUN_ID of its processes (None: a run started elsewhere)


def command_line(argv: list[str], env: Optional[dict[str, str]] = None) -> str:
    """What a run starts, as a shell line: `VAR=value ... argv`, each word quoted (the Train tab's
    preview, the console's first line and launch.json's command are this one string)."""
    assignments = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    return " ".join([*assignments, shlex.join(argv)])


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process of the group remains."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds for zombies nobody has reaped yet; look at each member's state.
    return bool(run_processes(pgid, None))


def run_processes(pgid: int, run_id: Optional[str]) -> list[int]:
    """Live (non-zombie) processes of a run: its launcher's group and every process carrying its id."""
    import psutil

    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                continue
            if os.getpgid(proc.pid) == pgid or (run_id is not None and proc.environ().get(RUN_ID_ENV) == run_id):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            continue  # gone meanwhile, or another user's process (never one of ours)
    return found


def signal_run(pgid: int, run_id: Optional[str], sig: int) -> None:
    """Send sig to every process of the run (its group first, then the ranks in sessions of their own)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    for pid in run_processes(pgid, run_id):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Runner:
    """Starts, watches, aborts and queues the runs of this app server."""

    def __init__(self, saves_dir: Path, cwd: Path, env: Optional[dict[str, str]] = None, poll_s: float = POLL_S):
        self.saves_dir = Path(saves_dir)
        self.cwd = Path(cwd)
        self.env = env
        self._lock = threading.RLock()
        self._active: Optional[ActiveRun] = None
        self._queue: list[RunRequest] = []
        self._listeners: list[Callable[[str, Path], None]] = []
        self._stop = threading.Event()
        self.reattach()
        self._thread = threading.Thread(target=self._loop, name="tuneforge-runner", daemon=True, args=(poll_s,))
        self._thread.start()

    # ------------------------------------------------------------------ state

    @property
    def active(self) -> Optional[ActiveRun]:
        with self._lock:
            return self._active

    def queue(self) -> list[RunRequest]:
        with self._lock:
            return list(self._queue)

    def busy(self) -> bool:
        with self._lock:
            return self._active is not None or bool(self._queue)

    def reattach(self) -> Optional[Path]:
        """Adopt a live run found on disk (started before this app process)."""
        for info in rundir.find_runs(self.saves_dir):
            if info.state not in rundir.ACTIVE_STATES:
                continue
            pgid = info.launch.get("pgid") or info.launch.get("pid")
            run_id = info.launch.get("run_id")
            if pgid and (group_alive(int(pgid)) or run_processes(int(pgid), run_id)):
                with self._lock:
                    self._active = ActiveRun(info.path, int(pgid), None, float(info.launch.get("start_time") or time.time()),
                                             run_id=run_id)
                return info.path
        return None

    # ------------------------------------------------------------------ control

    def submit(self, request: RunRequest) -> str:
        """Start the run now, or queue it behind the active one. Returns "started" or "queued"."""
        self._check_new_dir(request)
        with self._lock:
            if any(q.run_dir == request.run_dir for q in self._queue) or (
                self._active is not None and self._active.run_dir == request.run_dir
            ):
                raise UserError(f"{request.run_dir} is already queued or running; choose another output folder")
            if self._active is None and not self._queue:
                self._start(request)
                return "started"
            self._queue.append(request)
            return "queued"

    def _check_new_dir(self, request: RunRequest) -> None:
        status = request.run_dir / rundir.STATUS_JSON
        if status.exists() and not request.resume:
            raise UserError(f"{request.run_dir} already holds a run; choose another output folder (or resume it from the Runs tab)")

    def _start(self, request: RunRequest) -> None:
        run_dir = request.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        if request.config:  # the argv names this file: the trainer reads the run's config from it
            try:
                write_atomic(run_dir / rundir.RUN_YAML, yaml.safe_dump(request.config, sort_keys=False, allow_unicode=True))
            except OSError as err:
                raise UserError(f"could not write {run_dir / rundir.RUN_YAML}: {err.strerror or err}") from None
        # The run appears in every browser at once, before the trainer has even imported torch.
        rundir.write_status(run_dir, "starting", None)
        env = dict(os.environ if self.env is None else self.env)
        env.update(request.env)
        env["TUNEFORGE_CONSOLE_CAPTURED"] = "1"
        env.setdefault("PYTHONUNBUFFERED", "1")
        run_id = uuid.uuid4().hex
        env[RUN_ID_ENV] = run_id
        console = open(run_dir / rundir.CONSOLE_LOG, "ab")
        try:
            console.write(f"$ {command_line(request.argv, request.env)}\n".encode())
            console.flush()
            proc = subprocess.Popen(
                request.argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=console, stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as err:
            rundir.write_status(run_dir, "failed", f"could not start {request.argv[0]}: {err.strerror or err}")
            raise UserError(f"could not start the run: {request.argv[0]}: {err.strerror or err}") from None
        finally:
            console.close()
        now = time.time()
        # The trainer keeps these and adds its own (trainer_argv, trainer_pid, world_size).
        rundir.update_launch(run_dir, pid=proc.pid, pgid=proc.pid, argv=list(request.argv), env=dict(request.env),
                             command=command_line(request.argv, request.env), start_time=now, cwd=str(self.cwd),
                             run_id=run_id, **request.launcher)
        rundir.write_status(run_dir, "starting", None, pid=proc.pid)
        self._active = ActiveRun(run_dir, proc.pid, proc, now, run_id=run_id)
        self._notify("started", run_dir)

    def abort(self, run_dir: Optional[Path] = None, grace_s: float = ABORT_GRACE_S) -> str:
        """Abort the active run (or drop a queued one). Returns "aborting", "dequeued" or "idle"."""
        with self._lock:
            active = self._active
            if run_dir is not None and (active is None or Path(run_dir) != active.run_dir):
                before = len(self._queue)
                self._queue = [q for q in self._queue if q.run_dir != Path(run_dir)]
                return "dequeued" if len(self._queue) < before else "idle"
            if active is None:
                return "idle"
            if active.aborting:
                return "aborting"
            active.aborting = True
        threading.Thread(target=self._terminate, args=(active, grace_s), daemon=True).start()
        return "aborting"

    def _terminate(self, active: ActiveRun, grace_s: float) -> None:
        signal_run(active.pgid, active.run_id, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if active.proc is not None:
                active.proc.poll()  # reap our direct child so it is not left a zombie
            if not self._alive(active):
                return
            time.sleep(0.1)
        signal_run(active.pgid, active.run_id, signal.SIGKILL)
        if active.proc is not None:
            active.proc.wait(timeout=10)

    @staticmethod
    def _alive(active: ActiveRun) -> bool:
        return group_alive(active.pgid) or bool(run_processes(active.pgid, active.run_id))

    def remove_queued(self, request_id: str) -> bool:
        with self._lock:
            before = len(self._queue)
            self._queue = [q for q in self._queue if q.id != request_id]
            return len(self._queue) < before

    def move_queued(self, request_id: str, delta: int) -> None:
        with self._lock:
            ids = [q.id for q in self._queue]
            if request_id not in ids:
                return
            i = ids.index(request_id)
            j = max(0, min(len(ids) - 1, i + delta))
            self._queue.insert(j, self._queue.pop(i))

    def on_event(self, callback: Callable[[str, Path], None]) -> None:
        """Call callback(event, run_dir) on "started" and "ended" (for tests and the UI)."""
        self._listeners.append(callback)

    def _notify(self, event: str, run_dir: Path) -> None:
        for callback in list(self._listeners):
            callback(event, run_dir)

    # ------------------------------------------------------------------ background loop

    def poll(self) -> None:
        """Notice the end of the active run, record its final state, start the next in the queue."""
        with self._lock:
            active = self._active
            if active is None:
                if self._queue:
                    self._start_next()
                return
            if active.proc is not None and active.proc.poll() is None:
                return
            if self._alive(active):
                return  # the launcher is gone but a rank still runs (saving a checkpoint)
            self._finish(active)
            self._active = None
            self._start_next()

    def _start_next(self) -> None:
        while self._queue:
            request = self._queue.pop(0)
            try:
                self._check_new_dir(request)
                self._start(request)
                return
            except UserError as err:
                # Recorded in the run's own folder so the user sees why it did not start.
                request.run_dir.mkdir(parents=True, exist_ok=True)
                rundir.write_status(request.run_dir, "failed", str(err))

    def _finish(self, active: ActiveRun) -> None:
        status = rundir.read_json(active.run_dir / rundir.STATUS_JSON) or {}
        state = status.get("state")
        if state in rundir.ACTIVE_STATES or state is None:
            if active.aborting:
                rundir.write_status(active.run_dir, "aborted", "aborted by the user before the trainer could save")
            else:
                code = active.proc.returncode if active.proc is not None else None
                cause = rundir.last_error_line(rundir.tail_text(active.run_dir / rundir.CONSOLE_LOG))
                rundir.write_status(active.run_dir, "failed", cause or f"the run exited with code {code} without a final state")
        self._notify("ended", active.run_dir)

    def _loop(self, poll_s: float) -> None:
        while not self._stop.wait(poll_s):
            try:
                self.poll()
            except OSError as err:  # a vanished run folder must not stop the queue; say why
                print(f"[tuneforge] runner: {err}", flush=True)

    def close(self) -> None:
        self._stop.set()
