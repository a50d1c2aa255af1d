"""What a transformer's attention does with one input, as plain arrays for the Inspect page.

``inspect_attention`` runs the model once with every hook cached and keeps, for every block
and head, the queries, keys, the scores QKᵀ/√d before the softmax and the attention pattern
after it, so the page can show every head at a glance and then one query's arithmetic:

    α_ij = softmax_j(q_i · k_j / √d),    z_i = Σ_j α_ij v_j

``query_arithmetic`` recomputes that one row from q and k by hand, and the head's output z_i as
the weighted sum of the values (the numbers a student can check on paper); ``cls_patch_attention``
folds the [CLS] token's attention over image patches back onto the patch grid so it can be laid
over the picture.

What one inspection keeps grows with the square of the input's length (every head's T × T
scores and weights): ``inspection_bytes`` says how much before the model runs, and an input
that would make the server hold more than ``training.limits.view_memory_bytes()`` (64 MB unless
GLASSBOX_VIEW_MEMORY_MB says otherwise) is refused in words, with the longest that fits. The
arrays are kept once: ``activations`` shares the memory of ``patterns``, ``scores``, ``queries``,
``keys`` and ``values`` (``held_bytes`` counts what an inspection holds).

Sentences are run with their padding stripped, so no key is masked and every pattern row is
exactly the softmax of its score row. Arguments are 0-based indices (code); the formulas and
messages a student reads count blocks, heads and token positions from 1 (``explain.counting``).
Nothing here plots or imports Streamlit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from models.words import with_article
from training.limits import size_words, view_memory_bytes

from .counting import counted, one_to
from .heads import most_concentrated_head
from .predictions import class_names_of, prefix_probabilities, softmax
from .tokens import PAD_ID, attention_labels, pad_id_of, strip_padding, words_of

ATTENTION_FORMULA = r"\alpha_{ij} = \mathrm{softmax}_j\left(\frac{q_i \cdot k_j}{\sqrt{d}}\right)"
PAD_WORD = "<pad>"  # label of a <pad> id left inside a sentence (only trailing padding is stripped)


MAX_PREFIXES = 64  # tokens; longer texts get no prediction-after-each-word view

@dataclass
class AttentionInspection:
    """Everything the attention views need about one input; T counts [CLS] when the model uses it."""

    family_input: str  # "tokens" | "image"
    labels: list[str]  # (T,) one per position: "[CLS]" first when used, then words / "patch 1", ...
    tokens: list[str]  # words only (tokens input), [] for images
    class_names: list[str]  # (K,)
    probabilities: np.ndarray  # (K,) the model's prediction for the whole input
    prefix_probabilities: np.ndarray | None  # (T_words, K) after words 1..t; None for images and long texts
    patterns: np.ndarray  # (L, heads, T, T) attention weights, rows sum to 1
    scores: np.ndarray  # (L, heads, T, T) QKᵀ/√d before the softmax
    queries: np.ndarray  # (L, heads, T, dh)
    keys: np.ndarray  # (L, heads, T, dh)
    head_dim: int  # dh, the d in √d
    patch_grid: tuple[int, int] | None  # (rows, cols) of patches for images, else None
    patch_size: int | None  # side of a square patch in pixels, images only
    activations: dict[str, np.ndarray]  # every hook's value with the batch dim removed (for a .npz export)
    values: np.ndarray | None = None  # (L, heads, T, dh) the vectors the weights average
    has_cls: bool = False  # position 0 is the [CLS] summary token

    @property
    def num_layers(self) -> int:
        return int(self.patterns.shape[0])

    @property
    def held_bytes(self) -> int:
        """The bytes of every array this inspection holds, each buffer counted once."""
        arrays = [self.probabilities, self.prefix_probabilities, self.patterns, self.scores, self.queries,
                  self.keys, self.values, *self.activations.values()]
        return held_bytes(arrays)

    @property
    def num_heads(self) -> int:
        return int(self.patterns.shape[1])

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    @cached_property
    def clearest_head(self) -> tuple[int, int]:
        """(block, head), 0-based: ``explain.heads.most_concentrated_head`` of the patterns, worked
        out once per inspection (the inspection is shared; a ViT's 144 heads × 197² weights take
        a good part of a second)."""
        return most_concentrated_head(self.patterns)


ATTENTION_POINTS = ("q", "k", "v", "scores", "pattern")  # kept stacked; activations holds views of them


def held_bytes(arrays) -> int:
    """The bytes of the buffers behind ``arrays`` (numpy arrays or None), each counted once."""
    buffers = {}
    for array in arrays:
        if array is None:
            continue
        base = array
        while isinstance(base.base, np.ndarray):
            base = base.base
        buffers[id(base)] = base.nbytes
    return sum(buffers.values())


def inspection_bytes(spec, length: int) -> int:
    """What ``inspect_attention`` keeps for an input of ``length`` positions (with [CLS]), in
    float32 bytes: per block, every head's scores and weights (2 × heads × T × T) and seven
    T × d arrays (q, k, v, the heads' mixes z, the attention's and the MLP's outputs, the block's
    output); then the embedding (T × d) and the pooled vector (d)."""
    t, d = spec.transformer, spec.transformer.d_model
    per_block = 2 * t.num_heads * length * length + 7 * length * d
    return 4 * (t.num_layers * per_block + length * d + d)


def longest_that_fits(spec, budget: int) -> int:
    """The most positions whose inspection fits in ``budget`` bytes."""
    low, high = 0, 1
    while inspection_bytes(spec, high) <= budget:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if inspection_bytes(spec, middle) <= budget else (low, middle)
    return low


def check_view_memory(spec, length: int, what: str, unit: str = "tokens") -> None:
    """ValueError, in words, if inspecting ``length`` positions (``unit``) would hold more than one view may."""
    budget = view_memory_bytes()
    needed = inspection_bytes(spec, length)
    if needed <= budget:
        return
    fits = longest_that_fits(spec, budget)
    raise ValueError(f"{what} is {length} {unit} long, and the attention of its {spec.transformer.num_layers} blocks × "
                     f"{spec.transformer.num_heads} heads over it would take {size_words(needed)} of the server's "
                     f"memory; one view may take {size_words(budget)} (the whole class shares this server), which is "
                     f"up to {fits} {unit} for {spec.name}. Try a shorter text")


@torch.no_grad()
def inspect_attention(model, x: torch.Tensor, vocab: list[str] | None = None) -> AttentionInspection:
    """One cached forward pass (eval mode, no grad) of a transformer on ``x``: (T,) token ids,
    padding stripped here, or a (C, H, W) image."""
    spec = model.spec
    if spec.kind != "transformer":
        raise ValueError("attention can only be inspected in a transformer, and this model is "
                         f"{with_article(spec.family())}")
    model.eval()
    x = torch.as_tensor(x)
    if spec.input.kind == "tokens":
        if x.dim() != 1:
            raise ValueError(f"give one sentence as a row of token ids, not an array of shape {tuple(x.shape)}")
        x = strip_padding(x, pad_id_of(model))
        tokens = model.tokens_of(x)  # a pretrained model labels its subwords with its own tokenizer ("##ing")
        if tokens is None:  # words_of drops <pad> ids, so a pad inside the sentence is labelled here: one label per position
            tokens = [PAD_WORD if int(i) == PAD_ID else words_of([int(i)], vocab)[0] for i in x]
    else:
        expected = (spec.input.channels, spec.input.height, spec.input.width)
        if tuple(x.shape) != expected:
            raise ValueError(f"this model looks at {expected[0]}×{expected[1]}×{expected[2]} images, "
                             f"not an array of shape {tuple(x.shape)}")
        x = x.float()
        tokens = []
    positions = (len(x) if spec.input.kind == "tokens" else
                 (spec.input.height // spec.transformer.patch_size) * (spec.input.width // spec.transformer.patch_size))
    check_view_memory(spec, positions + (spec.transformer.pooling == "cls"),
                      *(("This text", "tokens") if spec.input.kind == "tokens" else ("This picture", "patches")))
    logits, cache = model.run_with_cache(x.unsqueeze(0))  # (1, K), hooks with a batch of 1

    def stacked(point: str) -> np.ndarray:  # (L, heads, ...) one hook point of every block
        return np.stack([cache[f"blocks.{i}.attn.{point}"][0].float().numpy()
                         for i in range(spec.transformer.num_layers)])

    kept = {point: stacked(point) for point in ATTENTION_POINTS}
    patterns = kept["pattern"]  # (L, heads, T, T)
    length = patterns.shape[-1]
    image = spec.input.kind == "image"
    patch = spec.transformer.patch_size if image else None
    return AttentionInspection(
        family_input=spec.input.kind,
        labels=attention_labels(spec, tokens, length),
        tokens=tokens,
        class_names=class_names_of(model),
        probabilities=softmax(logits)[0],
        # Every prefix is one more forward pass over up to T tokens: a long text to a large
        # pretrained classifier would take minutes, so the view is left out past MAX_PREFIXES.
        prefix_probabilities=None if image or len(x) > MAX_PREFIXES else prefix_probabilities(model, x),
        patterns=patterns,
        scores=kept["scores"],
        queries=kept["q"],
        keys=kept["k"],
        values=kept["v"],
        head_dim=spec.transformer.d_model // spec.transformer.num_heads,
        patch_grid=(spec.input.height // patch, spec.input.width // patch) if image else None,
        patch_size=patch,
        activations={name: _kept_view(kept, name) if _kept_view(kept, name) is not None else value[0].float().numpy()
                     for name, value in cache.items()},
        has_cls=spec.transformer.pooling == "cls")


def _kept_view(kept: dict, name: str) -> np.ndarray | None:
    """Block i's ``blocks.i.attn.<point>`` as a view of the stacked array (None: not one of those)."""
    parts = name.split(".")
    if len(parts) == 4 and parts[0] == "blocks" and parts[2] == "attn" and parts[3] in kept and parts[1].isdigit():
        return kept[parts[3]][int(parts[1])]
    return None


