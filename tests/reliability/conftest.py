"""Fixtures of the reliability tests: app servers started and killed at will, an in-process app
whose context the tabs' handlers are called with, snapshots of the files a refusal must not touch.

The browser fixture is the one of tests/e2e (Debian's Chromium through Playwright).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import _free_port, _kill_runs


# ---------------------------------------------------------------------------- app servers


@dataclass
class AppProc:
    """One `launch.py webui` process with its own folders."""

    url: str
    port: int
    proc: subprocess.Popen
    saves: Path
    data: Path
    log: Path
    argv: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def get(self, path: str, timeout: float = 10, headers: Optional[dict] = None) -> tuple[int, bytes]:
        return http(self.url.rstrip("/") + path, timeout=timeout, headers=headers)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def http(url: str, method: str = "GET", data: Optional[bytes] = None, headers: Optional[dict] = None,
         timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are answers, not exceptions."""
    import urllib.error

    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def start_app(base: Path, demo_model: Path, *extra: str, saves: Optional[Path] = None, data: Optional[Path] = None,
              port: Optional[int] = None, wait_status: tuple[int, ...] = (200,), preexec: Optional[Callable] = None) -> AppProc:
    """Start the real app (`python launch.py webui ...`) and wait until it answers."""
    base.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = base / "data"
        if not data.exists():
            shutil.copytree(ROOT / "data", data, ignore=shutil.ignore_patterns("models"))
    saves = saves or base / "saves"
    port = port or _free_port()
    log = base / f"app-{port}.log"
    argv = [sys.executable, str(ROOT / "launch.py"), "webui", "--port", str(port), "--saves_dir", str(saves),
            "--dataset_dir", str(data), "--demo_model", str(demo_model), *extra]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}, preexec_fn=preexec)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while True:
        try:
            status, _ = http(url, timeout=2)
            if status in wait_status:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the app did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    return AppProc(url, port, proc, saves, data, log, argv)


@pytest.fixture
def apps(tmp_path):
    """Start apps with `apps.start(...)`; every app and every run they left is ended afterwards."""

    class Apps:
        def __init__(self):
            self.started: list[AppProc] = []

        def start(self, demo_model: Path, *extra: str, **kwargs: Any) -> AppProc:
            app = start_app(kwargs.pop("base", tmp_path / "app"), demo_model, *extra, **kwargs)
            self.started.append(app)
            return app

    holder = Apps()
    yield holder
    for app in holder.started:
        _kill_runs(app.saves)
        app.stop()


# ---------------------------------------------------------------------------- in-process handlers


@dataclass
class UI:
    """An app built in this process (no server): its context, for calling the tabs' handlers by name."""

    ctx: Any
    demo: Any


@pytest.fixture
def ui(tmp_path, dataset_dir, demo_model):
    """The real Blocks over a private data/ copy and saves folder, built in this process."""
    from webui import app as webapp

    saves = tmp_path / "saves"
    args = webapp.parse_args(["--saves_dir", str(saves), "--dataset_dir", str(dataset_dir),
                              "--demo_model", str(demo_model), "--no_demo_build"])
    ctx = webapp.make_context(args)
    demo = webapp.build_app(ctx)
    yield UI(ctx, demo)
    ctx.runner.close()


def call_handler(fn: Callable, *args: Any) -> tuple[Any, list[str]]:
    """Call a handler as Gradio would; returns (result, warnings shown to the user).

    Outside a request gr.Warning becomes a Python warning: a refusal the user would see as a toast.
    An exception escaping the handler fails the test (the user would see a red error box).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
    shown = [str(w.message) for w in caught if w.category is UserWarning]
    return result, shown


# ---------------------------------------------------------------------------- snapshots


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under roots (hidden ones too) with the SHA-1 of its bytes."""
    out: dict[str, str] = {}
    for root in roots:
        root = Path(root)
        if root.is_file():
            out[str(root)] = hashlib.sha1(root.read_bytes()).hexdigest()
            continue
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.name != ".dataset_info.json.lock":
                out[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return out


def one_line(message: str) -> str:
    """A refusal shown to a user: one line, no traceback."""
    text = str(message).strip()
    assert text, "an empty refusal"
    assert "\n" not in text, text
    assert "Traceback" not in text, text
    return text


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    value = predicate()
    assert value, f"timed out after {timeout:.0f} s waiting for {what}"
    return value


def read_status(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def process_tree(pid: int) -> set[int]:
    """pid and every process below it (by parent links), alive now."""
    import psutil

    try:
        return {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}
    except psutil.NoSuchProcess:
        return {pid}
