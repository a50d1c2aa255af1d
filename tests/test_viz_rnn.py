"""viz.rnn: the figures carry exactly the arrays they were given (and, end to end, a sentence's
trajectory is its hidden states projected by the data set's PCA)."""
import numpy as np
import pytest
import torch

from explain import rnn as rnn_explain
from models import build_model, presets
from viz.rnn import gates_figure, step_columns, step_figure, trajectory_figure, units_heatmap

TOKENS = ["not", "bad", "not", "good"]


def token_model(cell: str):
    spec = presets.get(f"sentiment-{cell}")
    spec.input.vocab_size, spec.input.max_len = 20, 10
    return build_model(spec, seed=0)


def test_trajectory_2d_one_line_per_path_through_the_given_points():
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    fig = trajectory_figure([{"label": "a", "points": first, "tokens": TOKENS},
                             {"label": "b", "points": second, "tokens": ["so", "good"]}],
                            axis_titles=["PC1 (43%)", "PC2 (20%)", "PC3 (9%)"])
    assert [t.type for t in fig.data] == ["scatter", "scatter"] and [t.name for t in fig.data] == ["a", "b"]
    np.testing.assert_array_equal(fig.data[0].x, first[:, 0])
    np.testing.assert_array_equal(fig.data[0].y, first[:, 1])
    np.testing.assert_array_equal(fig.data[1].y, second[:, 1])
    assert list(fig.data[0].text) == TOKENS and "text" in fig.data[0].mode and "lines" in fig.data[0].mode
    assert fig.data[0].marker.symbol[0] != fig.data[0].marker.symbol[1]  # the first word stands out
    assert fig.data[0].line.color != fig.data[1].line.color
    # "%" is sent as &#37; (so no template field is filled in) and drawn as "%"
    assert fig.layout.xaxis.title.text == "PC1 (43&#37;)" and fig.layout.yaxis.title.text == "PC2 (20&#37;)"


def test_trajectory_3d_uses_three_columns_and_checks_its_input():
    points = np.random.default_rng(1).normal(size=(4, 3))
    fig = trajectory_figure([{"label": "a", "points": points, "tokens": TOKENS}], dims=3)
    assert fig.data[0].type == "scatter3d"
    for axis, column in zip("xyz", range(3)):
        np.testing.assert_array_equal(getattr(fig.data[0], axis), points[:, column])
    assert fig.layout.scene.zaxis.title.text == "PC3"
    with pytest.raises(ValueError, match="2 or 3"):
        trajectory_figure([], dims=4)
    with pytest.raises(ValueError, match="'a'"):
        trajectory_figure([{"label": "a", "points": points[:, :2], "tokens": TOKENS}], dims=3)
    with pytest.raises(ValueError):
        trajectory_figure([{"label": "a", "points": points, "tokens": TOKENS[:3]}])


def test_a_sentences_trajectory_is_its_hidden_states_projected_by_the_datasets_pca():
    model = token_model("gru")
    x = torch.randint(2, 20, (12, 10), generator=torch.Generator().manual_seed(0))
    x[::2, 6:] = 0  # some shorter, right-padded sentences
    pca = rnn_explain.fit_pca(rnn_explain.dataset_hidden_states(model, x, batch_size=5), k=3)
    view = rnn_explain.inspect_rnn(model, x[0], None)
    projected = pca.transform(view.hidden)  # (6, 3)
    fig = trajectory_figure([{"label": "probe", "points": projected, "tokens": view.tokens}])
    expected = (view.hidden - pca.mean) @ pca.components.T
    np.testing.assert_allclose(fig.data[0].x, expected[:, 0], atol=1e-9)
    np.testing.assert_allclose(fig.data[0].y, expected[:, 1], atol=1e-9)
    assert list(fig.data[0].text) == [str(int(i)) for i in x[0, :6]]


