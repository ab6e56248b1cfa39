"""`launch.py train`: parse, check, prepare the run directory, run the stage, record how it ended.

`launch.py train CONFIG --dry_run` stops after the checks (core/train/preflight.py) and prints
the config the run would record.

Every rank runs this; rank 0 alone writes the run directory. A refused input is one line on
stderr (and in status.json once the run directory exists); a bug keeps its traceback in
console.log.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import yaml

from core import rundir, startup
from core.atomic import write_atomic
from core.args import TrainArgs, parse_train_args, raw_value
from core.errors import UserError


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def hide_unused_packages(argv: list[str]) -> None:
    """Keep bitsandbytes out of a run that does not quantize.

    peft imports bitsandbytes whenever it is installed, and bitsandbytes imports torch's compiler
    stack: about 1 s of start-up and 45 MB of memory spent before the first step for nothing.
    An entry of None in sys.modules makes importlib report the package as absent, so peft and
    transformers skip it. Decided from the raw flags, since parsing imports transformers (and so peft).
    """
    if str(raw_value(argv, "quantization_bit")).strip().lower() in ("none", "", "null"):
        sys.modules.setdefault("bitsandbytes", None)  # type: ignore[arg-type]


def main(argv: list[str]) -> int:
    startup.begin()  # until training starts (core/train/sft.py: train_and_save)
    try:
        return run(argv)
    finally:
        startup.done()


def run(argv: list[str]) -> int:
    from core.data import prefetch
    from core.evaluate import check_eval_datasets, predict_main, predict_only
    from core.train.preflight import DRY_RUN_FLAG, check_before_imports, check_run_dir, dry_run, preflight

    dry = DRY_RUN_FLAG in argv
    argv = [a for a in argv if a != DRY_RUN_FLAG]
    try:
        check_before_imports(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    hide_unused_packages(argv)
    if not dry:
        from core.progress import print_phase

        print_phase("loading the libraries (torch, transformers)")
        prefetch.start(argv)  # tokenizes on a spare core while this process imports torch and transformers
    try:
        args = parse_train_args(argv)
        if predict_only(args):  # writes only its results into --output_dir: no run folder
            return predict_main(args, dry=dry)
        source = preflight(args)
        check_eval_datasets(args)
        if is_main_process():  # another rank could find rank 0's own run in the folder already
            check_run_dir(Path(args.training.output_dir), args)
        if dry:
            if source.kind == "hub":  # the run's download refuses a missing or gated repo; ask the hub the same
                from core.model_source import check_hub_access

                check_hub_access(source.name)
            print(dry_run(args, source), end="", flush=True)
            return 0
        if source.kind == "hub":
            from core.model import resolve_source
            from core.progress import every_percent, launched_by_web_ui, print_progress

            # Download now: a typo or a gated id is refused before the run folder is written.
            # The web UI reads progress lines from the console; a terminal has the download's own bar.
            resolve_source(source.name, progress=every_percent(print_progress) if launched_by_web_ui() else None)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run_dir = Path(args.training.output_dir)
    console: Optional[ConsoleTee] = None
    if is_main_process():
        prepare_run_dir(run_dir, args)
        if not os.environ.get("TUNEFORGE_CONSOLE_CAPTURED"):
            console = ConsoleTee(run_dir / rundir.CONSOLE_LOG)
        from core.allocator import allocator_line
        from core.memory import checkpointing_line, precision_line

        print(f"[tuneforge] {allocator_line()}", flush=True)
        print(f"[tuneforge] {checkpointing_line(bool(args.training.activation_checkpointing))}", flush=True)
        print(f"[tuneforge] {precision_line(args.training)}", flush=True)
    try:
        code = run_stage(args, run_dir)
        if code == 0 and args.training.do_predict and is_main_process():
            from core.evaluate import predict_after_training

            code = predict_after_training(args)
        return code
    finally:
        close_process_group()
        if console is not None:
            console.close()


def close_process_group() -> None:
    """Tear down the ranks' process group before the interpreter exits. Left to interpreter
    shutdown, a rank of a finished two-machine gloo run was seen to abort ("terminate called
    without an active exception", exit -6), and its launcher then failed the whole run."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def prepare_run_dir(run_dir: Path, args: TrainArgs) -> None:
    """Create the run directory (preflight refused mixing a new run into a finished one)."""
    previous = rundir.read_json(run_dir / rundir.STATUS_JSON)
    if previous and previous.get("state") != "starting" and not args.training.resume_from_checkpoint:
        clear_run_dir(run_dir)  # --overwrite_output_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / rundir.RUN_YAML, yaml.safe_dump(args.config, allow_unicode=True, sort_keys=False))
    launched = rundir.read_json(run_dir / rundir.LAUNCH_JSON) or {}
    rundir.update_launch(
        run_dir,
        # A launcher (the web UI) records its argv and start time first; keep them.
        start_time=launched.get("start_time") or time.time(),
        trainer_argv=[sys.executable, *sys.argv],
        trainer_pid=os.getpid(),
        pgid=launched.get("pgid") or os.getpgid(0),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        num_machines=int(os.environ.get("GROUP_WORLD_SIZE", os.environ.get("NUM_MACHINES", "1")) or 1),
        host=socket.gethostname(),
        accelerate={k: v for k, v in os.environ.items() if k.startswith("ACCELERATE_")},
    )
    rundir.write_status(run_dir, "starting", pid=os.getpid(), stage=args.finetuning.stage)


def clear_run_dir(run_dir: Path) -> None:
    """What --overwrite_output_dir replaces: the previous run's files, not unrelated ones."""
    for name in (rundir.TRAINER_LOG, rundir.CONSOLE_LOG, rundir.STATUS_JSON, rundir.LOSS_PLOT,
                 "adapter_model.safetensors", "adapter_config.json", "model.safetensors", "trainer_state.json"):
        (run_dir / name).unlink(missing_ok=True)
    for ckpt in run_dir.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)


