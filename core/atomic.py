"""Writing a file so that a reader sees the old content or the new one, never half of either.

The run directory (status.json, launch.json, run.yaml, the trimmed log of a resumed run) and the
dataset registry (dataset_info.json, registered copies) are read by other processes while they
are written, and must survive a killed writer or a full disk. Light: no third-party import.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Union

Content = Union[str, bytes, BinaryIO]  # text (UTF-8), bytes, or an open binary file to copy


def write_atomic(path: str | Path, content: Content, temp_prefix: str | None = None) -> None:
    """Write `content` to `path`: a temp file in the same folder, fsync, rename over `path`.

    A writer killed mid-way leaves only its temp file (named `temp_prefix...`, so the owner of
    the folder can clear such leftovers); any OSError (a full disk) leaves `path` untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(content, str):
                out.write(content.encode("utf-8"))
            elif isinstance(content, bytes):
                out.write(content)
            else:
                shutil.copyfileobj(content, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    # The rename itself survives a power cut only once the directory entry is on disk.
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
