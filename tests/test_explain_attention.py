"""explain.attention against references: q, k, scores and patterns recomputed by hand from each
block's own weights (ln1 + qkv), the block's attention output equal to
F.scaled_dot_product_attention merged and projected, one query's arithmetic equal to the cached
row, and the [CLS] → patch maps equal to the pattern's first row laid out row by row."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explain.attention import (ATTENTION_FORMULA, cls_patch_attention, head_average, inspect_attention,
                               mean_patch_attention, query_arithmetic)
from models import build_model, count_hooks, example_input, presets

VOCAB = ["<pad>", "<unk>", "the", "plot", "is", "boring", "but", "acting", "good", "film", "was", "not", "bad",
         "odd_{word}"]
SENTENCE = "the plot is boring but the acting is good"  # "the" and "is" repeat


def sentence_ids(words: str, length: int = 12) -> torch.Tensor:
    ids = [VOCAB.index(w) for w in words.split()]
    return torch.tensor(ids + [0] * (length - len(ids)))  # right-padded, as datasets store them


def token_model(norm: str = "pre", pooling: str = "cls"):
    spec = presets.get("sentiment-transformer")
    spec.input.vocab_size, spec.input.max_len = len(VOCAB), 12
    spec.transformer.norm, spec.transformer.pooling = norm, pooling
    return build_model(spec, seed=0).eval()


def vit_model(pooling: str = "cls", stem: bool = True):
    spec = presets.get("shapes-vit")
    spec.transformer.pooling = pooling
    if not stem:
        spec.transformer.stem_channels = []
    return build_model(spec, seed=0).eval()


@pytest.mark.parametrize("norm, pooling", [("pre", "cls"), ("post", "mean")])
def test_q_k_scores_patterns_and_output_match_a_by_hand_computation_from_the_weights(norm, pooling):
    model = token_model(norm, pooling)
    view = inspect_attention(model, sentence_ids(SENTENCE), vocab=VOCAB)
    T = 9 + (pooling == "cls")
    heads, dh = 4, 16
    assert view.patterns.shape == view.scores.shape == (2, heads, T, T)
    assert view.queries.shape == view.keys.shape == (2, heads, T, dh) and view.head_dim == dh
    block_inputs = [view.activations["embed.out"], view.activations["blocks.0.out"]]  # (T, D) each
    for layer, block in enumerate(model.blocks):
        x = torch.from_numpy(block_inputs[layer])[None]  # (1, T, D)
        if norm == "pre":
            x = block.ln1(x)
        qkv = F.linear(x, block.attn.qkv.weight, block.attn.qkv.bias)  # (1, T, 3D)
        q, k, v = (part.view(1, T, heads, dh).transpose(1, 2) for part in qkv.split(64, dim=-1))  # (1, h, T, dh)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh)  # (1, h, T, T)
        np.testing.assert_allclose(view.queries[layer], q[0].detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(view.keys[layer], k[0].detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(view.values[layer], v[0].detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(view.scores[layer], scores[0].detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(view.patterns[layer], torch.softmax(scores, -1)[0].detach().numpy(), atol=1e-6)
        fused = F.scaled_dot_product_attention(q, k, v)  # (1, h, T, dh)
        merged = fused.transpose(1, 2).reshape(1, T, 64)  # (1, T, h*dh)
        projected = F.linear(merged, block.attn.proj.weight, block.attn.proj.bias)[0]  # (T, D)
        np.testing.assert_allclose(view.activations[f"blocks.{layer}.attn.out"], projected.detach().numpy(), atol=1e-5)
    # The same identities within the inspection itself: softmax of the scores, QKᵀ/√d.
    shifted = np.exp(view.scores - view.scores.max(-1, keepdims=True))
    np.testing.assert_allclose(view.patterns, shifted / shifted.sum(-1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(view.scores, view.queries @ np.swapaxes(view.keys, -1, -2) / 4.0, atol=1e-5)
    np.testing.assert_allclose(view.patterns.sum(-1), 1.0, atol=1e-5)
    assert count_hooks(model) == 0


def test_sentence_labels_prediction_prefixes_and_activations():
    model = token_model()
    ids = sentence_ids(SENTENCE)
    view = inspect_attention(model, ids, vocab=VOCAB)
    assert view.family_input == "tokens" and view.has_cls
    assert view.tokens == SENTENCE.split()
    assert view.labels == ["[CLS]"] + SENTENCE.split()  # raw words; the figures make repeats distinct
    assert view.class_names == ["negative", "positive"] and view.patch_grid is None and view.patch_size is None
    alone = torch.softmax(model(ids[:9][None]), -1)[0].detach().numpy()  # the sentence with no padding
    np.testing.assert_allclose(view.probabilities, alone, atol=1e-6)
    assert view.prefix_probabilities.shape == (9, 2)
    np.testing.assert_allclose(view.prefix_probabilities[-1], alone, atol=1e-5)
    first = torch.softmax(model(ids[:1][None]), -1)[0].detach().numpy()
    np.testing.assert_allclose(view.prefix_probabilities[0], first, atol=1e-5)
    assert set(view.activations) == set(model.hook_names())
    assert view.activations["pooled"].shape == (64,) and view.activations["blocks.1.attn.pattern"].shape == (4, 10, 10)
    np.testing.assert_array_equal(view.activations["blocks.1.attn.pattern"], view.patterns[1])
    np.testing.assert_allclose(head_average(view, 1), view.patterns[1].mean(axis=0))
    np.testing.assert_allclose(head_average(view, 0).sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="block 3 does not exist; choose 1 to 2"):
        head_average(view, 2)


def test_a_pad_inside_the_sentence_keeps_one_label_per_position():
    ids = torch.tensor([VOCAB.index("the"), 0, VOCAB.index("film"), 0, 0])
    view = inspect_attention(token_model(), ids, vocab=VOCAB)
    assert view.labels == ["[CLS]", "the", "<pad>", "film"] and view.patterns.shape[-1] == 4
    without_vocab = inspect_attention(token_model(), sentence_ids("the film"))
    assert without_vocab.tokens == [str(VOCAB.index("the")), str(VOCAB.index("film"))]


def test_query_arithmetic_recomputes_one_row_with_its_numbers():
    view = inspect_attention(token_model(), sentence_ids(SENTENCE), vocab=VOCAB)
    step = query_arithmetic(view, layer=1, head=2, query=4)
    assert (step.layer, step.head, step.query, step.query_label) == (1, 2, 4, "boring")
    np.testing.assert_array_equal(step.q, view.queries[1, 2, 4])
    np.testing.assert_array_equal(step.keys, view.keys[1, 2])
    np.testing.assert_allclose(step.dots, [float(np.dot(view.queries[1, 2, 4], k)) for k in view.keys[1, 2]], atol=1e-5)
    assert step.scale == 4.0  # √16
    np.testing.assert_allclose(step.scores, view.scores[1, 2, 4], atol=1e-5)
    np.testing.assert_allclose(step.weights, view.patterns[1, 2, 4], atol=1e-6)
    assert step.weights.sum() == pytest.approx(1.0)
    assert step.formula == ATTENTION_FORMULA and r"\sqrt{d}" in step.formula
    lines = step.numbers(top=3)
    top = list(np.argsort(-view.patterns[1, 2, 4])[:3])
    assert len(lines) == 3 and step.top_keys(3) == top
    for line, j in zip(lines, top):
        assert rf"\text{{{view.labels[j]}}}" in line and f"j = {j + 1}" in line  # positions counted from 1
        assert rf"q_{{5}} \cdot k_{{{j + 1}}}" in line  # the query is token 5
        assert f"= {step.dots[j]:.2f}" in line and f"= {step.scores[j]:.3f}" in line
        assert line.endswith(f"{step.weights[j]:.3f}") and r"\sqrt{16}" in line
    assert len(step.numbers(top=50)) == 10  # no more lines than keys


def test_query_arithmetic_output_is_the_weighted_sum_of_the_values_as_the_model_computes_it():
    model = token_model()
    ids = sentence_ids(SENTENCE)
    view = inspect_attention(model, ids, vocab=VOCAB)
    step = query_arithmetic(view, layer=1, head=2, query=4)
    q, k, v = (torch.as_tensor(getattr(view, name)[1, 2])[None, None] for name in ("queries", "keys", "values"))
    reference = F.scaled_dot_product_attention(q, k, v)[0, 0, 4].numpy()  # (dh,) softmax(qkᵀ/√d) v, by PyTorch
    np.testing.assert_allclose(step.output, reference, atol=1e-5)
    np.testing.assert_allclose(step.output, view.activations["blocks.1.attn.z"][2, 4], atol=1e-5)  # the model's own z
    line = step.output_numbers(3)
    assert line.startswith(r"z_{5} = \sum_j \alpha_{5j}") and line.endswith(r", \ldots)")  # the query is token 5
    assert all(f"{value:.3f}" in line for value in step.output[:3])


def test_query_arithmetic_rejects_positions_that_do_not_exist_and_escapes_latex():
    view = inspect_attention(token_model(), sentence_ids("the odd_{word}"), vocab=VOCAB)
    for layer, head, query in [(2, 0, 0), (0, 4, 0), (0, 0, 3), (-1, 0, 0)]:
        with pytest.raises(ValueError, match="does not exist"):
            query_arithmetic(view, layer, head, query)
    step = query_arithmetic(view, 0, 0, 2)
    assert step.query_label == "odd_{word}"
    assert any(r"\text{odd\_\{word\}}" in line for line in step.numbers(top=3))


def test_cls_patch_attention_is_the_cls_row_on_the_patch_grid():
    model = vit_model()
    image = example_input(model.spec, batch=1)[0]  # (3, 32, 32)
    view = inspect_attention(model, image)
    assert view.family_input == "image" and view.tokens == [] and view.prefix_probabilities is None
    assert view.patch_grid == (4, 4) and view.patch_size == 8 and view.patterns.shape == (2, 4, 17, 17)
    assert view.labels[:3] == ["[CLS]", "patch 1", "patch 2"]
    np.testing.assert_allclose(view.probabilities, torch.softmax(model(image[None]), -1)[0].detach().numpy(), atol=1e-6)
    for layer in range(2):
        maps = cls_patch_attention(view, layer)
        assert maps.shape == (4, 4, 4)
        np.testing.assert_array_equal(maps, view.patterns[layer, :, 0, 1:].reshape(4, 4, 4))
        for head, row, col in [(0, 0, 3), (3, 2, 1)]:  # patch numbered row by row: 1 + row*cols + col
            assert maps[head, row, col] == view.patterns[layer, head, 0, 1 + row * 4 + col]
    received = mean_patch_attention(view, 1)
    np.testing.assert_allclose(received[2, 1, 3], view.patterns[1, 2, :, 1 + 1 * 4 + 3].mean(), atol=1e-7)
    with pytest.raises(ValueError, match="block 6 does not exist"):
        cls_patch_attention(view, 5)


def test_the_patch_grid_follows_the_conv_patches_of_the_picture():
    """Patch 'row r, col c' really is the picture's pixels [8r:8r+8, 8c:8c+8]: its embedding is
    the patch conv applied to exactly that crop (plus its position)."""
    model = vit_model(stem=False)
    image = example_input(model.spec, batch=1)[0]  # (3, 32, 32)
    view = inspect_attention(model, image)
    embed = model.embed
    row, col = 2, 1
    crop = image[:, 8 * row: 8 * row + 8, 8 * col: 8 * col + 8]  # (3, 8, 8)
    by_hand = (embed.patches.weight * crop).sum(dim=(1, 2, 3)) + embed.patches.bias  # (D,)
    position = 1 + row * 4 + col
    expected = by_hand + embed.pos[0, position]
    np.testing.assert_allclose(view.activations["embed.out"][position], expected.detach().numpy(), atol=1e-5)


def test_with_a_conv_stem_patch_row_r_col_c_is_the_stems_map_of_that_part_of_the_picture():
    """shapes-vit's stem halves the picture twice, so patch 'row r, col c' (pixels [8r:8r+8,
    8c:8c+8]) is the patch conv applied to the stem's 2×2 cells [2r:2r+2, 2c:2c+2]."""
    model = vit_model()
    image = example_input(model.spec, batch=1)  # (1, 3, 32, 32)
    _, cache = model.run_with_cache(image)
    stem_map = cache["embed.stem.2.out"][0]  # (32, 8, 8)
    assert stem_map.shape == (32, 8, 8) and model.activation_shape("embed.stem.2.out") == (32, 8, 8)
    embed, row, col = model.embed, 3, 2
    crop = stem_map[:, 2 * row: 2 * row + 2, 2 * col: 2 * col + 2]  # (32, 2, 2)
    by_hand = (embed.patches.weight * crop).sum(dim=(1, 2, 3)) + embed.patches.bias  # (D,)
    position = 1 + row * 4 + col
    torch.testing.assert_close(cache["embed.out"][0, position], by_hand + embed.pos[0, position], atol=1e-5, rtol=0)