def head_average(inspection: AttentionInspection, layer: int) -> np.ndarray:
    """(T, T) the block's attention averaged over its heads (rows still sum to 1)."""
    _check_index("block", layer, inspection.num_layers)
    return inspection.patterns[layer].mean(axis=0)


@dataclass
class QueryArithmetic:
    """One query token's attention in one head, with the numbers that produce it."""

    layer: int  # 0-based block index
    head: int  # 0-based head index
    query: int  # 0-based position of the query token
    query_label: str
    q: np.ndarray  # (dh,) the query vector q_i
    keys: np.ndarray  # (T, dh) every key k_j
    dots: np.ndarray  # (T,) q_i · k_j
    scale: float  # √dh
    scores: np.ndarray  # (T,) dots / scale; equals inspection.scores[layer, head, query]
    weights: np.ndarray  # (T,) softmax(scores); equals inspection.patterns[layer, head, query]
    formula: str  # LaTeX of α_ij = softmax_j(q_i·k_j / √d)
    key_labels: list[str] | None = None  # (T,) label of each key position
    values: np.ndarray | None = None  # (T, dh) every value v_j (None: the inspection kept none)
    output: np.ndarray | None = None  # (dh,) z_i = sum_j weights[j] * v_j, what this head passes on

    def top_keys(self, top: int = 3) -> list[int]:
        """Positions of the ``top`` most-attended keys, strongest first (ties: earlier first)."""
        return [int(j) for j in np.argsort(-self.weights, kind="stable")[: max(0, top)]]

    def numbers(self, top: int = 3) -> list[str]:
        """LaTeX lines for the ``top`` most-attended keys, each key named by its position (counted
        from 1, as the student counts the tokens) and label: j = 2 (film): q_1·k_2 = 2.31,
        2.31 / √16 = 0.578, softmax → 0.412."""
        labels = self.key_labels or [str(counted(j)) for j in range(len(self.weights))]
        d = round(self.scale ** 2)
        lines = []
        for j in self.top_keys(top):
            dot = self.dots[j]
            lines.append(
                rf"j = {counted(j)}\ (\text{{{_latex_text(labels[j])}}}):\quad "
                rf"q_{{{counted(self.query)}}} \cdot k_{{{counted(j)}}} = {dot:.2f},\quad "
                rf"{dot:.2f} / \sqrt{{{d}}} = {self.scores[j]:.3f},\quad "
                rf"\mathrm{{softmax}} \to {self.weights[j]:.3f}")
        return lines

    def output_numbers(self, count: int = 4) -> str:
        """LaTeX of the head's output for this query, its first ``count`` numbers (subscripts
        counted from 1): z_3 = sum_j alpha_3j v_j = (0.112, -0.734, ...)."""
        if self.output is None:
            raise ValueError("this inspection kept no values, so the output cannot be written out")
        shown = ", ".join(f"{value:.3f}" for value in self.output[: max(1, count)])
        more = r", \ldots" if len(self.output) > count else ""
        i = counted(self.query)
        return rf"z_{{{i}}} = \sum_j \alpha_{{{i}j}}\, v_j = ({shown}{more})"


