"""What every tab shares: the app's folders, the runner, the demo-model builder, cross-tab components.

One AppContext per app server. Nothing here imports torch: the demo model is built in a
subprocess, whose progress lines the Train tab shows.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from core.progress import read_progress
from webui.paths import ROOT
from webui.runner import Runner


class DemoBuilder:
    """Builds the demo model in a subprocess (torch stays out of the app process)."""

    def __init__(self, out_dir: Path, data_dir: Path):
        self.out_dir = Path(out_dir)
        self.data_dir = Path(data_dir)
        self.fraction = 0.0
        self.message = ""
        self.error: Optional[str] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def ready(self) -> bool:
        from core.demo_model import is_complete

        return is_complete(self.out_dir)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running() or self.ready():
                return
            self.error, self.fraction, self.message = None, 0.0, "starting"
            self._thread = threading.Thread(target=self._build, name="demo-model", daemon=True)
            self._thread.start()

    def _build(self) -> None:
        argv = [sys.executable, "-m", "webui.demo_build", str(self.out_dir), str(self.data_dir)]
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            progress = read_progress(line)
            if progress is not None:
                self.fraction, self.message = progress
            elif line:
                tail = (tail + [line])[-20:]
        code = proc.wait()
        if code != 0 or not self.ready():
            from core.rundir import last_error_line

            self.error = last_error_line("\n".join(tail)) or f"exit code {code}"


@dataclass
class AppContext:
    saves_dir: Path
    dataset_dir: Path
    demo_model: Path
    runner: Runner
    demo: DemoBuilder
    # Components other tabs' events need (the tabs, the Train timer, the Chat target), set while
    # the Blocks are built.
    components: dict[str, Any] = field(default_factory=dict)
