"""Model files that came from someone else, read without ever running their code.

A checkpoint's archive, weights alone (``.safetensors``) and a PyTorch ``state_dict`` in a
``.pt``/``.pth`` all come from students' uploads: each is refused, in plain words, before it
can hurt (too large, a zip bomb, an escaping path, a pickle that names code) and nothing is
unpickled beyond ``torch.load(weights_only=True)``. ``check_fit`` says whether weights fit a
model. ``models.checkpoint`` reads and writes Glassbox's own format on top of these.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Mapping

import safetensors.torch
import torch

from .files import unsafe_zip_path
from .spec import MAX_PARAMETERS, ModelSpec, shape_text

# The largest model a spec allows is MAX_PARAMETERS float32 numbers (800 MB); its own
# checkpoint must load again, so the limits sit just above that. Uploads are capped far lower
# by Streamlit (server.maxUploadSize).
MAX_FILE_BYTES = MAX_PARAMETERS * 4 + (200 << 20)
MAX_UNPACKED_BYTES = MAX_FILE_BYTES
MAX_ZIP_ENTRIES = 10_000  # torch.save writes one entry per tensor; a checkpoint has three
# Weights hardly compress; an entry that shrank more than this is almost surely a zip bomb.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_FROM_BYTES = 1 << 20  # tiny files (a spec.json of spaces) may compress a lot
LISTED_PER_PROBLEM = 6  # keys named per kind of mismatch before "and N more"
STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")  # {"state_dict": ..., "epoch": 3}
KEY_PREFIXES = ("module.", "_orig_mod.")  # added by DataParallel and torch.compile
CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}


class CheckpointError(Exception):
    """A model file cannot be saved or loaded; the message says why in plain words."""


def read_bytes(payload, name: str) -> bytes:
    """The file's bytes, refusing a file too large to load before reading any of it."""
    size = len(payload) if isinstance(payload, bytes) else payload.stat().st_size
    _check_size(size, name)
    data = payload if isinstance(payload, bytes) else payload.read_bytes()
    if not data:
        raise CheckpointError(f"'{name}' is empty; it may be damaged or incomplete.")
    return data


def _check_size(size: int, name: str) -> None:
    if size > MAX_FILE_BYTES:
        raise CheckpointError(f"'{name}' is {_megabytes(size)}; Glassbox loads model files of up to "
                              f"{_megabytes(MAX_FILE_BYTES)}.")


# ---- archives: refused before anything is read from them ------------------------------
def open_zip(data: bytes, name: str) -> zipfile.ZipFile:
    """The archive in ``data``, read in memory; check_archive it before reading any entry."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise CheckpointError(f"'{name}' is not a valid .zip file; it may be damaged or incomplete.") from err


def check_archive(entries: list[zipfile.ZipInfo], name: str) -> None:
    """Refuse what could hurt even though nothing is extracted: escaping paths and zip bombs."""
    if len(entries) > MAX_ZIP_ENTRIES:
        raise CheckpointError(f"'{name}' holds {len(entries):,} files; Glassbox refuses archives of more than "
                              f"{MAX_ZIP_ENTRIES:,}.")
    for info in entries:
        entry = info.filename
        if unsafe_zip_path(entry):
            raise CheckpointError(f"'{name}' contains an entry with an unsafe path ('{entry}') that points outside "
                                  "the archive; Glassbox refuses such archives.")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"'{name}' is password-protected; save it again without a password.")
        shrunk = info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        if shrunk and info.file_size >= RATIO_CHECK_FROM_BYTES:
            raise CheckpointError(f"'{name}' looks like a zip bomb: '{entry}' would grow from "
                                  f"{_megabytes(info.compress_size)} to {_megabytes(info.file_size)} when unpacked. "
                                  "Glassbox refuses it.")
    total = sum(info.file_size for info in entries)
    if total > MAX_UNPACKED_BYTES:
        raise CheckpointError(f"'{name}' would unpack to {_megabytes(total)}; Glassbox loads checkpoints of up to "
                              f"{_megabytes(MAX_UNPACKED_BYTES)}.")


# ---- weights: tensors only, never code ------------------------------------------------
def read_safetensors(data: bytes, label: str) -> dict[str, torch.Tensor]:
    """{name: tensor} from a .safetensors file's bytes; ``label`` names the file in the message."""
    try:
        return safetensors.torch.load(data)
    except Exception as err:
        raise CheckpointError(f"{label[0].upper()}{label[1:]} is not a valid .safetensors file; "
                              "it may be damaged or incomplete.") from err


