"""Pretrained Hugging Face image models behind Glassbox's hook names (models/pretrained/vision.py).

References: the same weights run by ``transformers`` directly (logits, attentions, hidden
states), stage outputs and Grad-CAM recomputed by hand with torch.nn.functional, and pictures
prepared by hand with PIL and the normalisation formula. Everything is offline: tiny random ViT
and ResNet models, with and without a classification head, saved to a temporary folder together
with a preprocessor_config.json written here.
"""
from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from transformers import (ResNetConfig, ResNetForImageClassification, ResNetModel, ViTConfig,
                          ViTForImageClassification, ViTModel)

from explain.attention import cls_patch_attention, inspect_attention
from explain.attributions import (IMAGE_METHODS, NO_IMAGE_CLASSIFIER, Settings, attribute, available_methods,
                                  gradcam_layers)
from explain.inputs import input_context, prepare_image
from models.hooks import count_hooks
from models.pretrained import (PretrainedError, PretrainedResNet, PretrainedViT, check_folder, image_preprocessing,
                               load_pretrained)

LABELS = {0: "cat", 1: "dog", 2: "bird"}
MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
SIDE = 32  # pixels: the tiny models read 32×32 pictures
VIT = dict(image_size=SIDE, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
           intermediate_size=64)
RESNET = dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 2], layer_type="basic")
HEADED = dict(num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})


def save(folder, model, preprocessor: dict):
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-vision")
    torch.manual_seed(0)
    resnet = ResNetForImageClassification(ResNetConfig(**RESNET, **HEADED))
    for module in resnet.modules():  # stored statistics that are not the identity, so batch norm counts
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    vit_processor = {"image_mean": MEAN, "image_std": STD, "size": {"height": SIDE, "width": SIDE},
                     "do_resize": True, "do_normalize": True, "rescale_factor": 1 / 255}
    resnet_processor = {"image_mean": MEAN, "image_std": STD, "size": {"shortest_edge": SIDE}}
    return {
        "vit": save(root / "tiny-vit", ViTForImageClassification(ViTConfig(**VIT, **HEADED)), vit_processor),
        "vit-bare": save(root / "tiny-vit-bare", ViTModel(ViTConfig(**VIT)), vit_processor),
        "resnet": save(root / "tiny-resnet", resnet, resnet_processor),
        "resnet-bare": save(root / "tiny-resnet-bare", ResNetModel(ResNetConfig(**RESNET)), resnet_processor),
    }


@pytest.fixture(scope="module")
def models(folders):
    return {key: load_pretrained(str(folder)) for key, folder in folders.items()}


def pictures(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(seed))  # (B, C, H, W)


def test_loaded_through_the_same_path_with_spec_and_meta(models):
    vit, bare, resnet = models["vit"], models["vit-bare"], models["resnet"]
    assert isinstance(vit, PretrainedViT) and isinstance(resnet, PretrainedResNet)
    assert (vit.spec.kind, vit.spec.input.kind, vit.spec.num_classes) == ("transformer", "image", 3)
    assert vit.spec.class_names == resnet.spec.class_names == ["cat", "dog", "bird"]
    transformer = vit.spec.transformer
    assert (transformer.patch_size, transformer.pooling, transformer.num_heads) == (8, "cls", 2)
    assert (resnet.spec.kind, resnet.spec.layers, bare.spec.num_classes, models["resnet-bare"].spec.num_classes) == \
        ("cnn", [], 0, 0)
    for model, family in ((vit, "vit"), (resnet, "resnet")):
        assert model.meta.family == family and model.meta.classifier is True
        assert model.meta.image == {"mean": MEAN, "std": STD, "height": SIDE, "width": SIDE}
    assert bare.meta.classifier is False and bare(pictures()).shape == (2, 0)


