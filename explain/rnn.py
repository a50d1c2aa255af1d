"""What a recurrent classifier (RNN, LSTM, GRU) does with a sentence, as plain arrays.

- ``inspect_rnn``: one sentence in; the words, the prediction after every prefix, the hidden
  state, the LSTM cell state and the gate values at every word, and every hook's activation
  (for a .npz download).
- ``dataset_hidden_states`` + ``fit_pca``: the hidden states of many sentences, and the
  directions they vary most along, so one sentence's path through the hidden space can be
  drawn in 2-D or 3-D against the space the whole data set uses.
- ``step_arithmetic``: one step of the first layer written out with its numbers (W x_t,
  U h_{t-1}, bias, pre-activation, gate value), for the "do the maths by hand" view.

Arguments are 0-based indices (code); the numbers a student reads (``h_t[1]`` for the first unit,
"word 1" in a message) count from 1 (``explain.counting``). Nothing here plots or imports
Streamlit; ``viz.rnn`` draws these arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.rnn import GATE_NAMES
from models.words import with_article

from .counting import counted, numbered, one_to
from .predictions import class_names_of, prefix_probabilities, softmax
from .tokens import PAD_ID, strip_padding

GATE_SYMBOLS = {"h": "h", "input": "i", "forget": "f", "candidate": "g", "output": "o",
                "reset": "r", "update": "z", "new": "n"}  # the letters the equations use
TANH_GATES = ("h", "candidate", "new")  # squashed to -1..1; every other gate is a sigmoid (0..1)
EQUATIONS = {
    "rnn": [r"h_t = \tanh(W x_t + U h_{t-1} + b)"],
    "lstm": [r"i_t = \sigma(W_i x_t + U_i h_{t-1} + b_i)", r"f_t = \sigma(W_f x_t + U_f h_{t-1} + b_f)",
             r"g_t = \tanh(W_g x_t + U_g h_{t-1} + b_g)", r"o_t = \sigma(W_o x_t + U_o h_{t-1} + b_o)",
             r"c_t = f_t \odot c_{t-1} + i_t \odot g_t", r"h_t = o_t \odot \tanh(c_t)"],
    "gru": [r"r_t = \sigma(W_r x_t + U_r h_{t-1} + b_r)", r"z_t = \sigma(W_z x_t + U_z h_{t-1} + b_z)",
            r"n_t = \tanh(W_n x_t + b_n + r_t \odot (U_n h_{t-1} + b_{hn}))",
            r"h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}"],
}


@dataclass
class RNNInspection:
    """What an RNN classifier does with one sentence."""

    tokens: list[str]  # (T,) the words as the model sees them (pads removed, <unk> as the vocab says)
    ids: np.ndarray  # (T,) int64 token ids, padding stripped; (T, F) numbers for sequence input
    class_names: list[str]  # (K,)
    probabilities: np.ndarray  # (K,) after the whole sentence
    prefix_probabilities: np.ndarray  # (T, K) after words 1..t
    cell: str  # rnn | lstm | gru
    hidden: np.ndarray  # (T, Hd) top layer's h_t (both directions concatenated if bidirectional)
    cell_state: np.ndarray | None  # (T, Hd) top layer's c_t, LSTM only
    gates: np.ndarray | None  # (T, G, Hd) top layer's gate values, LSTM/GRU only
    gate_names: tuple[str, ...]  # (G,) models.rnn.GATE_NAMES[cell]
    activations: dict[str, np.ndarray]  # every hook's value, batch dim removed

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))


def _check_rnn(model) -> None:
    if model.spec.kind != "rnn":
        raise ValueError("this view needs a recurrent model (RNN, LSTM or GRU), "
                         f"not {with_article(model.spec.family())}")


def _word(token_id: int, vocab: list[str] | None) -> str:
    # One label per position (a <pad> inside a sentence keeps its place, unlike tokens.words_of),
    # so tokens always line up with the hidden states.
    return vocab[token_id] if vocab is not None and 0 <= token_id < len(vocab) else str(token_id)


def _prepare(model, x: torch.Tensor) -> torch.Tensor:
    """(T,) token ids without trailing padding, or a (T, F) numeric sequence as floats."""
    if model.spec.input.kind == "tokens":
        x = torch.as_tensor(x)
        if x.is_floating_point() or x.dim() != 1:
            raise ValueError(f"this model reads one sentence of token ids, shape (T,), not {tuple(x.shape)}")
        return strip_padding(x)
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"this model reads one sequence of shape (T, features), not {tuple(x.shape)}")
    return x


@torch.no_grad()
def inspect_rnn(model, ids: torch.Tensor, vocab: list[str] | None = None) -> RNNInspection:
    """Everything the RNN views show about one sentence ``ids`` (T,), padded or not."""
    _check_rnn(model)
    model.eval()
    x = _prepare(model, ids)
    logits, cache = model.run_with_cache(x[None])  # every hook: embed.out, rnn.hidden, rnn.cell, ...
    activations = {name: value[0].float().numpy() for name, value in cache.items()}  # batch dim dropped
    if model.spec.input.kind == "tokens":
        tokens = [_word(int(i), vocab) for i in x]
        prefixes = prefix_probabilities(model, x)
    else:  # a numeric sequence has no padding, so each prefix is run on its own
        tokens = [numbered("step", t) for t in range(len(x))]
        prefixes = np.concatenate([softmax(model(x[None, : t + 1])) for t in range(len(x))], axis=0)
    cell = model.spec.rnn.cell
    return RNNInspection(
        tokens=tokens, ids=x.numpy(), class_names=class_names_of(model), probabilities=softmax(logits)[0],
        prefix_probabilities=prefixes, cell=cell, hidden=activations["rnn.hidden"],
        cell_state=activations.get("rnn.cell"), gates=activations.get("rnn.gates"),
        gate_names=GATE_NAMES[cell], activations=activations)


@torch.no_grad()
def dataset_hidden_states(model, x: torch.Tensor, max_sentences: int = 300, batch_size: int = 64) -> np.ndarray:
    """(M, Hd): rnn.hidden at every real (non-pad) step of the first ``max_sentences`` rows of ``x``.

    Rows are right-padded (N, T) ids as data sets store them. For a bidirectional model the
    backward half is what the padded row gives, which can differ slightly from the same
    sentence run alone (the backward pass reads the padding first).
    """
    _check_rnn(model)
    if max_sentences < 1 or batch_size < 1:
        raise ValueError("max_sentences and batch_size must be at least 1")
    model.eval()
    rows = torch.as_tensor(x)[:max_sentences]
    parts = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]  # (B, T) ids or (B, T, F) numbers
        _, cache = model.run_with_cache(batch, names=["rnn.hidden"])
        hidden = cache["rnn.hidden"].float()  # (B, T, Hd)
        real = batch != PAD_ID if model.spec.input.kind == "tokens" else torch.ones(hidden.shape[:2], dtype=torch.bool)
        parts.append(hidden[real].numpy())  # (real steps in the batch, Hd), row by row in reading order
    width = model.spec.rnn.hidden_size * (2 if model.spec.rnn.bidirectional else 1)
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, width), dtype=np.float32)


@dataclass
class PCA:
    """Principal directions of a cloud of hidden states."""

    mean: np.ndarray  # (Hd,)
    components: np.ndarray  # (k, Hd) orthonormal rows, strongest first, largest-|.| entry positive
    explained_variance_ratio: np.ndarray  # (k,) share of the total variance along each component

    def transform(self, states: np.ndarray) -> np.ndarray:
        """(M, Hd) states -> (M, k) coordinates along the components."""
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or states.shape[1] != self.mean.shape[0]:
            raise ValueError(f"need (M, {self.mean.shape[0]}) hidden states to project, got shape {states.shape}")
        return (states - self.mean) @ self.components.T


def fit_pca(states: np.ndarray, k: int = 3) -> PCA:
    """PCA by SVD of the centred states; ``k`` is clipped to min(M, Hd)."""
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2:
        raise ValueError(f"need (M, Hd) hidden states, got shape {states.shape}")
    if states.shape[0] < 2:
        raise ValueError("at least two hidden states are needed to find the directions they vary along")
    if k < 1:
        raise ValueError(f"ask for at least one component, not {k}")
    k = min(k, *states.shape)
    mean = states.mean(axis=0)
    _, singular, right = np.linalg.svd(states - mean, full_matrices=False)  # right: (min(M, Hd), Hd)
    components = right[:k].copy()
    # SVD may return v or -v; fixing the sign keeps the picture from flipping between runs.
    strongest = components[np.arange(k), np.abs(components).argmax(axis=1)]
    components *= np.where(strongest < 0, -1.0, 1.0)[:, None]
    variance = singular ** 2
    total = variance.sum()
    ratio = variance[:k] / total if total > 0 else np.zeros(k)
    return PCA(mean=mean, components=components, explained_variance_ratio=ratio)


@dataclass
class StepArithmetic:
    """One step of the first layer (forward direction) written out with numbers."""

    cell: str  # rnn | lstm | gru
    t: int  # the step, 0-based
    token: str  # the word read at step t
    x: np.ndarray  # (E,) the input at step t (the embedding)
    h_prev: np.ndarray  # (H,) h_{t-1}, zeros at t = 0
    c_prev: np.ndarray | None  # (H,) c_{t-1}, LSTM only
    terms: dict[str, dict[str, np.ndarray]]  # gate -> {"Wx", "Uh", "b", "pre", "value", ...}, each (H,)
    h: np.ndarray  # (H,) h_t
    c: np.ndarray | None  # (H,) c_t, LSTM only
    equations: list[str]  # LaTeX, one line per gate and state

    def unit_numbers(self, unit: int) -> list[str]:
        """LaTeX lines with the actual numbers for one hidden unit (0-based ``unit``), ending with
        h_t[unit + 1]: the subscript counts units from 1, as the page's input does."""
        if not 0 <= unit < len(self.h):
            raise ValueError(f"unit {counted(unit)} does not exist; this layer has units {one_to(len(self.h))}")
        lines = []
        k = counted(unit)  # the unit as the student chose it
        for gate, parts in self.terms.items():
            p = {name: float(v[unit]) for name, v in parts.items()}
            squash = r"\tanh" if gate in TANH_GATES else r"\sigma"
            if "r*(Uh+b_hn)" in parts:  # GRU's new gate: the reset gate scales the recurrent part only
                r = float(self.terms["reset"]["value"][unit])
                inner = f"{_sum(p['Wx'], p['b'])} + {_n(r)} \\cdot ({_sum(p['Uh'], p['b_hn'])})"
            else:
                inner = _sum(p["Wx"], p["Uh"], p["b"])
            lines.append(f"{GATE_SYMBOLS[gate]}_t[{k}] = {squash}({inner}) = {squash}({_n(p['pre'])}) = {_n(p['value'])}")
        v = {gate: float(parts["value"][unit]) for gate, parts in self.terms.items()}
        h_prev, h = float(self.h_prev[unit]), float(self.h[unit])
        if self.cell == "lstm":
            c_prev, c = float(self.c_prev[unit]), float(self.c[unit])
            lines.append(f"c_t[{k}] = {_product(v['forget'], c_prev)} + {_product(v['input'], v['candidate'])} = {_n(c)}")
            lines.append(f"h_t[{k}] = {_n(v['output'])} \\cdot \\tanh({_n(c)}) = {_n(h)}")
        elif self.cell == "gru":
            z = v["update"]
            lines.append(f"h_t[{k}] = (1 - {_n(z)}) \\cdot {_bracketed(v['new'])} + {_product(z, h_prev)} = {_n(h)}")
        return lines