def test_units_heatmap_signed_values_are_centred_and_gates_use_zero_to_one():
    values = np.random.default_rng(0).uniform(-0.5, 0.9, size=(4, 6))
    fig = units_heatmap(values, TOKENS)
    heat = fig.data[0]
    np.testing.assert_array_equal(heat.z, values.T)  # (H, T): one column per word
    assert list(heat.x) == ["not", "bad", "not (3)", "good"]  # repeated words stay apart
    assert heat.zmin == -heat.zmax == -np.abs(values).max() and heat.colorscale == units_heatmap(
        values, TOKENS, signed=True).data[0].colorscale
    gate = units_heatmap(np.abs(values) / 2, TOKENS, title="forget gate", colorbar="f")
    assert (gate.data[0].zmin, gate.data[0].zmax) == (0.0, 1.0) and gate.layout.title.text == "forget gate"
    assert gate.data[0].colorbar.title.text == "f"
    assert units_heatmap(np.abs(values), TOKENS, signed=True).data[0].zmin < 0  # the caller can insist
    with pytest.raises(ValueError):
        units_heatmap(values, TOKENS[:3])


def test_gates_figure_one_heatmap_per_gate_on_its_own_scale():
    rng = np.random.default_rng(2)
    gates = rng.uniform(0, 1, size=(4, 4, 5))
    gates[:, 2] = rng.uniform(-1, 1, size=(4, 5))  # the candidate is a tanh
    names = ("input", "forget", "candidate", "output")
    fig = gates_figure(gates, names, TOKENS)
    assert len(fig.data) == 4 and all(t.type == "heatmap" for t in fig.data)
    for g in range(4):
        np.testing.assert_array_equal(fig.data[g].z, gates[:, g, :].T)
        assert list(fig.data[g].x) == ["not", "bad", "not (3)", "good"]
    assert [(t.zmin, t.zmax) for t in fig.data] == [(0, 1), (0, 1), (-1, 1), (0, 1)]
    assert [a.text.split()[0] for a in fig.layout.annotations] == list(names)
    gru = gates_figure(gates[:, :3], ("reset", "update", "new"), TOKENS)
    assert [(t.zmin, t.zmax) for t in gru.data] == [(0, 1), (0, 1), (-1, 1)]
    with pytest.raises(ValueError):
        gates_figure(gates, names[:3], TOKENS)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_step_figure_shows_the_steps_vectors_as_columns(cell):
    model = token_model(cell)
    step = rnn_explain.step_arithmetic(model, torch.tensor([3, 7, 5, 0]), 2)
    fig = step_figure(step, units=16)
    heat = fig.data[0]
    labels, numbers = step_columns(step, 16)
    assert list(heat.x) == labels and heat.texttemplate and np.asarray(heat.z).shape == (16, len(labels))
    np.testing.assert_array_equal(heat.z, numbers)
    column = dict(zip(labels, np.asarray(heat.z).T))
    np.testing.assert_array_equal(column["h[t-1]"], step.h_prev[:16])
    np.testing.assert_array_equal(column["h[t]"], step.h[:16])
    for gate, parts in step.terms.items():
        symbol = {"h": "h", "input": "i", "forget": "f", "candidate": "g", "output": "o",
                  "reset": "r", "update": "z", "new": "n"}[gate]
        np.testing.assert_array_equal(column[f"{symbol}: pre"], parts["pre"][:16])
    if cell == "lstm":
        np.testing.assert_array_equal(column["c[t]"], step.c[:16])
        np.testing.assert_array_equal(column["f = σ(pre)"], step.terms["forget"]["value"][:16])
        assert len(labels) == 2 + 8 + 2
    if cell == "gru":
        np.testing.assert_array_equal(column["n = tanh(pre)"], step.terms["new"]["value"][:16])
    if cell == "rnn":
        assert labels == ["h[t-1]", "h: pre", "h[t]"]
    assert np.asarray(step_figure(step, units=500).data[0].z).shape[0] == 64  # clipped to the layer
    with pytest.raises(ValueError):
        step_columns(step, 0)