def test_vit_matches_transformers(models, folders):
    x = pictures()
    for key, loader in (("vit", ViTForImageClassification), ("vit-bare", ViTModel)):
        model = models[key]
        reference = loader.from_pretrained(folders[key], attn_implementation="eager").eval()
        with torch.no_grad():
            expected = reference(pixel_values=x, output_attentions=True, output_hidden_states=True)
            logits, cache = model.run_with_cache(x)
            plain = model(x)
        torch.testing.assert_close(cache["embed.out"], expected.hidden_states[0])
        for i in range(2):
            torch.testing.assert_close(cache[f"blocks.{i}.attn.pattern"], expected.attentions[i])
            torch.testing.assert_close(cache[f"blocks.{i}.out"], expected.hidden_states[i + 1])
            # the pattern is the softmax of the scores, which are q·kᵀ/√dh from the cached q and k
            q, k = cache[f"blocks.{i}.attn.q"], cache[f"blocks.{i}.attn.k"]  # (B, h, T, dh)
            assert q.shape == (2, 2, 17, 16)
            torch.testing.assert_close(cache[f"blocks.{i}.attn.scores"], q @ k.transpose(-2, -1) / 4.0)
            torch.testing.assert_close(cache[f"blocks.{i}.attn.scores"].softmax(-1), expected.attentions[i])
        if key == "vit":
            torch.testing.assert_close(logits, expected.logits)
            torch.testing.assert_close(plain, expected.logits)
            torch.testing.assert_close(reference.classifier(cache["pooled"]), expected.logits)
        else:  # the pooler by hand: tanh(W · LayerNorm(h)[CLS] + b)
            dense = reference.pooler.dense
            by_hand = torch.tanh(F.linear(reference.layernorm(expected.hidden_states[-1])[:, 0], dense.weight,
                                          dense.bias))
            torch.testing.assert_close(cache["pooled"], by_hand)


def test_resnet_stages_match_transformers_and_by_hand(models, folders):
    x = pictures()
    for key, loader in (("resnet", ResNetForImageClassification), ("resnet-bare", ResNetModel)):
        model = models[key]
        reference = loader.from_pretrained(folders[key]).eval()
        with torch.no_grad():
            expected = reference(pixel_values=x, output_hidden_states=True)
            logits, cache = model.run_with_cache(x)
            stem = reference.base_model.embedder.embedder  # 7×7 conv stride 2, batch norm, ReLU, by hand:
            bn = stem.normalization
            conv = F.conv2d(x, stem.convolution.weight, stride=2, padding=3)
            by_hand = F.relu(F.batch_norm(conv, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps))
        assert model.stage_names() == ["conv.0.out", "pool.0.out", "conv.1.out", "conv.2.out"]
        assert len(expected.hidden_states) == 3  # the stem after its pool, then each stage
        torch.testing.assert_close(cache["conv.0.out"], by_hand)
        torch.testing.assert_close(cache["pool.0.out"], F.max_pool2d(by_hand, 3, stride=2, padding=1))
        torch.testing.assert_close(cache["pool.0.out"], expected.hidden_states[0])
        for i in (1, 2):
            torch.testing.assert_close(cache[f"conv.{i}.out"], expected.hidden_states[i])
        torch.testing.assert_close(cache["pooled"], expected.hidden_states[-1].mean(dim=(2, 3)))
        torch.testing.assert_close(cache["input"], x)
        assert model.stage_shapes == {"conv.0.out": (8, 16, 16), "pool.0.out": (8, 8, 8), "conv.1.out": (8, 8, 8),
                                      "conv.2.out": (16, 4, 4)}
        if key == "resnet":
            torch.testing.assert_close(logits, expected.logits)
        else:
            assert logits.shape == (2, 0)


def test_input_context_uses_the_models_own_preprocessing(models):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8))  # 48 wide, 40 high
    square = Image.fromarray(np.random.default_rng(1).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))
    mean, std = np.array(MEAN).reshape(3, 1, 1), np.array(STD).reshape(3, 1, 1)

    def by_hand(picture: Image.Image) -> np.ndarray:  # (C, H, W): /255, then (x − mean) / std
        return (np.asarray(picture, dtype=np.float64).transpose(2, 0, 1) / 255.0 - mean) / std

    for key in ("vit", "resnet"):
        context = input_context(models[key])
        assert context.kind == "image" and context.trained
        assert context.normalization == {"mean": MEAN, "std": STD}
        assert f"resize to {SIDE}×{SIDE}" in context.source and "own preprocessing" in context.source
        # the centre 40×40 square (left 4 of 48) resized to 32×32; PIL reads the box's neighbours at its edges
        cropped = image.resize((SIDE, SIDE), Image.BILINEAR, box=(4, 0, 44, 40))
        prepared = prepare_image(context, image, "upload: photo.png")
        assert prepared.x.shape == (3, SIDE, SIDE)
        np.testing.assert_allclose(prepared.x.numpy(), by_hand(cropped), atol=1e-5)
        np.testing.assert_allclose(prepare_image(context, square, "upload").x.numpy(), by_hand(square), atol=1e-5)


