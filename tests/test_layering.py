"""What the layering promises, checked on the source: no hand-parsed /proc (psutil does process
trees and liveness on every platform), and each shared constant defined in one module only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("core", "webui")


def sources(*packages: str) -> list[Path]:
    return [path for package in packages for path in sorted((ROOT / package).rglob("*.py"))]


def test_no_module_in_core_or_the_web_ui_reads_proc_by_hand():
    """The issue's `grep -rn /proc/ core webui` finds nothing; `/proc` alone (Path("/proc") / pid) counts too."""
    pattern = re.compile(r"/proc\b")
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in sources(*PACKAGES)
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if pattern.search(line)]
    assert not offenders, "\n".join(offenders)


def assigned_names(path: Path) -> set[str]:
    """The names a module binds with `NAME = ...` or `NAME: T = ...`, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            names.update(sub.id for sub in ast.walk(target) if isinstance(sub, ast.Name))
    return names


def test_progress_prefix_and_ignore_index_are_each_defined_in_one_module():
    """Every other module imports them, so a changed value cannot leave a stale copy behind."""
    modules = sources(*PACKAGES) + [ROOT / "launch.py"]
    for name in ("PROGRESS_PREFIX", "IGNORE_INDEX"):
        defining = [str(path.relative_to(ROOT)) for path in modules if name in assigned_names(path)]
        assert len(defining) == 1, (name, defining)
