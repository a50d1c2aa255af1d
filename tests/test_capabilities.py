"""Every model declares what it offers (issue 11, item 4): the defaults on HookedModel describe a
model built from a spec, a family or a pretrained wrapper overrides what differs, and the views
ask the model instead of sniffing its attributes."""
import ast
from pathlib import Path

import pytest
import torch
from transformers import ResNetConfig, ResNetForImageClassification

from models import build_model, example_input, presets
from models.meta import ModelMeta
from models.pretrained import BUILTIN_TEXT, load_pretrained
from training.tokenizer import PAD_ID

ROOT = Path(__file__).resolve().parent.parent


def test_a_glassbox_cnn_declares_its_gradcam_layers_and_shapes_from_its_spec():
    model = build_model(presets.get("digits-cnn"), seed=0)
    # Reference: each conv stage's last hook, read off the module tree by hand.
    by_hand = []
    for index, stage in enumerate(model.conv):
        hooks = [name for name, _ in stage.named_children() if name in ("out", "bn", "act")]
        by_hand.append(f"conv.{index}.{hooks[-1]}")
    assert model.gradcam_layers() == by_hand and by_hand[0] == "conv.0.act"
    _, cache = model.run_with_cache(example_input(model.spec, batch=1))
    for name in model.hook_names():
        if name.startswith(("conv.", "pool.")):
            assert model.activation_shape(name) == tuple(cache[name].shape[1:]), name
    assert model.activation_functions() == {layer.activation for layer in model.spec.layers if layer.type == "act"}
    assert not model.is_pretrained and model.meta == ModelMeta() and model.stage_names() == []


@pytest.mark.parametrize("preset", ["sentiment-lstm", "sentiment-transformer", "shapes-vit"])
def test_other_glassbox_models_take_the_defaults(preset):
    model = build_model(presets.get(preset), seed=0)
    assert model.gradcam_layers() == [] and model.stage_names() == []
    assert model.causal is False and model.pad_id == PAD_ID
    assert model.tokens_of(torch.tensor([2, 3])) is None  # its words come from the data's vocabulary
    assert not model.is_pretrained


def test_the_builtin_pretrained_text_model_overrides_what_differs():
    model = load_pretrained(BUILTIN_TEXT)
    assert model.is_pretrained and model.meta.pretrained == BUILTIN_TEXT and model.meta.family == "bert"
    assert model.pad_id == model.tokenizer.pad_token_id and model.causal is False
    ids = torch.tensor(model.tokenizer("zorblax")["input_ids"])
    assert model.tokens_of(ids) == model.tokenizer.convert_ids_to_tokens(ids.tolist())
    assert model.gradcam_layers() == []


def test_a_pretrained_resnet_declares_its_stages_shapes_and_activation(tmp_path):
    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                          layer_type="basic", hidden_act="relu", num_labels=3, image_size=32)
    hf = ResNetForImageClassification(config).eval()
    hf.save_pretrained(tmp_path / "resnet", safe_serialization=True)
    (tmp_path / "resnet" / "preprocessor_config.json").write_text(
        '{"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 32}, '
        '"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "crop_pct": 1.0}')
    model = load_pretrained(str(tmp_path / "resnet"))
    assert model.is_pretrained and model.meta.classifier and model.meta.family == "resnet"
    assert model.gradcam_layers() == [n for n in model.stage_names() if n.startswith("conv.")]
    _, cache = model.run_with_cache(torch.zeros(1, 3, 32, 32))
    for name in model.stage_names():
        assert model.activation_shape(name) == tuple(cache[name].shape[1:])
    assert model.activation_functions() == {"relu"}


def test_views_and_pages_ask_the_model_instead_of_sniffing_it():
    """No hasattr(model...) and no getattr(model..., name, default) in explain/ or app_pages/ (torch
    modules, tokenizers and torch.backends may still be asked what they have)."""
    sniffing = []
    for package in ("explain", "app_pages"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                    continue
                about_a_model = node.args and _root_name(node.args[0]) == "model"
                if about_a_model and (node.func.id == "hasattr" or (node.func.id == "getattr" and len(node.args) == 3)):
                    sniffing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not sniffing, "attribute sniffing: " + ", ".join(sniffing)


def _root_name(node) -> str | None:
    """"model" for model, model.spec, model.spec.input, ...; the name an expression starts from."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None
