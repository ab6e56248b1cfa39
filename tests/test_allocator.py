"""`launch.py train` runs on tcmalloc where the system has it (core/allocator.py), and its console
says which allocator it runs on, with how to get tcmalloc where it is missing. (.ci/run installs
libtcmalloc-minimal4; what tcmalloc saves is measured by tests/test_memory.py's real runs.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.allocator import ENV_SWITCH, INSTALL_HINT, tcmalloc_library
from tests.conftest import ROOT

# Started as a script: restarts itself as `launch.py train` does, then reports what it runs on.
PROBE = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
print('start', os.getpid(), flush=True)
from core.allocator import restart_on_tcmalloc
restart_on_tcmalloc(sys.argv)
print('tcmalloc-mapped', 'tcmalloc' in open('/proc/self/maps').read(), flush=True)
"""


def run_probe(script, **env_extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", ENV_SWITCH)}
    out = subprocess.run([sys.executable, str(script)], env={**env, **env_extra}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(tcmalloc_library() is None, reason="tcmalloc is not installed on this machine")
def test_the_trainer_restarts_itself_once_on_tcmalloc_unless_switched_off(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    words = run_probe(script)
    # The same process (exec keeps the pid) started twice, then ran on tcmalloc.
    assert words[0::2] == ["start", "start", "tcmalloc-mapped"] and words[1] == words[3] and words[5] == "True", words
    words = run_probe(script, **{ENV_SWITCH: "system"})
    assert words[0::2] == ["start", "tcmalloc-mapped"] and words[3] == "False", words


def test_a_run_says_which_allocator_it_runs_on(demo_sft_run):
    console = (demo_sft_run / "console.log").read_text(encoding="utf-8")
    lines = [line for line in console.splitlines() if "memory allocator:" in line]
    assert len(lines) == 1, console[:2000]
    if tcmalloc_library() is not None:
        assert lines[0] == "[tuneforge] memory allocator: tcmalloc"
    else:
        assert INSTALL_HINT in lines[0]