def test_image_preprocessing_reads_the_processor_config():
    vit, resnet = ViTConfig(**VIT), ResNetConfig(**RESNET)
    assert image_preprocessing({}, vit) == {"mean": [0.5] * 3, "std": [0.5] * 3, "height": SIDE, "width": SIDE}
    assert image_preprocessing({}, resnet) == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                               "height": 224, "width": 224}
    assert image_preprocessing({"size": 64, "crop_size": {"height": 56, "width": 48}, "do_center_crop": True,
                                "image_mean": 0.5, "image_std": 0.25}, resnet) == \
        {"mean": [0.5] * 3, "std": [0.25] * 3, "height": 56, "width": 48}
    assert image_preprocessing({"size": {"height": 40, "width": 30}, "do_normalize": False}, resnet) == \
        {"mean": [0.0] * 3, "std": [1.0] * 3, "height": 40, "width": 30}
    # no rescaling: the model reads (pixel − 127.5) / 127.5, i.e. (pixel / 255 − 0.5) / 0.5
    unscaled = image_preprocessing({"do_rescale": False, "image_mean": [127.5] * 3, "image_std": [127.5] * 3}, resnet)
    assert unscaled["mean"] == pytest.approx([0.5] * 3) and unscaled["std"] == pytest.approx([0.5] * 3)
    with pytest.raises(PretrainedError, match="image_mean"):
        image_preprocessing({"image_mean": [0.5, 0.5]}, resnet)
    with pytest.raises(PretrainedError, match="size"):
        image_preprocessing({"size": {"longest_edge": 0}}, resnet)


def test_attention_page_computation_on_the_vit(models, folders):
    model = models["vit"]
    x = pictures(1, seed=3)[0]
    inspection = inspect_attention(model, x)
    reference = ViTForImageClassification.from_pretrained(folders["vit"], attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(pixel_values=x[None], output_attentions=True)
    patterns = torch.stack([a[0] for a in expected.attentions]).numpy()  # (L, heads, T, T)
    assert inspection.patch_grid == (4, 4) and inspection.has_cls
    assert inspection.labels == ["[CLS]"] + [f"patch {i}" for i in range(1, 17)]
    np.testing.assert_allclose(inspection.patterns, patterns, atol=1e-6)
    np.testing.assert_allclose(inspection.probabilities, expected.logits[0].softmax(-1).numpy(), atol=1e-6)
    for layer in range(2):
        on_grid = cls_patch_attention(inspection, layer)
        assert on_grid.shape == (2, 4, 4)
        np.testing.assert_allclose(on_grid, patterns[layer, :, 0, 1:].reshape(2, 4, 4), atol=1e-6)


def test_attribution_methods_offered(models):
    assert list(available_methods(models["vit"])) == ["saliency", "integrated_gradients", "gradient_shap", "occlusion",
                                                      "attention_rollout", "vit_grad_cam"]
    assert list(available_methods(models["resnet"])) == ["saliency", "integrated_gradients", "gradient_shap",
                                                         "deeplift", "occlusion", "grad_cam", "guided_grad_cam",
                                                         "grad_cam_plus_plus", "hires_cam", "xgrad_cam", "layer_cam",
                                                         "score_cam", "ablation_cam", "eigen_cam"]
    assert gradcam_layers(models["resnet"]) == ["conv.0.out", "conv.1.out", "conv.2.out"]
    assert gradcam_layers(models["vit"]) == []
    for key in ("vit-bare", "resnet-bare"):
        assert available_methods(models[key]) == {}
        with pytest.raises(ValueError, match="no classifier") as refused:
            attribute(models[key], pictures(1)[0], 0, "saliency")
        assert str(refused.value) == NO_IMAGE_CLASSIFIER


def test_every_method_on_both_classifiers_leaves_no_hook(models):
    settings = Settings(n_steps=24, n_samples=4, internal_batch_size=24)
    x = pictures(1, seed=5)[0]
    for key in ("vit", "resnet"):
        model = models[key]
        before = count_hooks(model)
        for method in available_methods(model):
            result = attribute(model, x, 1, method, settings)
            assert count_hooks(model) == before, (key, method)
            one_map = method == "grad_cam" or IMAGE_METHODS[method].captum_class is None  # and the hand-written maps
            assert result.values.shape == ((1, SIDE, SIDE) if one_map else (3, SIDE, SIDE))
            if method == "integrated_gradients":  # completeness: the attributions add up to f(x) − f(black)
                black = torch.tensor([(0 - m) / s for m, s in zip(MEAN, STD)]).view(3, 1, 1).expand(3, SIDE, SIDE)
                with torch.no_grad():
                    scores = model(torch.stack([x, black]))[:, 1]
                assert result.expected_total == pytest.approx(float(scores[0] - scores[1]), abs=1e-5)
                assert result.total == pytest.approx(float(result.values.sum()), abs=1e-5)
                assert abs(result.delta) < 0.05 * max(abs(result.expected_total), 1e-3)


def test_grad_cam_on_each_resnet_stage_equals_the_formula(models):
    model = models["resnet"]
    x = pictures(1, seed=7)[0]
    for layer in gradcam_layers(model):
        result = attribute(model, x, 2, "grad_cam", Settings(grad_cam_layer=layer))
        kept = {}

        def keep(module, inputs, output):
            output.retain_grad()
            kept["maps"] = output

        handle = model.hook_points()[layer].register_forward_hook(keep)
        try:
            model(x[None])[0, 2].backward()
        finally:
            handle.remove()
        maps = kept["maps"]  # (1, C, h, w)
        weights = maps.grad.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1): mean gradient per map
        cam = F.relu((weights * maps).sum(dim=1, keepdim=True)).detach()  # (1, 1, h, w)
        expected = F.interpolate(cam, size=(SIDE, SIDE), mode="bilinear")[0]  # (1, H, W)
        assert result.values.shape == (1, SIDE, SIDE)
        np.testing.assert_allclose(result.values, expected.numpy(), atol=1e-6)
        channels, height, width = model.stage_shapes[layer]
        assert f"{layer} ({channels} maps of {height}×{width})" in result.note
    model.zero_grad(set_to_none=True)