def query_arithmetic(inspection: AttentionInspection, layer: int, head: int, query: int) -> QueryArithmetic:
    """Recompute one row of one head's attention from its query and keys, step by step."""
    _check_index("block", layer, inspection.num_layers)
    _check_index("head", head, inspection.num_heads)
    _check_index("token", query, len(inspection.labels))
    q = inspection.queries[layer, head, query].astype(np.float64)  # (dh,)
    keys = inspection.keys[layer, head].astype(np.float64)  # (T, dh)
    dots = keys @ q  # (T,)
    scale = math.sqrt(inspection.head_dim)
    scores = dots / scale
    weights = np.exp(scores - scores.max())  # shifted by the max so exp cannot overflow; softmax is unchanged
    weights /= weights.sum()
    values = None if inspection.values is None else inspection.values[layer, head].astype(np.float64)  # (T, dh)
    return QueryArithmetic(layer=layer, head=head, query=query, query_label=inspection.labels[query],
                           q=q, keys=keys, dots=dots, scale=scale, scores=scores, weights=weights,
                           formula=ATTENTION_FORMULA, key_labels=list(inspection.labels), values=values,
                           output=None if values is None else weights @ values)


def cls_patch_attention(inspection: AttentionInspection, layer: int) -> np.ndarray:
    """(heads, rows, cols): how much the [CLS] token (query 0) attends to each image patch,
    laid out on the patch grid. The classifier reads only [CLS], so this is where it looks."""
    grid = _patch_grid(inspection)
    if not inspection.has_cls:
        raise ValueError("this model has no [CLS] token (it averages its patches); "
                         "use mean_patch_attention to see the attention each patch receives")
    _check_index("block", layer, inspection.num_layers)
    from_cls = inspection.patterns[layer, :, 0, 1:]  # (heads, rows*cols): [CLS] row, patch columns
    return from_cls.reshape(inspection.num_heads, *grid)  # (heads, rows, cols), patches are numbered row by row


