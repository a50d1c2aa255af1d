"""Checkpoints: a model saved as plain data, and loaded without ever running the file's code.

A Glassbox checkpoint is a ``.zip`` (or a folder) holding three files:

    spec.json           the model's design (``ModelSpec.to_json()``)
    model.safetensors   its weights: tensors and nothing else
    meta.json           what the model needs around it: vocabulary, class names, normalisation

Loading also accepts weights alone (``.safetensors``, or a PyTorch ``state_dict`` in a
``.pt``/``.pth``) together with the spec they belong to. Files come from students' uploads, so
nothing is ever unpickled beyond ``torch.load(weights_only=True)`` and nothing is extracted to
disk; every way a file can be wrong ends in a ``CheckpointError`` that says, in plain words,
what is wrong and what is accepted instead. The refusals that any file from outside gets (size,
zip bombs, pickled code, weights that do not fit) are in ``models.weights``.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import safetensors.torch
import torch

from .build import build_model
from .files import write_atomically
from .meta import ModelMeta
from .spec import ModelSpec
from .weights import (CheckpointError, check_archive, check_fit, open_zip, read_bytes, read_safetensors,
                      read_state_dict)

SPEC_FILE, WEIGHTS_FILE, META_FILE = "spec.json", "model.safetensors", "meta.json"
# Lives in meta.json so that a later Glassbox can recognise, and migrate, older checkpoints.
FORMAT_KEY = "checkpoint_format"
FORMAT = {"name": "glassbox-checkpoint", "version": 1}

ACCEPTED = ("a Glassbox checkpoint (.zip, or a folder holding spec.json and model.safetensors), "
            "weights alone as .safetensors, or a PyTorch state_dict saved with "
            "torch.save(model.state_dict(), path) as .pt or .pth")
WHAT_A_CHECKPOINT_HOLDS = ("A Glassbox checkpoint holds spec.json (the model's design), model.safetensors "
                           "(its weights) and, optionally, meta.json (class names, vocabulary, normalisation).")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same model always gives the same bytes


# ---- saving ---------------------------------------------------------------------------
def checkpoint_bytes(model, *, meta=None) -> bytes:
    """The checkpoint as the bytes of one .zip file (what a download button hands out)."""
    return _zip(_checkpoint_files(model, meta))


def save_checkpoint(model, path, *, meta=None) -> Path:
    """Write a .zip file when ``path`` ends in .zip, otherwise a folder of the three files."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth", ".safetensors", ".json"):
        raise CheckpointError(f"Glassbox saves a checkpoint as a .zip file or as a folder, not as '{path.name}'.")
    files = _checkpoint_files(model, meta)
    try:
        if suffix == ".zip":
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, _zip(files))
        else:
            path.mkdir(parents=True, exist_ok=True)
            # spec.json last: a folder interrupted mid-save is "not a checkpoint", never a
            # new spec paired with old weights.
            for name in (WEIGHTS_FILE, META_FILE, SPEC_FILE):
                write_atomically(path / name, files[name])
    except OSError as err:
        raise CheckpointError(f"The checkpoint could not be written to {path}: {err.strerror or err}.") from err
    return path


def _checkpoint_files(model, meta) -> dict[str, bytes]:
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise CheckpointError("Only Glassbox models (built from a model spec) can be saved as a checkpoint.")
    _check_spec(spec, "The model's spec")
    state = {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in model.state_dict().items()}
    # Refuse now rather than write a file that would never load again.
    check_fit(state, _reference_state(spec), "this model", spec)
    meta = model.meta if meta is None else meta
    return {
        SPEC_FILE: spec.to_json().encode("utf-8"),
        WEIGHTS_FILE: safetensors.torch.save(state, metadata={"format": "pt"}),
        META_FILE: _meta_json(meta),
    }


