"""Shared fixtures: the demo model (built once, locally), a private copy of data/, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))

# Nothing in the tests may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(args: list[str], cwd: Path = ROOT, timeout: float = 600, env: dict | None = None) -> Result:
    """Run `python launch.py ARGS` (or any argv starting with an executable) and capture it."""
    argv = args if args[0] in (PYTHON, ACCELERATE) else [PYTHON, str(ROOT / "launch.py"), *args]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """data/models/demo, built offline on first use (the README's first command builds it too)."""
    from core.demo_model import build_demo_model

    return Path(build_demo_model(out_dir=str(ROOT / "data" / "models" / "demo"), data_dir=str(ROOT / "data")))


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled datasets, so a test may register or break files freely."""
    target = tmp_path / "data"
    shutil.copytree(ROOT / "data", target, ignore=shutil.ignore_patterns("models"))
    return target


def assert_one_line_refusal(result: Result) -> str:
    """A refused input: non-zero exit, no traceback, one `error:` line that says what is wrong."""
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]
