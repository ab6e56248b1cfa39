"""The Train tab's Distributed group in a real browser: two machines, an address and a port put
accelerate's machine flags into the preview at once, the page shows the command for the other
machine, and a port out of range is one line under the group (the command is cleared, since it
would not be what runs)."""

from __future__ import annotations

import shlex

import pytest

from tests.e2e.test_webui_e2e import read_value, set_value, wait_until

pytestmark = [pytest.mark.e2e]

EVENT_S = 30  # one event round trip of the app (it builds the command; nothing heavy)


def command_text(page) -> str:
    return read_value(page, "train-command")


def machines_text(page) -> str:
    return page.locator("#train-machine-commands").inner_text()


def test_two_machines_show_the_flags_in_the_preview_and_the_other_machines_command(page):
    page.locator("#group-distributed").get_by_text("Distributed").first.click()
    page.wait_for_selector("#train-machines", state="visible")
    # This machine has no GPU: the picker says so and offers none.
    assert "No GPU found" in page.locator("#train-gpus").inner_text()

    set_value(page, "train-main-ip", "10.0.0.5")
    set_value(page, "train-main-port", "29555")
    set_value(page, "train-machines", "2")
    flags = "--num_machines 2 --machine_rank 0 --main_process_ip 10.0.0.5 --main_process_port 29555"
    wait_until(page, lambda: flags in command_text(page), EVENT_S, "the machine flags in the preview",
               status=command_text)
    here = shlex.split(command_text(page))
    assert here[here.index("--num_processes") + 1] == "2" and "--multi_gpu" in here  # one on each machine
    assert here[-3:-1] == ["launch.py", "train"] and here[-1].endswith("/run.yaml")

    wait_until(page, lambda: "--machine_rank 1" in machines_text(page), EVENT_S, "the other machine's command",
               status=machines_text)
    shown = machines_text(page)
    assert "A run on 2 machines" in shown and "Machine 1" in shown and here[-1] in shown
    other = next(line for line in shown.splitlines() if "--machine_rank 1" in line)
    theirs = shlex.split(other.partition(" && ")[2])
    assert theirs == [("1" if word == "0" and prev == "--machine_rank" else word)
                      for prev, word in zip([""] + here, here)]  # the same command, as machine 1

    # A port out of range: one line that says why, and no command that would not run.
    set_value(page, "train-main-port", "70000")
    wait_until(page, lambda: "65535" in machines_text(page), EVENT_S, "the port refusal", status=machines_text)
    refusal = machines_text(page).strip()
    assert refusal == "Cannot launch: main machine port must be from 1 to 65535, got 70000"
    assert "Traceback" not in page.content()
    wait_until(page, lambda: command_text(page) == "", EVENT_S, "the command cleared", status=command_text)

    # Back to a valid port: the preview follows.
    set_value(page, "train-main-port", "29556")
    wait_until(page, lambda: "--main_process_port 29556" in command_text(page), EVENT_S, "the fixed preview",
               status=command_text)
