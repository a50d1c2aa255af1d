"""Pretrained Hugging Face models behind Glassbox's hook names, so the pages work on them unchanged.

    base.py    what every wrapper shares: PretrainedError, read_json, the attention read-outs
    text.py    BERT, DistilBERT, RoBERTa and GPT-2 (PretrainedText) and their tokenizer (tokenize)
    vision.py  ViT and ResNet (PretrainedViT, PretrainedResNet) and their picture preprocessing
    load.py    load_pretrained: the built-in model, a local folder or a hub id, safely

Callers import from the package: ``from models.pretrained import load_pretrained``. Loading
pulls in ``transformers`` only when a model is loaded, never on import.
"""
from .base import PretrainedError, read_json
from .load import BUILTIN_TEXT, SAMPLE_ID, SUPPORTED, builtin_text_folder, check_folder, load_pretrained
from .text import PretrainedText, tokenize
from .vision import PretrainedResNet, PretrainedViT, image_preprocessing

__all__ = [
    "PretrainedError", "read_json", "BUILTIN_TEXT", "SAMPLE_ID", "SUPPORTED", "builtin_text_folder", "check_folder",
    "load_pretrained", "PretrainedText", "tokenize", "PretrainedResNet", "PretrainedViT", "image_preprocessing",
]