def mean_patch_attention(inspection: AttentionInspection, layer: int) -> np.ndarray:
    """(heads, rows, cols): the attention each image patch receives, averaged over every query
    position ([CLS] included when there is one); works with or without a [CLS] token."""
    grid = _patch_grid(inspection)
    _check_index("block", layer, inspection.num_layers)
    received = inspection.patterns[layer].mean(axis=1)  # (heads, Tk): column means over the queries
    patches = received[:, 1:] if inspection.has_cls else received  # (heads, rows*cols)
    return patches.reshape(inspection.num_heads, *grid)  # (heads, rows, cols)


def _patch_grid(inspection: AttentionInspection) -> tuple[int, int]:
    if inspection.family_input != "image" or inspection.patch_grid is None:
        raise ValueError("attention over patches needs a vision transformer (an image model); this one reads sentences")
    return inspection.patch_grid


def _check_index(what: str, index: int, count: int) -> None:
    """A 0-based ``index`` among ``count``; the message counts from 1, as the page does."""
    if not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        which = counted(index) if isinstance(index, (int, np.integer)) else repr(index)
        raise ValueError(f"{what} {which} does not exist; choose {one_to(count)}")


def _latex_text(text: str) -> str:
    """``text`` made safe inside LaTeX \\text{...} (KaTeX), e.g. a word with _ or a brace in it."""
    special = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "#": r"\#", "$": r"\$",
               "%": r"\%", "&": r"\&", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}"}
    return "".join(special.get(char, char) for char in text)