def test_deeplift_rules_apply_to_every_relu(models):
    """DeepLift and Guided Backprop act on nn.ReLU modules: each must run once per pass (never
    shared), and without the stem's max pool (the one approximate rule) DeepLift adds up exactly."""
    model = copy.deepcopy(models["resnet"])
    relus = [module for module in model.modules() if isinstance(module, nn.ReLU)]
    calls = {}
    handles = [relu.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls.get(id(m), 0) + 1))
               for relu in relus]
    with torch.no_grad():
        model(pictures(1))
    for handle in handles:
        handle.remove()
    assert len(relus) == 7 and sorted(calls.values()) == [1] * 7
    model.hf.base_model.embedder.pooler = nn.Identity()
    x = pictures(1, seed=9)[0]
    result = attribute(model, x, 0, "deeplift")
    black = torch.tensor([(0 - m) / s for m, s in zip(MEAN, STD)]).view(3, 1, 1).expand(3, SIDE, SIDE)
    with torch.no_grad():
        scores = model(torch.stack([x, black]))[:, 0]
    assert float(result.values.sum()) == pytest.approx(float(scores[0] - scores[1]), abs=1e-4)


def test_bad_pictures_get_plain_errors(models):
    with pytest.raises(ValueError, match="reads 32×32 pictures"):
        models["vit"](torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="3-channel pictures"):
        models["resnet"](torch.zeros(1, 1, SIDE, SIDE))
    with pytest.raises(ValueError, match="3-channel pictures"):
        models["resnet"](torch.zeros(1, 3, SIDE, SIDE, dtype=torch.int64))


def test_a_folder_with_its_own_code_is_refused(folders, tmp_path):
    with_code = tmp_path / "vit-with-code"
    shutil.copytree(folders["vit"], with_code)
    (with_code / "modeling_evil.py").write_text("raise SystemExit('this must never run')\n")
    with pytest.raises(PretrainedError, match="ships its own Python code"):
        check_folder(with_code)
    with pytest.raises(PretrainedError, match="ships its own Python code"):
        load_pretrained(str(with_code))
    mapped = tmp_path / "resnet-auto-map"
    shutil.copytree(folders["resnet"], mapped)
    settings = json.loads((mapped / "preprocessor_config.json").read_text())
    settings["auto_map"] = {"AutoImageProcessor": "x.Y"}
    (mapped / "preprocessor_config.json").write_text(json.dumps(settings))
    with pytest.raises(PretrainedError, match="auto_map in preprocessor_config.json"):
        load_pretrained(str(mapped))
