"""Tokenize the training data in a helper process while the trainer imports its libraries.

A cold start spends ~3 s loading torch, transformers and peft on one core before it tokenizes
(~1 s for 2,000 records). Tokenizing needs neither torch nor the model, so the trainer first
starts `python -m core.data.prefetch ARGV` on a spare core: it reads the same model, data and
stage arguments, tokenizes with torch kept out (its own imports take ~1 s) and writes the
datasets cache file that the trainer then reads (core/data/preprocess.py).

The helper is only a head start. The trainer waits for it before it reads the data, so the
same cache file is never written twice at once; if the helper failed, the trainer tokenizes
and reports any error itself, exactly as without it. The helper prints one word on stdout,
TOKENIZED or CACHED, and nothing else; its stderr is discarded for that reason.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

TOKENIZED, CACHED = "tokenized", "cached"
# Below about 1 MB of records, tokenizing takes less time than the helper's own start-up.
MIN_DATA_BYTES = 1 << 20
ROOT = Path(__file__).resolve().parents[2]

_helper: Optional[subprocess.Popen] = None


def start(argv: list[str]) -> None:
    """Start the helper for a train command line, when it can gain time."""
    global _helper
    if not worth_starting(argv):
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    _helper = subprocess.Popen([sys.executable, "-m", "core.data.prefetch", *argv], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    atexit.register(stop)


def worth_starting(argv: list[str]) -> bool:
    """The first process of its node (the others read the cache it writes), a spare core, and
    local dataset files large enough to be worth it."""
    if os.environ.get("LOCAL_RANK", "0") != "0" or available_cores() < 2:
        return False
    return data_bytes(argv) >= MIN_DATA_BYTES


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def data_bytes(argv: list[str]) -> int:
    """Size of the named datasets' local files (0 when any is unknown: the trainer will say why)."""
    from core.args import DataArguments, raw_value
    from core.data.registry import get_spec, resolve_inside
    from core.errors import UserError

    names = [n.strip() for n in str(raw_value(argv, "dataset") or "").split(",") if n.strip()]
    dataset_dir = raw_value(argv, "dataset_dir") or DataArguments.dataset_dir
    total = 0
    try:
        for name in names:
            spec = get_spec(dataset_dir, name)
            if not spec.file_name:
                return 0
            path = resolve_inside(dataset_dir, spec.file_name, f"dataset {name}")
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            total += sum(p.stat().st_size for p in files)
    except (UserError, OSError):
        return 0
    return total


def wait() -> Optional[str]:
    """TOKENIZED or CACHED once the helper is done; None when none ran or it failed."""
    global _helper
    if _helper is None:
        return None
    out, _ = _helper.communicate()
    ok = _helper.returncode == 0
    _helper = None
    word = out.strip() if ok else ""
    return word if word in (TOKENIZED, CACHED) else None


def stop() -> None:
    """The trainer ends before it read the data (a refused run): stop the helper."""
    if _helper is not None and _helper.poll() is None:
        _helper.terminate()
        _helper.wait()


# ---------------------------------------------------------------------------- the helper process


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # datasets removes its half-written temp file on KeyboardInterrupt


def main(argv: list[str]) -> int:
    import gc

    gc.disable()  # a short-lived process: see core/startup.py
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from core.args import parse_data_args
        from core.data.preprocess import tokenize
        from core.model import load_tokenizer

        # The tokenizer needs no torch, but transformers imports it when it can (~2 s): hide it
        # while transformers decides (it remembers), then unhide it, since datasets reads an
        # entry in sys.modules as "torch is loaded".
        sys.modules["torch"] = None  # type: ignore[assignment]
        model_args, data_args, finetuning_args = parse_data_args(argv)
        tokenizer = load_tokenizer(model_args)
        del sys.modules["torch"]
        template = data_args.template if finetuning_args.stage != "pt" else None
        _, cache_file = tokenize(data_args.dataset_dir, data_args.dataset, finetuning_args.stage, tokenizer, template, data_args)
    except BaseException:  # noqa: BLE001 - the trainer repeats the work and reports what went wrong
        return 1
    print(CACHED if cache_file is not None else TOKENIZED, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
