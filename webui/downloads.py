"""Downloads from the browser: a run's adapter, or an exported model folder, as one zip.

The zip is built in a fresh temporary folder under saves/.downloads (a path the app serves; the
runs' own folders stay as they are), with the standard library only: no torch is loaded. Older
zips are removed when a new one is made, so the folder holds one zip per request at most.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

from core.errors import UserError
from webui.paths import display_path, resolve_path

DOWNLOADS = ".downloads"
# A run folder's checkpoints are resumable training states, not the adapter: left out.
SKIPPED_DIRS = ("checkpoint-",)


def _files(folder: Path, skip_checkpoints: bool) -> list[Path]:
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if skip_checkpoints and rel.parts[0].startswith(SKIPPED_DIRS):
            continue
        if path.is_file():
            out.append(path)
    return out


def zip_folder(saves_dir: Path, folder: Path, skip_checkpoints: bool = False) -> Path:
    """folder as saves/.downloads/<tmp>/<folder name>.zip (paths inside relative to folder's parent)."""
    root = Path(saves_dir) / DOWNLOADS
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():  # one download at a time is kept
        shutil.rmtree(old, ignore_errors=True)
    target = Path(tempfile.mkdtemp(dir=root)) / f"{folder.name}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in _files(folder, skip_checkpoints):
            zf.write(path, Path(folder.name) / path.relative_to(folder))
    return target


def adapter_zip(saves_dir: Path, run: Optional[str]) -> Path:
    """A finished run's adapter folder (without its checkpoints) as a zip."""
    if not run:
        raise UserError("pick a run first")
    folder = resolve_path(run)
    if not (folder / "adapter_config.json").is_file():
        raise UserError(f"{display_path(folder)} holds no adapter (adapter_config.json): only a finished LoRA run has one")
    return zip_folder(saves_dir, folder, skip_checkpoints=True)


def export_zip(saves_dir: Path, folder_text: Optional[str]) -> Path:
    """An exported model folder as a zip."""
    if not folder_text:
        raise UserError("no export folder given")
    folder = resolve_path(folder_text)
    if not (folder / "config.json").is_file():
        raise UserError(f"{display_path(folder)} holds no exported model yet (config.json): export first")
    return zip_folder(saves_dir, folder)


def download(make, saves_dir: Path, chosen: Optional[str]):
    """A UI handler's answer: the zip in the download box, or the error as a warning."""
    import gradio as gr

    try:
        return gr.File(value=str(make(saves_dir, chosen)), visible=True)
    except UserError as err:
        gr.Warning(str(err))
        return gr.File(value=None, visible=False)