def read_state_dict(data: bytes, name: str) -> dict[str, torch.Tensor]:
    """A state_dict from a .pt/.pth file, through torch's weights-only unpickler and nothing else."""
    if zipfile.is_zipfile(io.BytesIO(data)):  # torch's own format is a zip: same bomb checks
        with open_zip(data, name) as archive:
            check_archive(archive.infolist(), name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; the outcome is what matters
            loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if _references_code(data):
            raise CheckpointError(
                f"'{name}' contains Python objects rather than plain weights (for example a whole pickled "
                "model). Glassbox refuses such files, because loading them could run code hidden in them. "
                "It accepts a Glassbox .zip checkpoint, a .safetensors file, or a state_dict saved with "
                "torch.save(model.state_dict(), path).") from err
        raise CheckpointError(f"'{name}' is not a valid PyTorch file; it may be damaged or incomplete.") from err
    except Exception as err:
        raise CheckpointError(f"'{name}' is not a valid PyTorch file; it may be damaged or incomplete.") from err
    return _unwrap_state_dict(loaded, name)


def _references_code(data: bytes) -> bool:
    """Whether the file holds a well-formed pickle that names Python callables or classes.

    Used only to explain a refusal (a pickle torch would not load vs. a damaged file);
    pickletools parses the opcodes and never runs them.
    """
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            pickles = [i for i in archive.infolist() if i.filename.endswith("data.pkl")]
            if not pickles:
                return False
            data = archive.read(pickles[0])
    stream = io.BytesIO(data)
    # torch's older format is several pickles in a row, the model's own among them.
    for _ in range(8):
        seen = set()
        try:
            for opcode, _arg, _pos in pickletools.genops(stream):
                seen.add(opcode.name)
        except Exception:
            return False
        if seen & CODE_OPCODES:
            return True
    return False


def _unwrap_state_dict(loaded, name: str) -> dict[str, torch.Tensor]:
    """A plain {name: tensor} mapping, found directly or under a usual key ({"state_dict": ...})."""
    if isinstance(loaded, Mapping) and not _is_state_dict(loaded):
        for key in STATE_DICT_WRAPPERS:
            if _is_state_dict(loaded.get(key)):
                loaded = loaded[key]
                break
    if not _is_state_dict(loaded):
        raise CheckpointError(f"'{name}' holds no state_dict (names of parameters, each with a tensor of weights). "
                              "Save one with torch.save(model.state_dict(), path).")
    state = {key: tensor.detach() for key, tensor in loaded.items()}
    for prefix in KEY_PREFIXES:
        if all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: tensor for key, tensor in state.items()}
    return state


def _is_state_dict(value) -> bool:
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()))


# ---- do they fit the model? -----------------------------------------------------------
def check_fit(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: str,
              spec: ModelSpec) -> None:
    """Every key the model needs, no others, each with the shape and kind of numbers it needs."""
    missing = [key for key in expected if key not in state]
    unexpected = sorted(key for key in state if key not in expected)  # file order is arbitrary; sorted reads better
    wrong_shape, wrong_type = [], []
    for key, need in expected.items():
        have = state.get(key)
        if have is None:
            continue
        if tuple(have.shape) != tuple(need.shape):
            wrong_shape.append(f"{key}: file has {_shape(have)}, the model needs {_shape(need)}")
        elif _number_kind(have) != _number_kind(need):
            wrong_type.append(f"{key}: file has {_dtype(have)} numbers, the model needs {_dtype(need)}")
    if not (missing or unexpected or wrong_shape or wrong_type):
        return
    lines = [f"The weights in {source} do not fit the model '{spec.name}' ({spec.family()})."]
    for label, items in (("Missing from the file", missing), ("In the file but not in the model", unexpected),
                         ("Wrong shape", wrong_shape), ("Wrong kind of numbers", wrong_type)):
        if items:
            lines.append(f"{label} ({len(items)}): {_first_few(items)}.")
    lines.append("Were they saved from a model with a different design? "
                 "Load them with the spec they were trained with.")
    raise CheckpointError("\n".join(lines))


def _number_kind(tensor: torch.Tensor) -> str:
    if tensor.is_complex():
        return "complex"
    if tensor.is_floating_point():
        return "float"
    return "bool" if tensor.dtype == torch.bool else "integer"


def _first_few(items: list[str]) -> str:
    shown = "; ".join(items[:LISTED_PER_PROBLEM])
    rest = len(items) - LISTED_PER_PROBLEM
    return f"{shown}; and {rest} more" if rest > 0 else shown


def _shape(tensor: torch.Tensor) -> str:
    return shape_text(tensor.shape) if tensor.dim() else "a single number"


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} KB"