def stage_function(stage: str) -> Callable:
    """The training function of a stage, imported only when needed."""
    if stage == "pt":
        from core.train.pt import run_pt

        return run_pt
    if stage == "sft":
        from core.train.sft import run_sft

        return run_sft
    if stage == "rm":
        from core.train.rm import run_rm

        return run_rm
    if stage == "dpo":
        from core.train.dpo import run_dpo

        return run_dpo
    if stage == "kto":
        from core.train.kto import run_kto

        return run_kto
    if stage == "grpo":
        from core.train.grpo import run_grpo

        return run_grpo
    raise UserError(f"unknown stage '{stage}'; use pt, sft, rm, dpo, kto or grpo")


def run_stage(args: TrainArgs, run_dir: Path) -> int:
    from core.train.callbacks import Aborted, AbortSignal

    abort = AbortSignal()
    abort.install()
    main = is_main_process()
    try:
        finished = stage_function(args.finetuning.stage)(args, abort)
    except Aborted as err:
        if main:
            rundir.write_status(run_dir, "aborted", error=str(err))
        print(f"[tuneforge] aborted: {err}", file=sys.stderr, flush=True)
        return 130
    except UserError as err:
        if main:
            rundir.write_status(run_dir, "failed", error=str(err))
        print(f"[tuneforge] error: {err}", file=sys.stderr, flush=True)
        return 2
    except BaseException as err:  # noqa: BLE001 - a crash must still end the run as failed
        line = crash_line(err)
        if main and disk_full(err, run_dir):
            line = disk_full_line(run_dir, line)
        if main:
            try:
                rundir.write_status(run_dir, "failed", error=line)
            except OSError as status_err:  # still no room: the UI reads the line from console.log instead
                print(f"[tuneforge] could not write status.json: {status_err}", file=sys.stderr, flush=True)
        traceback.print_exc()
        print(f"[tuneforge] error: {line}", file=sys.stderr, flush=True)
        return 1
    if main:
        state = "finished" if finished else "aborted"
        rundir.write_status(run_dir, state, error=None if finished else "aborted by request; a checkpoint was saved")
        if args.finetuning.plot_loss:
            write_plot(run_dir, args.training.logging_steps)
    return 0 if finished else 130


OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
DISK_FULL_MARKERS = ("no space left on device", "disk quota exceeded", "file too large", "storagefull")


def crash_line(err: BaseException) -> str:
    """One line saying why the trainer crashed; out-of-memory says what to lower."""
    text = str(err).strip()
    line = f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".strip().rstrip(":")
    if isinstance(err, MemoryError) or any(m in text.lower() for m in OOM_MARKERS):
        line = (f"out of memory ({line[:300]}); lower --per_device_train_batch_size, --cutoff_len or --lora_rank, "
                "or use --quantization_bit 4")
    return line


def disk_full(err: BaseException, run_dir: Path) -> bool:
    """A write failed for lack of space (the error says so, or the run's disk is full now)."""
    chain = [err, err.__cause__, err.__context__]
    if any(isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS for e in chain):
        return True
    if any(m in str(e).lower() for e in chain if e is not None for m in DISK_FULL_MARKERS):
        return True
    # torch.save reports only "file write failed": look at the disk itself.
    try:
        return "write" in str(err).lower() and shutil.disk_usage(run_dir).free < 1 << 20
    except OSError:
        return False


def disk_full_line(run_dir: Path, line: str) -> str:
    """Free the half-written checkpoint (so the run folder can record why) and say what is intact."""
    removed = [p.name for p in rundir.checkpoints(run_dir, complete=False) if not (p / rundir.CHECKPOINT_DONE).is_file()]
    for name in removed:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    kept = rundir.checkpoints(run_dir, complete=True)
    saved = f"{kept[-1].name} is intact (resume from it)" if kept else "no earlier checkpoint exists"
    dropped = f"; the half-written {', '.join(removed)} was removed" if removed else ""
    return f"disk full while writing to {run_dir} ({line[:200]}){dropped}; {saved}; free some space and resume"


def write_plot(run_dir: Path, logging_steps: Optional[float] = None) -> None:
    from core.plots import write_loss_html

    path = write_loss_html(run_dir)
    if path is None:  # a run shorter than logging_steps logs no step, so there is no curve to draw
        every = f" (--logging_steps {logging_steps:g})" if logging_steps else ""
        print(f"[tuneforge] no loss plot: the run logged no step; it ended before the first logging step{every}",
              flush=True)
        return
    print(f"[tuneforge] loss plot: {path}", flush=True)


class ConsoleTee:
    """Copy this process's stdout and stderr (file descriptors, so C code too) into console.log.

    The web UI redirects the whole launcher into console.log itself and sets
    TUNEFORGE_CONSOLE_CAPTURED; a run started from a terminal gets the same file this way.
    """

    def __init__(self, path: Path):
        self.file = open(path, "ab", buffering=0)
        self.threads = []
        self.saved = {}
        for fd in (1, 2):
            sys.stdout.flush() if fd == 1 else sys.stderr.flush()
            read_end, write_end = os.pipe()
            self.saved[fd] = os.dup(fd)
            os.dup2(write_end, fd)
            os.close(write_end)
            thread = threading.Thread(target=self._pump, args=(read_end, self.saved[fd]), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _pump(self, read_end: int, original: int) -> None:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            os.write(original, chunk)
            try:
                self.file.write(chunk)
            except (OSError, ValueError):  # ValueError: closed, while a tracker's child process still writes
                # Disk full: keep draining the pipe (else the trainer blocks on its next print);
                # the terminal still gets every line and the file resumes once there is room.
                pass
        os.close(read_end)

    def close(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in self.saved.items():
            os.dup2(original, fd)  # closes the pipe's last write end, so the pump ends
        for thread in self.threads:
            thread.join(timeout=5)
        self.file.close()
