"""Glassbox models: specs, the three families, hook points and checkpoints."""
from . import presets
from .build import SpecError, build_model, example_input
from .hooks import ActivationCache, HookedModel, HookPoint, count_hooks
from .spec import InputSpec, Layer, LayerRow, ModelSpec, RNNConfig, TransformerConfig, shape_text

__all__ = [
    "presets", "build_model", "example_input", "SpecError", "ModelSpec", "InputSpec", "Layer",
    "RNNConfig", "TransformerConfig", "LayerRow", "shape_text", "HookedModel", "HookPoint", "ActivationCache",
    "count_hooks",
]
