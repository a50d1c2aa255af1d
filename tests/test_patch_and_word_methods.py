"""A vision transformer's maps (explain.attributions.patches) and gradient × embedding for
sentences, against references computed here: attention rollout as the hand product of the
blocks' cached ``blocks.N.attn.pattern`` (and of Hugging Face's own attentions for a pretrained
ViT), Grad-CAM on patch tokens from autograd on the tokens the last block reads, and
gradient × embedding as autograd's gradient times the embedding output."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import ViTConfig, ViTForImageClassification

from explain import attributions as attr
from explain.attributions import patches
from models import ModelSpec, build_model, count_hooks, presets
from models.pretrained import load_pretrained
from models.spec import InputSpec, TransformerConfig

PATCH_METHODS = ["attention_rollout", "vit_grad_cam"]
SENTENCE = torch.tensor([5, 9, 17, 3, 40])


def picture(model, seed: int = 0) -> torch.Tensor:
    inp = model.spec.input
    return torch.rand(inp.channels, inp.height, inp.width, generator=torch.Generator().manual_seed(seed))


def three_block_mean_pooled_vit():
    spec = ModelSpec(name="vit3", kind="transformer", num_classes=3, input=InputSpec("image", 3, 12, 16),
                     transformer=TransformerConfig(d_model=16, num_heads=2, num_layers=3, patch_size=4,
                                                   pooling="mean"))
    return build_model(spec, seed=2).eval()


def rollout_by_hand(patterns: list[np.ndarray]) -> np.ndarray:
    """Abnar & Zuidema (2020): Ã_l = Â_l Ã_(l-1), Â = rows-normalised (0.5 mean-over-heads A + 0.5 I)."""
    joint = np.eye(patterns[0].shape[-1])
    for pattern in patterns:  # first block first; each (heads, T, T)
        mixed = 0.5 * pattern.mean(axis=0) + 0.5 * np.eye(pattern.shape[-1])
        mixed = mixed / mixed.sum(axis=1, keepdims=True)
        joint = mixed @ joint
    return joint


def upsampled(grid: np.ndarray, x: torch.Tensor) -> np.ndarray:
    return F.interpolate(torch.tensor(grid, dtype=torch.float32)[None, None], size=tuple(x.shape[1:]),
                         mode="bilinear")[0].numpy()


# ---- what a model declares ----------------------------------------------------------------------

def test_patch_methods_are_offered_only_to_models_that_attend_over_image_patches():
    vit = build_model(presets.get("shapes-vit"), seed=0)
    assert vit.patch_grid() == (4, 4) and three_block_mean_pooled_vit().patch_grid() == (3, 4)
    assert set(PATCH_METHODS) <= set(attr.available_methods(vit))
    for preset in ("digits-cnn", "sentiment-transformer", "sentiment-lstm"):
        model = build_model(presets.get(preset), seed=0)
        assert model.patch_grid() is None
        assert not set(PATCH_METHODS) & set(attr.available_methods(model)), preset
    cnn = build_model(presets.get("digits-cnn"), seed=0)
    with pytest.raises(ValueError, match="not available"):
        attr.attribute(cnn, picture(cnn), 0, "attention_rollout")


# ---- attention rollout --------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: build_model(presets.get("shapes-vit"), seed=0).eval(),
                                  three_block_mean_pooled_vit], ids=["shapes-vit", "three-blocks-mean-pooled"])
def test_attention_rollout_is_the_hand_product_of_the_cached_patterns(make):
    model = make()
    x = picture(model)
    blocks = model.spec.transformer.num_layers
    names = [f"blocks.{i}.attn.pattern" for i in range(blocks)]
    _, cache = model.run_with_cache(x[None], names=names)
    joint = rollout_by_hand([cache[name][0].numpy().astype(np.float64) for name in names])
    np.testing.assert_allclose(joint.sum(axis=1), 1.0, atol=1e-12)  # still a mixing of tokens
    rows, cols = model.patch_grid()
    cls = model.spec.transformer.pooling == "cls"
    received = joint[0, 1:] if cls else joint.mean(axis=0)  # from [CLS], or from the tokens the model averages
    expected = upsampled(received.reshape(rows, cols), x)
    for target in range(model.spec.num_classes):  # no class enters it
        result = attr.attribute(model, x, target, "attention_rollout")
        assert result.values.shape == (1, *x.shape[1:]) and result.label == "Attention rollout"
        np.testing.assert_allclose(result.values, expected, atol=1e-6)
    assert f"{blocks} blocks" in result.note and f"{rows}×{cols} patches" in result.note
    # The order matters: the product the other way round is another map.
    reverse = rollout_by_hand([cache[name][0].numpy().astype(np.float64) for name in reversed(names)])
    other = reverse[0, 1:] if cls else reverse.mean(axis=0)
    assert not np.allclose(other, received, atol=1e-4)


# ---- Grad-CAM on patch tokens -------------------------------------------------------------------

def grad_cam_on_tokens_by_hand(model, x, target, layer, cls: bool) -> np.ndarray:
    """The tokens at ``layer`` swapped in as a leaf; Grad-CAM on the patch tokens as maps."""
    _, cache = model.run_with_cache(x[None], names=[layer])
    tokens = cache[layer][0].clone().requires_grad_(True)  # (T, D)
    handle = model.hook_points()[layer].register_forward_hook(lambda module, inputs, output: tokens[None])
    try:
        score = model(x[None])[0, target]
    finally:
        handle.remove()
    gradient = torch.autograd.grad(score, tokens)[0]
    rows, cols = model.patch_grid()
    maps = tokens.detach()[int(cls):].T.reshape(-1, rows, cols)  # (D, rows, cols)
    weights = gradient[int(cls):].T.reshape(-1, rows, cols).mean(dim=(1, 2))  # (D,)
    return upsampled(torch.relu((weights[:, None, None] * maps).sum(dim=0)).numpy(), x)


def test_grad_cam_on_patch_tokens_is_the_hand_computed_map_on_the_tokens_the_last_block_reads():
    for model, layer in ((build_model(presets.get("shapes-vit"), seed=0).eval(), "blocks.0.out"),
                         (three_block_mean_pooled_vit(), "blocks.1.out")):
        x = picture(model)
        assert patches.tokens_layer(model) == layer
        shown = 0
        for target in range(model.spec.num_classes):
            expected = grad_cam_on_tokens_by_hand(model, x, target, layer, model.spec.transformer.pooling == "cls")
            result = attr.attribute(model, x, target, "vit_grad_cam")
            assert result.values.shape == (1, *x.shape[1:]) and layer in result.note
            np.testing.assert_allclose(result.values, expected, atol=1e-6)
            shown += float(expected.max()) > 0
        assert shown


def test_a_failing_pass_leaves_no_hook_behind():
    """patches.patch_attribution called directly, without explain.model_guard's sweep."""
    model = build_model(presets.get("shapes-vit"), seed=0).eval()
    x = picture(model)
    head = model.head
    forward = head.forward

    def failing(*args, **kwargs):
        raise RuntimeError("failed midway on purpose")
    head.forward = failing
    for method in PATCH_METHODS:
        with pytest.raises(RuntimeError, match="on purpose"):
            patches.patch_attribution(model, x, 0, method, attr.Settings())
        assert count_hooks(model) == 0, method
    head.forward = forward
    patches.patch_attribution(model, x, 0, "vit_grad_cam", attr.Settings())
    assert count_hooks(model) == 0