def test_mean_pooled_vit_has_no_cls_map_but_a_received_attention_map():
    view = inspect_attention(vit_model("mean"), example_input(vit_model("mean").spec, batch=1)[0])
    assert not view.has_cls and view.labels[0] == "patch 1" and view.patterns.shape[-1] == 16
    with pytest.raises(ValueError, match="no \\[CLS\\] token"):
        cls_patch_attention(view, 0)
    received = mean_patch_attention(view, 0)
    np.testing.assert_allclose(received, view.patterns[0].mean(axis=1).reshape(4, 4, 4), atol=1e-7)


def test_wrong_models_and_inputs_are_refused_in_plain_words():
    with pytest.raises(ValueError, match="only be inspected in a transformer"):
        inspect_attention(build_model(presets.get("digits-cnn"), seed=0), torch.zeros(1, 16, 16))
    with pytest.raises(ValueError, match="3×32×32 images"):
        inspect_attention(vit_model(), torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="row of token ids"):
        inspect_attention(token_model(), torch.ones(2, 5, dtype=torch.int64))
    token_view = inspect_attention(token_model(), sentence_ids("the film"), vocab=VOCAB)
    with pytest.raises(ValueError, match="vision transformer"):
        cls_patch_attention(token_view, 0)
    with pytest.raises(ValueError, match="vision transformer"):
        mean_patch_attention(token_view, 0)

