"""explain.rnn against references: hidden states equal PyTorch's fused nn.RNN/LSTM/GRU and the
cache, a prefix prediction is the model run on that prefix alone, PCA equals the eigenvectors
of the covariance (np.linalg.eigh), and one step written out by hand lands on the model's h_t."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explain import rnn as rnn_explain
from models import InputSpec, ModelSpec, RNNConfig, build_model, count_hooks, presets

VOCAB = ["<pad>", "<unk>", "the", "plot", "is", "boring", "but", "acting", "good", "film", "was", "not", "bad"]
SENTENCE = "the plot is boring but the acting is good"
CELLS = ["sentiment-rnn", "sentiment-lstm", "sentiment-gru"]


def sentence_ids(words: str, length: int = 12) -> torch.Tensor:
    ids = [VOCAB.index(w) for w in words.split()]
    return torch.tensor(ids + [0] * (length - len(ids)))  # right-padded, as datasets store them


def token_model(preset: str, **rnn_changes):
    spec = presets.get(preset)
    spec.input.vocab_size, spec.input.max_len = len(VOCAB), 12
    for name, value in rnn_changes.items():
        setattr(spec.rnn, name, value)
    return build_model(spec, seed=0)


def fused_hidden(model, ids: torch.Tensor) -> np.ndarray:
    """The top layer's h_t from PyTorch's own fused kernel, the reference for the unrolled steps."""
    with torch.no_grad():
        return model.rnn.net(model.embed.tokens(ids[None]))[0][0].numpy()  # (T, Hd)


@pytest.mark.parametrize("preset", CELLS)
def test_inspection_matches_the_cache_the_fused_kernel_and_each_prefix_alone(preset):
    model = token_model(preset)
    ids = sentence_ids(SENTENCE)
    view = rnn_explain.inspect_rnn(model, ids, VOCAB)
    real = ids[:9]
    assert view.tokens == SENTENCE.split() and view.ids.tolist() == real.tolist() and view.ids.dtype == np.int64
    _, cache = model.run_with_cache(real[None])
    np.testing.assert_allclose(view.hidden, cache["rnn.hidden"][0].numpy(), atol=1e-6)
    np.testing.assert_allclose(view.hidden, fused_hidden(model, real), atol=1e-5)
    assert view.prefix_probabilities.shape == (9, 2)
    with torch.no_grad():
        for t in range(9):
            alone = torch.softmax(model(real[: t + 1][None]), dim=-1)[0].numpy()
            np.testing.assert_allclose(view.prefix_probabilities[t], alone, atol=1e-5)
        padded = torch.softmax(model(ids[None]), dim=-1)[0].numpy()
    np.testing.assert_allclose(view.probabilities, padded, atol=1e-5)
    assert view.class_names == ["negative", "positive"] and view.predicted == int(padded.argmax())
    cell = preset.split("-")[1]
    assert view.cell == cell and view.gate_names == {"rnn": ("h",), "lstm": ("input", "forget", "candidate", "output"),
                                                     "gru": ("reset", "update", "new")}[cell]
    assert (view.cell_state is not None) == (cell == "lstm")
    assert (view.gates is not None) == (cell != "rnn")
    if view.gates is not None:
        assert view.gates.shape == (9, len(view.gate_names), 64)
        np.testing.assert_array_equal(view.gates, cache["rnn.gates"][0].numpy())
    assert set(view.activations) == set(cache)  # every hook that fired, ready for a .npz
    assert all(view.activations[name].shape == cache[name].shape[1:] for name in cache)
    assert count_hooks(model) == 0


def test_lstm_cell_state_is_the_fused_kernels_and_unknown_words_read_as_the_vocab_says():
    model = token_model("sentiment-lstm")
    ids = torch.tensor([2, 1, 4, 8, 0, 0])  # "the <unk> is good"
    view = rnn_explain.inspect_rnn(model, ids, VOCAB)
    assert view.tokens == ["the", "<unk>", "is", "good"]
    with torch.no_grad():
        out, _ = model.rnn.net(model.embed.tokens(ids[:4][None]))
        # c_t is not returned by the fused kernel per step; run it one prefix at a time and read c_n.
        cells = [model.rnn.net(model.embed.tokens(ids[: t + 1][None]))[1][1][0, 0].numpy() for t in range(4)]
    np.testing.assert_allclose(view.cell_state, np.stack(cells), atol=1e-5)
    assert rnn_explain.inspect_rnn(model, ids, None).tokens == ["2", "1", "4", "8"]  # no vocabulary: the ids


def test_inspection_refuses_other_models_and_batches():
    cnn = build_model(presets.get("digits-cnn"), seed=0)
    with pytest.raises(ValueError, match="recurrent"):
        rnn_explain.inspect_rnn(cnn, torch.zeros(3, dtype=torch.int64), None)
    with pytest.raises(ValueError, match="one sentence"):
        rnn_explain.inspect_rnn(token_model("sentiment-gru"), torch.ones(2, 5, dtype=torch.int64), None)


def test_numeric_sequences_are_inspected_step_by_step():
    spec = ModelSpec(name="seq", kind="rnn", num_classes=3, input=InputSpec(kind="sequence", features=3, max_len=6),
                     rnn=RNNConfig(cell="gru", embed_dim=8, hidden_size=5))
    model = build_model(spec, seed=0)
    x = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(0))
    view = rnn_explain.inspect_rnn(model, x[0], None)
    assert view.tokens == [f"step {t}" for t in range(1, 7)] and view.hidden.shape == (6, 5)
    with torch.no_grad():
        for t in range(6):
            alone = torch.softmax(model(x[0, : t + 1][None]), dim=-1)[0].numpy()
            np.testing.assert_allclose(view.prefix_probabilities[t], alone, atol=1e-5)
    states = rnn_explain.dataset_hidden_states(model, x, batch_size=3)
    assert states.shape == (24, 5)  # no padding in numbers: every step counts
    np.testing.assert_allclose(states[6:12], rnn_explain.inspect_rnn(model, x[1], None).hidden, atol=1e-6)


@pytest.mark.parametrize("preset", ["sentiment-lstm", "sentiment-rnn"])
def test_dataset_hidden_states_are_every_real_step_of_each_sentence(preset):
    model = token_model(preset)
    sentences = [SENTENCE, "the film was not bad", "good", "the plot was boring", "bad bad bad"]
    x = torch.stack([sentence_ids(s) for s in sentences])  # (5, 12)
    states = rnn_explain.dataset_hidden_states(model, x, max_sentences=4, batch_size=3)  # batches of 3 then 1
    assert states.shape == (int((x[:4] != 0).sum()), 64) == (9 + 5 + 1 + 4, 64)
    per_sentence = np.concatenate([rnn_explain.inspect_rnn(model, row, VOCAB).hidden for row in x[:4]])
    np.testing.assert_allclose(states, per_sentence, atol=1e-5)
    assert rnn_explain.dataset_hidden_states(model, x[:0]).shape == (0, 64)
    assert count_hooks(model) == 0


def test_pca_is_the_covariance_eigendecomposition():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(80, 10)) * np.linspace(3, 0.2, 10) @ np.linalg.qr(rng.normal(size=(10, 10)))[0]
    pca = rnn_explain.fit_pca(data, k=3)
    assert pca.components.shape == (3, 10)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(pca.mean, data.mean(axis=0))
    np.testing.assert_allclose(pca.transform(data), (data - data.mean(axis=0)) @ pca.components.T)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(data, rowvar=False))  # ascending
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    np.testing.assert_allclose(pca.explained_variance_ratio, eigenvalues[:3] / eigenvalues.sum(), rtol=1e-8)
    np.testing.assert_allclose(np.abs(pca.components @ eigenvectors[:, :3]), np.eye(3), atol=1e-8)  # same up to sign
    biggest = pca.components[np.arange(3), np.abs(pca.components).argmax(axis=1)]
    assert (biggest > 0).all()  # the sign rule makes the picture deterministic
    # Negated, shifted data has the same directions; the sign rule gives the same rows, not flipped ones.
    np.testing.assert_allclose(rnn_explain.fit_pca(-data + 5, k=3).components, pca.components, atol=1e-10)


def test_pca_of_a_plane_in_ten_dimensions_needs_two_components():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 10)) + rng.normal(size=10)  # (200, 10), rank 2
    pca = rnn_explain.fit_pca(plane, k=3)
    assert pca.explained_variance_ratio[:2].sum() == pytest.approx(1.0, abs=1e-10)
    assert pca.explained_variance_ratio[2] == pytest.approx(0.0, abs=1e-10)
    rebuilt = pca.transform(plane)[:, :2] @ pca.components[:2] + pca.mean
    np.testing.assert_allclose(rebuilt, plane, atol=1e-8)


def test_pca_clips_k_and_refuses_what_it_cannot_fit():
    assert rnn_explain.fit_pca(np.arange(12.0).reshape(3, 4) ** 2, k=5).components.shape == (3, 4)
    assert rnn_explain.fit_pca(np.ones((4, 2)), k=3).explained_variance_ratio.tolist() == [0.0, 0.0]  # no spread
    with pytest.raises(ValueError, match="two hidden states"):
        rnn_explain.fit_pca(np.ones((1, 4)))
    with pytest.raises(ValueError, match="at least one component"):
        rnn_explain.fit_pca(np.ones((4, 4)), k=0)
    with pytest.raises(ValueError, match=r"\(M, 4\)"):
        rnn_explain.fit_pca(np.random.default_rng(0).normal(size=(5, 4))).transform(np.ones((2, 3)))


@pytest.mark.parametrize("preset", CELLS)
def test_step_arithmetic_lands_on_the_models_hidden_state_and_adds_up(preset):
    model = token_model(preset)
    ids = sentence_ids(SENTENCE)
    view = rnn_explain.inspect_rnn(model, ids, VOCAB)
    net = model.rnn.net
    for t in (0, 3, 8):
        step = rnn_explain.step_arithmetic(model, ids, t, VOCAB)
        assert step.t == t and step.token == SENTENCE.split()[t] and step.cell == view.cell
        np.testing.assert_allclose(step.x, model.embed.tokens.weight[ids[t]].detach().numpy())
        np.testing.assert_allclose(step.h_prev, view.hidden[t - 1] if t else np.zeros(64), atol=1e-6)
        np.testing.assert_allclose(step.h, view.hidden[t], atol=1e-6)
        wx = F.linear(torch.from_numpy(step.x), net.weight_ih_l0).detach().numpy()  # (G*H,)
        uh = F.linear(torch.from_numpy(step.h_prev), net.weight_hh_l0).detach().numpy()
        np.testing.assert_allclose(np.concatenate([p["Wx"] for p in step.terms.values()]), wx, atol=1e-6)
        np.testing.assert_allclose(np.concatenate([p["Uh"] for p in step.terms.values()]), uh, atol=1e-6)
        for g, (gate, parts) in enumerate(step.terms.items()):
            if gate == "new":  # GRU: the reset gate scales only the recurrent part
                scaled = step.terms["reset"]["value"] * (parts["Uh"] + parts["b_hn"])
                np.testing.assert_allclose(parts["r*(Uh+b_hn)"], scaled, atol=1e-6)
                np.testing.assert_allclose(parts["Wx"] + parts["b"] + scaled, parts["pre"], atol=1e-6)
            else:
                np.testing.assert_allclose(parts["Wx"] + parts["Uh"] + parts["b"], parts["pre"], atol=1e-6)
            if view.gates is not None:
                np.testing.assert_allclose(parts["value"], view.gates[t, g], atol=1e-6)
        if view.cell == "lstm":
            np.testing.assert_allclose(step.c, view.cell_state[t], atol=1e-6)
            np.testing.assert_allclose(step.c_prev, view.cell_state[t - 1] if t else np.zeros(64), atol=1e-6)
        else:
            assert step.c is None and step.c_prev is None
        if view.cell == "rnn":
            np.testing.assert_allclose(step.terms["h"]["value"], step.h)
        for unit in (0, 5, 63):
            lines = step.unit_numbers(unit)
            assert len(lines) == len(step.terms) + {"rnn": 0, "lstm": 2, "gru": 1}[view.cell]
            assert lines[-1].startswith(f"h_t[{unit + 1}] = ")  # units counted from 1
            assert float(lines[-1].rsplit("=", 1)[1].strip(" ()")) == pytest.approx(round(float(step.h[unit]), 3), abs=1e-9)
    assert step.equations[-1].startswith("h_t = ") and len(step.equations) == len(lines)
    assert count_hooks(model) == 0


def test_the_numbers_of_one_unit_read_like_the_equation():
    model = token_model("sentiment-rnn")
    step = rnn_explain.step_arithmetic(model, sentence_ids(SENTENCE), 2)
    parts = {name: float(value[7]) for name, value in step.terms["h"].items()}
    expected = " + ".join([f"{parts['Wx']:.3f}"] + [f"({v:.3f})" if v < 0 else f"{v:.3f}" for v in (parts["Uh"], parts["b"])])
    assert step.unit_numbers(7) == [rf"h_t[8] = \tanh({expected}) = \tanh({parts['pre']:.3f}) = {step.h[7]:.3f}"]
    assert step.equations == [r"h_t = \tanh(W x_t + U h_{t-1} + b)"] and step.token == "4"  # no vocab: the id


def test_step_arithmetic_uses_the_first_layer_forward_direction_of_a_deep_bidirectional_model():
    model = token_model("sentiment-lstm", num_layers=2, bidirectional=True)
    ids = sentence_ids(SENTENCE)
    first_layer = nn.LSTM(32, 64, batch_first=True)  # the reference: layer 0 forward alone, in PyTorch's kernel
    first_layer.load_state_dict({name: getattr(model.rnn.net, name) for name in
                                 ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")})
    with torch.no_grad():
        expected = first_layer(model.embed.tokens(ids[:9][None]))[0][0].numpy()  # (9, 64)
    step = rnn_explain.step_arithmetic(model, ids, 6)
    np.testing.assert_allclose(step.h, expected[6], atol=1e-5)
    np.testing.assert_allclose(step.h_prev, expected[5], atol=1e-5)
    assert rnn_explain.inspect_rnn(model, ids, VOCAB).hidden.shape == (9, 128)  # both directions concatenated


def test_step_and_unit_out_of_range_are_refused_in_plain_words():
    model = token_model("sentiment-gru")
    ids = sentence_ids("the film was not bad")
    for t in (-1, 5):
        with pytest.raises(ValueError, match="words 1 to 5"):
            rnn_explain.step_arithmetic(model, ids, t)
    with pytest.raises(ValueError, match="units 1 to 64"):
        rnn_explain.step_arithmetic(model, ids, 0).unit_numbers(64)
