"""Browser end-to-end fixtures: the real app (`launch.py webui`) on a free port, Debian's Chromium.

The app runs in a subprocess with a temporary saves folder and a private copy of data/; the demo
model is the shared one (built once by tests/conftest.py). A missing Chromium FAILS the tests:
CI must not pass by skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

@dataclass
class App:
    url: str
    saves: Path
    data: Path
    demo_model: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_runs(saves: Path) -> None:
    """End any run the tests left behind (their process groups, recorded in launch.json)."""
    for launch in saves.glob("**/launch.json"):
        try:
            pgid = int(json.loads(launch.read_text()).get("pgid") or 0)
        except (ValueError, OSError):
            continue
        if pgid and pgid != os.getpgid(0):  # a CLI run started by a test shares the test's group
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="session")
def app(tmp_path_factory, demo_model) -> App:
    base = tmp_path_factory.mktemp("webui")
    data = base / "data"
    shutil.copytree(ROOT / "data", data, ignore=shutil.ignore_patterns("models"))
    saves = base / "saves"
    port = _free_port()
    log = base / "app.log"
    argv = [sys.executable, str(ROOT / "launch.py"), "webui", "--port", str(port), "--saves_dir", str(saves),
            "--dataset_dir", str(data), "--demo_model", str(demo_model)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the app did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    yield App(url, saves, data, Path(demo_model), log)
    _kill_runs(saves)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    from tests.e2e.test_webui_e2e import load_factor

    page.set_default_timeout(30_000 * load_factor())  # a click waits on a page that answers as slowly as the machine
    page.goto(app.url)
    page.wait_for_selector("#tf-ready [data-ready]", state="attached")  # the session is restored
    yield page
    context.close()
