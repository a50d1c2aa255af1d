"""File handling shared by checkpoints, the run store and uploads: atomic writes, safe zip paths."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Readers see the old file or the new one, never half of one (a rename is atomic).

    ``durable`` also flushes the data to disk before the rename, so a power cut cannot leave
    an empty file behind; files rewritten every second (a run's progress) skip it.
    """
    path = Path(path)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def unsafe_zip_path(name: str) -> bool:
    """An archive entry that would land outside its folder: absolute, a drive letter, or '..'."""
    path = name.replace("\\", "/")
    return path.startswith("/") or bool(re.match(r"^[A-Za-z]:", path)) or ".." in path.split("/")