# ---- a pretrained ViT, against Hugging Face's own outputs ---------------------------------------

@pytest.fixture(scope="module")
def pretrained_vit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-vit") / "vit"
    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                       intermediate_size=32, num_labels=3, id2label={0: "a", 1: "b", 2: "c"},
                       label2id={"a": 0, "b": 1, "c": 2})
    ViTForImageClassification(config).save_pretrained(folder)
    reference = ViTForImageClassification.from_pretrained(folder, attn_implementation="eager").eval()
    return load_pretrained(str(folder)), reference


def test_on_a_pretrained_vit_both_maps_match_the_libraries_own_attentions_and_gradients(pretrained_vit):
    model, reference = pretrained_vit
    hooks_before = count_hooks(model)  # transformers keeps hooks of its own on its layers for good
    assert model.patch_grid() == (4, 4)
    assert set(PATCH_METHODS) <= set(attr.available_methods(model))
    x = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = reference(pixel_values=x[None], output_attentions=True, output_hidden_states=True)
    joint = rollout_by_hand([a[0].detach().numpy().astype(np.float64) for a in out.attentions])
    np.testing.assert_allclose(attr.attribute(model, x, 0, "attention_rollout").values,
                               upsampled(joint[0, 1:].reshape(4, 4), x), atol=1e-6)
    for target in range(3):
        out = reference(pixel_values=x[None], output_hidden_states=True)
        tokens = out.hidden_states[2]  # what the last of the 3 layers reads: (1, 17, 16)
        gradient = torch.autograd.grad(out.logits[0, target], tokens)[0][0, 1:]  # (16 patches, D)
        weights = gradient.mean(dim=0)  # (D,)
        coarse = torch.relu(tokens[0, 1:].detach() @ weights).reshape(4, 4)
        np.testing.assert_allclose(attr.attribute(model, x, target, "vit_grad_cam").values,
                                   upsampled(coarse.numpy(), x), atol=1e-6)
    assert count_hooks(model) == hooks_before


# ---- sentences: gradient × embedding ------------------------------------------------------------

@pytest.mark.parametrize("preset", ["sentiment-lstm", "sentiment-transformer"])
def test_gradient_x_activation_is_the_gradient_times_the_word_vectors(preset):
    model = build_model(presets.get(preset), seed=0).eval()
    assert "gradient_x_activation" in attr.available_methods(model)
    kept = []
    handle = model.embed.tokens.register_forward_hook(lambda module, inputs, output: kept.append(output))
    try:
        logits = model(SENTENCE[None])
    finally:
        handle.remove()
    for target in range(model.spec.num_classes):
        gradient = torch.autograd.grad(logits[0, target], kept[0], retain_graph=True)[0]  # (1, T, E)
        expected = (gradient * kept[0]).sum(dim=-1)[0].detach().numpy()  # (T,)
        result = attr.attribute(model, SENTENCE, target, "gradient_x_activation")
        assert result.label == "Gradient × embedding" and result.delta is None
        np.testing.assert_allclose(result.values, expected, atol=1e-6)
        assert np.abs(expected).max() > 0
