"""Web UI latency in a real browser (Playwright + the system Chromium).

    python -m tests.bench.ui_latency [--runs 3] [--rows 10] [--no-lf]

1. App start: process start of `python launch.py --port P` to a usable page, i.e. the Train
   tab's Start button visible in a browser that opened the page as soon as the port answered
   (the browser itself is started beforehand, not timed). The same for LLaMA-Factory's
   `llamafactory-cli webui` when its venv exists ($VENV, default /tmp/vlf).
2. Logged step to chart: a fake live run under the app's saves folder (status running, its pid
   this process), watched by the page; one row is appended to its trainer_log.jsonl at a time,
   and the time until the chart's point count grows is recorded.
Medians are printed; the JSON goes to tests/bench/results/ui_latency-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "tests" / "bench" / "results"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
PLOT_POINTS_JS = """() => {
  const el = document.querySelector('#train-plot [data-testid="plotly"]') || document.querySelector('#train-plot .js-plotly-plot');
  return el && el.data && el.data[0] && el.data[0].x ? el.data[0].x.length : 0;
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def time_to_usable(browser, argv: list[str], cwd: Path, env: dict[str, str], port: int, start_button,
                   log: Path) -> dict[str, float]:
    """Process start -> HTTP 200 -> Start button visible, in seconds."""
    with open(log, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url, proc, 180)
            t_http = time.monotonic() - t0
            page = browser.new_page()
            page.goto(url)
            start_button(page).wait_for(state="visible", timeout=180_000)
            t_usable = time.monotonic() - t0
            page.close()
        finally:
            stop(proc)
    return {"http_s": t_http, "usable_s": t_usable}


def fake_live_run(saves: Path) -> Path:
    """A run folder the app re-attaches as live: status running, launched by this (alive) process."""
    run = saves / "bench-live-run"
    run.mkdir(parents=True, exist_ok=True)
    now = time.time()
    (run / "status.json").write_text(json.dumps({"state": "running", "error": None, "updated": now, "pid": os.getpid(),
                                                 "total_steps": 1000}), encoding="utf-8")
    (run / "launch.json").write_text(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0), "start_time": now,
                                                 "argv": ["bench"]}), encoding="utf-8")
    (run / "run.yaml").write_text("stage: sft\n", encoding="utf-8")
    (run / "trainer_log.jsonl").write_text(json.dumps(log_row(1, now)) + "\n", encoding="utf-8")
    (run / "console.log").write_text("bench\n", encoding="utf-8")
    return run


def log_row(step: int, started: float) -> dict[str, Any]:
    return {"step": step, "total_steps": 1000, "epoch": step / 1000, "loss": 9.0 - step * 0.01, "eval_loss": None,
            "learning_rate": 5e-5, "grad_norm": 0.3, "tokens": step * 1600, "elapsed_s": time.time() - started,
            "remaining_s": None, "percent": step / 10}


def chart_latency(browser, env: dict[str, str], work: Path, rows: int) -> list[float]:
    saves = work / "saves-live"
    run = fake_live_run(saves)
    port = free_port()
    argv = [sys.executable, str(REPO / "launch.py"), "--port", str(port), "--saves_dir", str(saves), "--no_demo_build"]
    with open(work / "app-live.log", "wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    latencies = []
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc, 180)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function(f"({PLOT_POINTS_JS})() >= 1", timeout=60_000)
        started = time.time()
        rng = random.Random(0)
        for step in range(2, rows + 2):
            page.wait_for_timeout(rng.uniform(200, 700))  # land anywhere in the timer's period
            before = page.evaluate(PLOT_POINTS_JS)
            t0 = time.monotonic()
            with open(run / "trainer_log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(log_row(step, started)) + "\n")
            page.wait_for_function(f"({PLOT_POINTS_JS})() > {before}", timeout=30_000, polling=10)
            latencies.append(time.monotonic() - t0)
        page.close()
    finally:
        stop(proc)
        (run / "status.json").write_text(json.dumps({"state": "finished", "error": None, "updated": time.time()}),
                                         encoding="utf-8")
    return latencies


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.ui_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10, help="logged rows timed to the chart")
    parser.add_argument("--no-lf", action="store_true")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    venv = Path(os.environ.get("VENV", "/tmp/vlf"))
    with_lf = not args.no_lf and (venv / "bin" / "llamafactory-cli").exists()
    work = Path(tempfile.mkdtemp(prefix="tf-ui-bench-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "BROWSER": "true",
           "MPLCONFIGDIR": str(work / "mpl"), "PYTHONUNBUFFERED": "1"}
    result: dict[str, Any] = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": args.runs, "start": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            tools = {"tuneforge": []} | ({"llamafactory": []} if with_lf else {})
            for i in range(args.runs):
                for tool in tools:
                    port = free_port()
                    load = os.getloadavg()[0]
                    if tool == "tuneforge":
                        saves = work / f"saves-{i}"
                        cmd = [sys.executable, str(REPO / "launch.py"), "--port", str(port), "--saves_dir", str(saves),
                               "--no_demo_build"]
                        m = time_to_usable(browser, cmd, REPO, env, port,
                                           lambda page: page.locator("#train-start"), work / f"tf-{i}.log")
                    else:
                        cwd = work / f"lf-{i}"
                        cwd.mkdir()
                        lf_env = {**env, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
                                  "HF_HOME": str(cwd / "hf"), "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}
                        m = time_to_usable(browser, [str(venv / "bin" / "llamafactory-cli"), "webui"], cwd, lf_env, port,
                                           lambda page: page.get_by_role("button", name="Start", exact=True),
                                           work / f"lf-{i}.log")
                    m["load"] = load
                    tools[tool].append(m)
                    print(f"start {tool} #{i + 1}: HTTP {m['http_s']:.2f} s, usable {m['usable_s']:.2f} s (load {load:.2f})",
                          flush=True)
            result["start"] = tools
            lat = chart_latency(browser, env, work, args.rows)
            result["chart_latency_s"] = lat
        finally:
            browser.close()
    print()
    medians = {tool: statistics.median(r["usable_s"] for r in runs) for tool, runs in result["start"].items()}
    result["start_usable_median_s"] = medians
    for tool, value in medians.items():
        print(f"{tool:14} start to usable page (median of {args.runs}): {value:.2f} s")
    if "llamafactory" in medians:
        result["start_ratio"] = medians["tuneforge"] / medians["llamafactory"]
        print(f"ratio TuneForge / LLaMA-Factory: {result['start_ratio']:.2f} (goal <= 0.5)")
    lat = result["chart_latency_s"]
    result["chart_latency_median_s"] = statistics.median(lat)
    print(f"logged step -> chart point: median {statistics.median(lat):.3f} s, max {max(lat):.3f} s over {len(lat)} rows")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"ui_latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    shutil.copyfile(path, RESULTS / "ui_latency-latest.json")
    shutil.rmtree(work, ignore_errors=True)
    print(f"summary: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
