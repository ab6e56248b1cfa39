"""Start-up runs with the garbage collector paused; every way out of start-up turns it back on."""

from __future__ import annotations

import gc

from core import startup


def test_done_freezes_start_up_objects_and_enables_the_collector():
    gc.unfreeze()
    startup.begin()
    assert not gc.isenabled()
    kept = [object() for _ in range(1000)]
    startup.done()
    assert gc.isenabled() and gc.get_freeze_count() >= len(kept)
    startup.done()  # twice is harmless
    assert gc.isenabled()
    gc.unfreeze()


def test_a_refused_train_command_leaves_the_collector_on(capsys):
    from core.train.run import main

    assert main(["--no_such_flag", "1"]) == 2
    assert "unknown flag '--no_such_flag'" in capsys.readouterr().err
    assert gc.isenabled()
    gc.unfreeze()


def test_a_refused_web_ui_leaves_the_collector_on(capsys):
    from webui.app import main

    assert main(["--host", "0.0.0.0"]) == 2
    assert "without a password" in capsys.readouterr().err
    assert gc.isenabled()
    gc.unfreeze()
