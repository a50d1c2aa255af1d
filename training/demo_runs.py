"""The shipped demo runs (``models.demos``) in a run store, so that the app shows them like any run:
their curves on the Train page, their checkpoints on the Inspect pages' training-step slider.

    install("digits-cnn", store)   -> the run id; copies the shipped run in if it is missing or damaged

A demo run is shared with the class and owned by nobody (``training.people``): every student
sees it, only the teacher may delete it, and a deleted one comes back the next time someone
uses it. Installing is safe when several sessions do it at once: each copies into a hidden
folder of its own and renames it into place; whoever comes second finds a whole copy there and
drops its own.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

from models import demos
from training.store import RunStore

ATTEMPTS = 5  # renames tried while other sessions install or remove the same run


def files_of(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (hidden ones left out) with its size: what a whole copy holds."""
    found = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found[relative.as_posix()] = path.stat().st_size
    return found


def is_installed(name: str, store: RunStore, root: Path | None = None) -> bool:
    """Whether the store holds a whole copy of the demo's run: every shipped file, at its size."""
    target = store.path(demos.info(name, root).run_id)
    if not target.is_dir():
        return False
    try:
        shipped = files_of(demos.run_folder(name, root))
        return all((target / relative).stat().st_size == size for relative, size in shipped.items())
    except OSError:
        return False


def install(name: str, store: RunStore, root: Path | None = None) -> str:
    """Put the demo's run into ``store`` unless a whole copy is there; returns its run id.

    UnknownDemo (a ValueError) for a name that is not a demo; OSError if the store cannot be
    written."""
    run_id = demos.info(name, root).run_id
    for _ in range(ATTEMPTS):
        if is_installed(name, store, root):
            return run_id
        store.runs_dir.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=store.runs_dir, prefix=f".{run_id}.install-"))
        try:
            shutil.copytree(demos.run_folder(name, root), temporary, dirs_exist_ok=True)
            target = store.path(run_id)
            if target.exists() and not is_installed(name, store, root):
                set_aside(target)  # damaged (or half a copy from an older version): replaced whole
            try:
                os.rename(temporary, target)  # fails if another session's copy arrived first
                return run_id
            except OSError:
                continue
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    if is_installed(name, store, root):
        return run_id
    raise OSError(f"the demo run {run_id} could not be put into {store.runs_dir}")


def set_aside(folder: Path) -> None:
    """Rename ``folder`` out of the way (a reader sees it whole or not at all), then remove it."""
    aside = folder.with_name(f".{folder.name}.old-{secrets.token_hex(3)}")
    try:
        os.rename(folder, aside)
    except OSError:
        return  # someone else moved it first
    shutil.rmtree(aside, ignore_errors=True)
