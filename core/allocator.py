"""Run the trainer on tcmalloc, where the system has it (Linux).

On the CPU, torch allocates tensors with the C library's malloc. glibc's keeps the memory that a
forward pass frees between the tensors it keeps: small long-lived allocations (autograd's
nodes, Python objects) land in the holes, the next layer's activations no longer fit there, and
the heap grows instead. Measured on SmolLM2-135M at 8 x 512 tokens with activation checkpointing:
peak RSS 3.4 GB on glibc, 1.5 GB on tcmalloc, with the same tensors alive; on the benchmark's toy
model 1.39 GB against 0.97 GB, and a step 15 % faster. (glibc returns it with a fixed mmap
threshold too, but every large tensor then costs fresh page faults: a step was 25-70 % slower.)

tcmalloc comes with the system (Debian and Ubuntu: `apt install libtcmalloc-minimal4`), not with
pip, and only takes effect when loaded before the C library's malloc is first used: so the train
command starts itself again with LD_PRELOAD (PyTorch's own CPU launcher, torch.backends.xeon.
run_cpu, does the same). TUNEFORGE_ALLOCATOR=system keeps glibc's.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from functools import lru_cache
from typing import Optional

ENV_SWITCH = "TUNEFORGE_ALLOCATOR"  # "system": keep the C library's malloc
INSTALL_HINT = "apt install libtcmalloc-minimal4 (Debian, Ubuntu) or gperftools (other systems)"


@lru_cache(maxsize=None)
def tcmalloc_library() -> Optional[str]:
    """The tcmalloc shared library the dynamic loader finds, or None (not Linux, not installed)."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.util.find_library("tcmalloc_minimal") or ctypes.util.find_library("tcmalloc")


def preloaded() -> bool:
    return "tcmalloc" in os.environ.get("LD_PRELOAD", "")


def switched_off() -> bool:
    return os.environ.get(ENV_SWITCH) == "system"


def library_to_preload() -> Optional[str]:
    """The tcmalloc library `launch.py train` restarts itself with, or None: already loaded,
    switched off, or not installed."""
    if preloaded() or switched_off():
        return None
    return tcmalloc_library()


def trainer_uses_tcmalloc() -> bool:
    """Whether `launch.py train` will run on tcmalloc here (the memory estimate depends on it)."""
    return preloaded() or library_to_preload() is not None


def restart_on_tcmalloc(argv: list[str]) -> None:
    """Replace this process by the same command with tcmalloc preloaded, if that is to be done;
    else return. Call first thing, before torch is imported."""
    library = library_to_preload()
    if library is None:
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [library, env.get("LD_PRELOAD", "")]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)


def allocator_line() -> str:
    """One line for the run's console: which allocator, and how to get tcmalloc where it is missing."""
    if preloaded():
        return "memory allocator: tcmalloc"
    if not sys.platform.startswith("linux") or switched_off():
        return "memory allocator: the system's"
    return f"memory allocator: glibc's (peak memory can be up to twice the tensors'; for less: {INSTALL_HINT})"