def _n(value: float) -> str:
    return f"{value:.3f}"


def _bracketed(value: float) -> str:
    """A negative number after '+' or '·' goes in brackets, so '+ (-0.103)' reads right."""
    return f"({_n(value)})" if _n(value).startswith("-") else _n(value)


def _sum(first: float, *rest: float) -> str:
    return " + ".join([_n(first)] + [_bracketed(v) for v in rest])


def _product(left: float, right: float) -> str:
    return f"{_n(left)} \\cdot {_bracketed(right)}"


@torch.no_grad()
def step_arithmetic(model, ids: torch.Tensor, t: int, vocab: list[str] | None = None) -> StepArithmetic:
    """Step ``t`` (0-based) of layer 0's forward direction, recomputed from the start with zeros."""
    _check_rnn(model)
    model.eval()
    x = _prepare(model, ids)
    if not isinstance(t, (int, np.integer)) or not 0 <= t < len(x):
        which = counted(t) if isinstance(t, (int, np.integer)) else repr(t)
        raise ValueError(f"word {which} does not exist; this sentence has words {one_to(len(x))}")
    t = int(t)
    net, cell = model.rnn.net, model.spec.rnn.cell
    w_ih, w_hh = net.weight_ih_l0.detach().float(), net.weight_hh_l0.detach().float()  # (G*H, E), (G*H, H)
    b_ih, b_hh = net.bias_ih_l0.detach().float(), net.bias_hh_l0.detach().float()  # (G*H,)
    inputs = model.embed(x[None])[0].float()  # (T, E)
    gate_names = GATE_NAMES[cell]
    h = c = torch.zeros(net.hidden_size)
    for step in range(t + 1):
        h_prev, c_prev = h, c
        wx_all, uh_all = w_ih @ inputs[step], w_hh @ h_prev  # (G*H,) each
        wx, uh = wx_all.chunk(len(gate_names)), uh_all.chunk(len(gate_names))  # G pieces of (H,)
        bi, bh = b_ih.chunk(len(gate_names)), b_hh.chunk(len(gate_names))
        terms = {}
        for g, gate in enumerate(gate_names):
            if gate == "new":  # GRU: n = tanh(W x + b_in + r * (U h + b_hn))
                scaled = terms["reset"]["value"] * (uh[g] + bh[g])
                pre = wx[g] + bi[g] + scaled
                terms[gate] = {"Wx": wx[g], "Uh": uh[g], "b": bi[g], "b_hn": bh[g], "r*(Uh+b_hn)": scaled, "pre": pre}
            else:
                pre = wx[g] + uh[g] + (bi[g] + bh[g])
                terms[gate] = {"Wx": wx[g], "Uh": uh[g], "b": bi[g] + bh[g], "pre": pre}
            terms[gate]["value"] = torch.tanh(pre) if gate in TANH_GATES else torch.sigmoid(pre)
        value = {gate: parts["value"] for gate, parts in terms.items()}
        if cell == "rnn":
            h = value["h"]
        elif cell == "lstm":
            c = value["forget"] * c_prev + value["input"] * value["candidate"]
            h = value["output"] * torch.tanh(c)
        else:
            h = (1 - value["update"]) * value["new"] + value["update"] * h_prev
    lstm = cell == "lstm"
    token = _word(int(x[t]), vocab) if model.spec.input.kind == "tokens" else numbered("step", t)
    return StepArithmetic(
        cell=cell, t=t, token=token, x=inputs[t].numpy(), h_prev=h_prev.numpy(),
        c_prev=c_prev.numpy() if lstm else None,
        terms={gate: {name: v.numpy() for name, v in parts.items()} for gate, parts in terms.items()},
        h=h.numpy(), c=c.numpy() if lstm else None, equations=list(EQUATIONS[cell]))