def _reference_state(spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The state_dict a model built from ``spec`` has; built on the meta device, so it is free."""
    with torch.device("meta"):
        return _build_quietly(spec).state_dict()


def _meta_json(meta) -> bytes:
    meta = meta.to_dict() if isinstance(meta, ModelMeta) else {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"The checkpoint's meta must be a dict of plain data, not {type(meta).__name__}.")
    document = {**meta, FORMAT_KEY: FORMAT}
    try:
        return json.dumps(document, indent=2, ensure_ascii=False, default=_to_plain).encode("utf-8")
    except (TypeError, ValueError) as err:
        raise CheckpointError("The checkpoint's meta must hold plain data (text, numbers, lists, dicts): "
                              f"{err}.") from err


def _to_plain(value):
    """Tensors and numpy arrays (a normalisation mean, say) become lists; other objects are refused."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            # Weights barely compress and are the bulk of the file: storing them is much faster.
            info.compress_type = zipfile.ZIP_STORED if name == WEIGHTS_FILE else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    return buffer.getvalue()


# ---- loading --------------------------------------------------------------------------
def load_checkpoint(source, spec: ModelSpec | None = None):
    """A model, in eval mode on the CPU, with ``model.meta`` (a ModelMeta; empty if the file has none).

    ``source`` is a path (str or Path) to a .zip, a folder, a .safetensors or a .pt/.pth file,
    or a tuple ``(bytes, filename)`` for an upload. ``spec`` is needed, and used, only for
    files that hold weights alone; a checkpoint always uses the spec stored in it.
    """
    if spec is not None and not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, not {type(spec).__name__}")
    name, kind, payload = _resolve(source)
    with _explained(name):
        finetuned = _load_if_finetuned(kind, payload, name)  # a Hugging Face folder: a fine-tuned pretrained model
        if finetuned is not None:
            return finetuned
        if kind in ("zip", "folder"):
            files = _read_zip(payload, name) if kind == "zip" else _read_folder(payload, name)
            spec = _parse_spec(files[SPEC_FILE], name)
            state = read_safetensors(files[WEIGHTS_FILE], f"the {WEIGHTS_FILE} in '{name}'")
            meta = _parse_meta(files.get(META_FILE), name)
        else:
            if spec is None:
                raise CheckpointError(_needs_spec(kind))
            _check_spec(spec, "The chosen model spec")
            data = read_bytes(payload, name)
            state = read_safetensors(data, f"'{name}'") if kind == "safetensors" else read_state_dict(data, name)
            meta = {}
        return _build_loaded(spec, state, meta, name)


def _load_if_finetuned(kind: str, payload, name: str):
    from .pretrained import PretrainedError
    from .pretrained.finetuned import is_finetuned_folder, is_finetuned_zip, load_finetuned, load_finetuned_zip

    try:
        if kind == "folder" and is_finetuned_folder(payload):
            return load_finetuned(payload)
        if kind == "zip" and is_finetuned_zip(data := read_bytes(payload, name)):
            return load_finetuned_zip(data, name)
    except PretrainedError as err:
        raise CheckpointError(f"'{name}' holds a fine-tuned model that cannot be loaded: {err}.") from err
    return None


def read_meta(source) -> dict:
    """The meta.json of a checkpoint (class names, vocabulary, ...) without building the model.

    Weights-only files carry no meta, so they give {}.
    """
    name, kind, payload = _resolve(source)
    if kind not in ("zip", "folder"):
        return {}
    with _explained(name):
        files = _read_zip(payload, name) if kind == "zip" else _read_folder(payload, name)
        return _parse_meta(files.get(META_FILE), name)


@contextmanager
def _explained(name: str):
    """The last line of defence: whatever escaped the checks still reaches the user in words."""
    try:
        yield
    except CheckpointError:
        raise
    except MemoryError as err:
        raise CheckpointError(f"There was not enough memory to load '{name}'.") from err
    except Exception as err:
        raise CheckpointError(f"Glassbox could not load '{name}' ({type(err).__name__}: {err}). "
                              f"It accepts {ACCEPTED}.") from err


def _resolve(source) -> tuple[str, str, object]:
    """(name to show, kind of file, bytes or path): decided from the name, before reading anything."""
    if isinstance(source, tuple):
        if len(source) != 2 or not isinstance(source[0], (bytes, bytearray, memoryview)):
            raise TypeError("an upload is passed as a tuple (bytes, filename)")
        data, filename = bytes(source[0]), str(source[1])
        name = Path(filename).name or "the uploaded file"
        return name, _kind_of(name), data
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a path or a tuple (bytes, filename), not {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        return path.name, "folder", path
    if not path.is_file():
        raise CheckpointError(f"There is no file or folder at {path}.")
    return path.name, _kind_of(path.name), path


def _kind_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    kinds = {".zip": "zip", ".safetensors": "safetensors", ".pt": "pt", ".pth": "pt"}
    if suffix not in kinds:
        raise CheckpointError(f"Glassbox cannot open '{name}'. It accepts {ACCEPTED}.")
    return kinds[suffix]


def _needs_spec(kind: str) -> str:
    what = "A .safetensors file" if kind == "safetensors" else "A .pt or .pth state_dict"
    return (f"{what} holds only weights; pick the model spec it belongs to, or load a Glassbox .zip "
            "checkpoint, which carries its spec with it.")


# ---- zip archives and folders ---------------------------------------------------------
def _read_zip(payload, name: str) -> dict[str, bytes]:
    """spec.json, model.safetensors and meta.json from the archive, read in memory by name."""
    archive = open_zip(read_bytes(payload, name), name)
    with archive:
        entries = archive.infolist()
        check_archive(entries, name)
        folder = _checkpoint_folder(entries, name)
        by_name = {info.filename: info for info in entries}
        files = {}
        for file_name in (SPEC_FILE, WEIGHTS_FILE, META_FILE):
            info = by_name.get(folder + file_name)
            if info is not None and not info.is_dir():
                files[file_name] = _read_entry(archive, info, name)
    _require_checkpoint_files(files, name)
    return files


def _checkpoint_folder(entries: list[zipfile.ZipInfo], name: str) -> str:
    """'' when the files are at the top of the archive, 'mymodel/' when a folder was zipped."""
    folders = set()
    for info in entries:
        parts = info.filename.split("/")
        if parts[-1] in (SPEC_FILE, WEIGHTS_FILE) and len(parts) <= 2 and parts[0] != "__MACOSX":
            folders.add("" if len(parts) == 1 else parts[0] + "/")
    if len(folders) > 1:
        listed = ", ".join(sorted(f"'{f or '(top level)'}'" for f in folders))
        raise CheckpointError(f"'{name}' holds more than one model ({listed}); put one checkpoint in each .zip.")
    if not folders and any(info.filename.endswith("data.pkl") for info in entries):
        raise CheckpointError(f"'{name}' is not a Glassbox checkpoint: it looks like a file written by torch.save. "
                              "If it holds a state_dict, rename it to .pt and load it with the model spec it "
                              f"belongs to. {WHAT_A_CHECKPOINT_HOLDS}")
    return folders.pop() if folders else ""


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    try:
        return archive.read(info)
    except NotImplementedError as err:  # e.g. deflate64, which Python cannot unpack
        raise CheckpointError(f"'{name}' uses a kind of compression Glassbox cannot read; zip it again with "
                              "ordinary compression.") from err
    except Exception as err:  # bad CRC, truncated data, broken deflate stream
        raise CheckpointError(f"'{info.filename}' in '{name}' cannot be read; the .zip file may be damaged "
                              "or incomplete.") from err


def _read_folder(path: Path, name: str) -> dict[str, bytes]:
    files = {}
    for file_name in (SPEC_FILE, WEIGHTS_FILE, META_FILE):
        file_path = path / file_name
        if file_path.is_file():
            files[file_name] = read_bytes(file_path, f"{name}/{file_name}")
    _require_checkpoint_files(files, name)
    return files


def _require_checkpoint_files(files: dict[str, bytes], name: str) -> None:
    missing = [f for f in (SPEC_FILE, WEIGHTS_FILE) if f not in files]
    if missing:
        raise CheckpointError(f"'{name}' is not a Glassbox checkpoint: it has no {' and no '.join(missing)}. "
                              + WHAT_A_CHECKPOINT_HOLDS)


# ---- the three parts ------------------------------------------------------------------
def _parse_spec(text: bytes, name: str) -> ModelSpec:
    try:
        spec = ModelSpec.from_json(text)
    except Exception as err:  # ValueError in plain words from ModelSpec; anything else is a bad file too
        raise CheckpointError(f"The spec.json in '{name}' cannot be read: {err}.") from err
    _check_spec(spec, f"The spec.json in '{name}'")
    return spec


def _check_spec(spec: ModelSpec, label: str) -> None:
    try:
        problems = spec.validate()
    except Exception as err:  # a field of an unexpected type that validate() did not foresee
        problems = [f"it could not be checked ({err})"]
    if problems:
        raise CheckpointError(f"{label} describes a model that cannot be built: {'; '.join(problems)}.")


def _parse_meta(text: bytes | None, name: str) -> dict:
    if text is None:
        return {}  # meta.json is optional: a hand-made checkpoint may have only spec and weights
    try:
        meta = json.loads(text)
    except ValueError as err:
        raise CheckpointError(f"The meta.json in '{name}' is not valid JSON ({err}).") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"The meta.json in '{name}' must be a JSON object ({{...}}).")
    stamp = meta.pop(FORMAT_KEY, None)
    version = stamp.get("version", 1) if isinstance(stamp, dict) else 1  # no stamp: hand-made, read as version 1
    if not isinstance(version, int) or version > FORMAT["version"]:
        raise CheckpointError(f"'{name}' was saved by a newer Glassbox (checkpoint format {version}; this one reads "
                              f"up to {FORMAT['version']}). Update Glassbox to open it.")
    return meta


# ---- the model ------------------------------------------------------------------------
def _build_loaded(spec: ModelSpec, state: dict[str, torch.Tensor], meta: dict, name: str):
    model = _build_quietly(spec)
    check_fit(state, model.state_dict(), f"'{name}'", spec)
    model.load_state_dict(state, strict=True)
    model = model.to("cpu").eval()
    model.meta = ModelMeta.from_dict(meta)
    return model


def _build_quietly(spec: ModelSpec):
    """build_model without consuming torch's global random numbers (loading is not training)."""
    with torch.random.fork_rng(devices=[]):
        return build_model(spec)
