"""Load and restarts, in real browsers against real app processes.

- Five sessions watch one live run: each sees every logged step, and the app's own CPU time
  stays small next to the trainer's (user + system time from psutil, no wall-clock assertions).
- The app killed and started again while a run trains: the run goes on, and the new app
  re-attaches it (watch and Abort work).
"""

from __future__ import annotations

import json
import signal
import time

import psutil
import pytest

from core import rundir
from tests.e2e.test_webui_e2e import (load_factor, points, run_dir_of, set_value, setup_run, status_text, wait_until,
                                      work_bound)
from tests.reliability.conftest import process_tree, read_status

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS_JS = """() => {
  const el = document.querySelector('#train-plot .js-plotly-plot') || document.querySelector('#train-plot [data-testid="plotly"]');
  return el && el.data && el.data[0] && el.data[0].x ? Array.from(el.data[0].x) : [];
}"""


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def cpu_of_tree(pids: set[int]) -> dict[int, float]:
    """CPU seconds of each process still alive (a rank or helper may exit between listing and reading)."""
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except psutil.Error:
            continue
    return out


# Trainer CPU seconds the five sessions watch for (about 6 logged steps at batch 32 on the demo model).
WINDOW_CPU_S = 10.0


def open_pages(browser, app, count: int, bound_s: float = 60) -> list:
    """[(context, page)]: count browsers that open the app at once (as users do, not one after
    another), each page loaded and its session restored within bound_s (stretched by the
    machine's load); the time until every one was ready is each page's load_s."""
    sessions = []
    for _ in range(count):
        context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(bound_s * load_factor() * 1000)
        sessions.append((context, page))
    started = time.time()
    for _, page in sessions:
        page.goto(app.url, wait_until="commit")  # the request is made; the pages then load side by side
    for _, page in sessions:
        page.wait_for_selector("#tf-ready [data-ready]", state="attached")
    for _, page in sessions:
        page.load_s = time.time() - started
    return sessions


def open_page(browser, app, bound_s: float = 60):
    """(context, page): one browser with the app loaded, as open_pages."""
    return open_pages(browser, app, 1, bound_s)[0]


def test_five_sessions_watch_one_run_and_the_app_stays_light(apps, browser, demo_model):
    app = apps.start(demo_model, "--no_demo_build")
    sessions = [open_page(browser, app)]
    setup_run(sessions[0][1], 2000)  # far more steps than the window: the run is aborted after it
    # Larger batches: more work per logged step, so that the window holds a few steps of it.
    set_value(sessions[0][1], "field-per_device_train_batch_size", "32")
    run_dir = run_dir_of(sessions[0][1], app)
    pages = [sessions[0][1]]
    pages[0].locator("#train-start").click()
    wait_until(pages[0], lambda: (run_dir / "launch.json").exists(), 30, "the run to start")
    launcher = rundir.read_json(run_dir / "launch.json")["pid"]
    # Four more browsers open the page at once while the run is live. Their loads share the cores
    # with the run: the bound is the first load's time on this machine, many times over.
    first_load_s = sessions[0][1].load_s
    sessions += open_pages(browser, app, 4, work_bound(first_load_s, 40, 240) / load_factor())
    pages = [page for _, page in sessions]
    # The window opens at a logged step (the run trains, the pages stream) and closes once the
    # trainer has done WINDOW_CPU_S of work and logged a few more steps: a measure of work, so a
    # loaded machine stretches the window instead of failing it.
    wait_until(pages[0], lambda: len(rundir.read_log_rows(run_dir)) >= 1, 240, "the first logged step")
    app_cpu_start = cpu_seconds(app.proc.pid)
    trainer_start = cpu_of_tree(process_tree(launcher) - {app.proc.pid})
    trainer_cpu: dict[int, float] = dict(trainer_start)
    rows_at_start = len(rundir.read_log_rows(run_dir))

    def trainer_work() -> float:
        trainer_cpu.update(cpu_of_tree(process_tree(launcher) - {app.proc.pid}))
        return sum(cpu - trainer_start.get(pid, 0.0) for pid, cpu in trainer_cpu.items())

    while trainer_work() < WINDOW_CPU_S or len(rundir.read_log_rows(run_dir)) < rows_at_start + 3:
        assert read_status(run_dir).get("state") == "running", (run_dir / "console.log").read_text()[-2000:]
        pages[0].wait_for_timeout(250)  # keeps every page's events flowing while we sample
    trainer, app_cpu = trainer_work(), cpu_seconds(app.proc.pid) - app_cpu_start
    pages[0].locator("#train-abort").click()
    wait_until(pages[0], lambda: read_status(run_dir).get("state") == "aborted", 60, "the aborted state")
    expected = [row["step"] for row in rundir.read_log_rows(run_dir) if "loss" in row]
    assert len(expected) >= rows_at_start + 3, expected
    # A page shows the last steps within a few of its timer's ticks; a page load's time bounds a tick's work.
    for i, page in enumerate(pages):
        wait_until(page, lambda: page.evaluate(STEPS_JS) == expected, max(30, 5 * first_load_s),
                   f"session {i} to show every step")
    print(f"app CPU {app_cpu:.2f} s, trainer CPU {trainer:.2f} s while 5 sessions watched steps "
          f"{rows_at_start + 1}..{len(expected)}")
    assert app_cpu < 0.5 * trainer, (app_cpu, trainer)
    for context, _ in sessions:
        context.close()


def test_restarting_the_app_while_a_run_trains_keeps_and_reattaches_it(apps, browser, demo_model, tmp_path):
    first = apps.start(demo_model, "--no_demo_build", base=tmp_path / "first")
    context, page = open_page(browser, first)
    setup_run(page, 400)
    run_dir = run_dir_of(page, first)
    page.locator("#train-start").click()
    wait_until(page, lambda: len(rundir.read_log_rows(run_dir)) >= 2, 240, "two logged steps")
    context.close()
    first.stop(signal.SIGKILL)  # the app dies; its run is in a session of its own
    rows_at_kill = len(rundir.read_log_rows(run_dir))

    second = apps.start(demo_model, "--no_demo_build", base=tmp_path / "second", saves=first.saves, data=first.data)
    deadline = time.time() + 60
    while len(rundir.read_log_rows(run_dir)) <= rows_at_kill and time.time() < deadline:
        time.sleep(0.2)
    assert len(rundir.read_log_rows(run_dir)) > rows_at_kill, "the run kept training while the app was down"
    assert rundir.run_info(run_dir).state == "running"
    context, page = open_page(browser, second)
    wait_until(page, lambda: run_dir.name in status_text(page), 30, "the new app to show the live run")
    wait_until(page, lambda: points(page) >= rows_at_kill, 30, "the chart of the re-attached run")
    before = points(page)
    wait_until(page, lambda: points(page) > before, 60, "new points streamed by the new app")
    page.locator("#train-abort").click()  # the new app controls a run it did not start
    wait_until(page, lambda: "aborted" in status_text(page), 60, "the aborted state")
    launch = json.loads((run_dir / "launch.json").read_text())
    from webui.runner import run_processes

    wait_until(page, lambda: not run_processes(launch["pgid"], launch.get("run_id")), 10, "every process of the run to end")
    context.close()
