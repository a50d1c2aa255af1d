"""Inspect pages: how long one input takes to show, against one plain forward pass.

    python bench/inspect_latency.py [--repeats 20] [--threads 1]

For every preset, with the model built by ``build_model(presets.get(name), seed=0)`` and the
page's default input, this times everything the page computes and draws for that input:

- the explain calls the page makes (input preparation from the data, the inspection, the
  arithmetic views) and every figure it builds, each serialised with ``fig.to_json()`` as
  ``st.plotly_chart`` does before it sends a figure; the Streamlit transport is not timed;
- against one plain forward pass ``model(x.unsqueeze(0))`` in eval mode under ``no_grad``,
  on the same input, in the same process, with the same threads.

Both are timed the same way, with ``time.perf_counter``: a warm-up, then the median of many
calls, ``--repeats`` page calls and ten times as many forward passes (a thousand times
shorter, so noisier), interleaved so that a busy spell on a shared machine slows both alike.
The Hidden states page fits its PCA once per model and
training step and keeps it in the session, so that fit is timed on its own and left out of
the page. The downloads (HTML of a figure, .npz of the activations) are built only when
clicked, so they are not part of a page's time either.

Default inputs (what a page shows first): CNN and ViT, the first validation picture of the
data the page would use (digits, shapes); RNN, the two sentences "the film was good" and
"the film was not good"; Transformer, ``explain.probe.default_probe_sentence``.

The last line is ``digits-cnn CNN page: N ms (R x one forward)``; target under 150 ms on CPU.

Take apart (``--minilm``, on by default): the importance grid over all 6 × 12 heads of the
built-in all-MiniLM-L6-v2 (``explain.ablation.importance``: each head switched off alone, one
batch row each) for the page's default sentence, against one plain forward pass of it; target
under 2 s on CPU.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import torch  # noqa: E402

from explain.ablation import importance  # noqa: E402
from explain.attention import (cls_patch_attention, inspect_attention, mean_patch_attention,  # noqa: E402
                               query_arithmetic)
from explain.heads import most_concentrated_head  # noqa: E402
from explain.cnn import conv_arithmetic, inspect_cnn, pool_windows, receptive_field  # noqa: E402
from explain.inputs import InputContext, example_image, input_context, prepare_sentence  # noqa: E402
from explain.probe import default_probe_sentence  # noqa: E402
from explain.rnn import PCA, dataset_hidden_states, fit_pca, inspect_rnn, step_arithmetic  # noqa: E402
from models import build_model, presets  # noqa: E402
from training.datasets import load_dataset  # noqa: E402
from viz.activations import attention_heatmap, probability_bars  # noqa: E402
from viz.attention import attention_grid, attention_lines, patch_attention_figure, query_bars, scores_figure  # noqa: E402
from viz.cnn import conv_arithmetic_figure, feature_maps_figure, pooling_figure, receptive_field_figure  # noqa: E402
from viz.probe import filters_figure, prefix_predictions_figure  # noqa: E402
from viz.rnn import gates_figure, step_figure, trajectory_figure, units_heatmap  # noqa: E402

CONTRASTS = ("the film was good", "the film was not good")  # app_pages/inspect_rnn.py's default
FORWARD_REPEATS = 10  # forward passes timed after each page call timed
PAGES = {"cnn": "CNN page", "rnn": "RNN page", "transformer": "Attention page"}
DATA = {"digits-cnn": "digits", "shapes-cnn": "shapes", "shapes-vit": "shapes"}  # else sentiment
TARGET_MS = 150
MINILM_TARGET_MS = 2000  # all heads of MiniLM switched off one at a time
TAKE_APART_SENTENCE = "The film was not good, but the actors were wonderful."  # app_pages/take_apart.py's default
WARMUP = 3  # calls before timing: first calls pay for lazy imports and allocator growth


def show(shown: list[go.Figure], fig: go.Figure) -> None:
    """What ``st.plotly_chart`` does with a figure before sending it: serialise it to JSON."""
    fig.to_json()
    shown.append(fig)


# ---- the pages, call by call ------------------------------------------------------------------
# Each function mirrors its page with the page's default choices (the widgets' defaults); when a
# page changes, change its function here too, or the numbers stop meaning that page.

def cnn_page(model, x: torch.Tensor, context: InputContext, shared_scale: bool = True,
             open_tab: str | None = None) -> list[go.Figure]:
    """Mirrors app_pages/inspect_cnn.py call by call; keep the two in step. Only the open tab's
    figures are built, as on the page (its tabs rerun the page when switched); by default the
    first tab, which is what a visitor sees first."""
    shown: list[go.Figure] = []
    picture = example_image(context, x, "example 1")
    inspection = inspect_cnn(model, picture.x)
    show(shown, probability_bars(inspection.probabilities, inspection.class_names, top_k=5))
    seen = picture.seen[:, :, 0].astype(float) if picture.seen.shape[2] == 1 else picture.seen
    convs = {view.name: view for view in inspection.convs}
    pools = {view.name: view for view in inspection.pools}
    shown_stages = [stage for stage in inspection.stages if stage in convs or stage in pools]
    for stage in shown_stages:
        if stage != (open_tab or shown_stages[0]):
            continue
        if stage in convs:
            view = convs[stage]
            show(shown, filters_figure(view.weight, cols=8, tile=70))
            show(shown, feature_maps_figure(view.pre, shared_scale=shared_scale))
            if view.post is not None:
                show(shown, feature_maps_figure(view.post, shared_scale=shared_scale))
            channel, row, col = 0, view.pre.shape[1] // 2, view.pre.shape[2] // 2  # the page's default boxes
            arithmetic = conv_arithmetic(model, inspection, view.index, channel, row, col)
            box = receptive_field(model, stage, row, col)
            show(shown, receptive_field_figure(seen, box, title="Its receptive field on the input"))
            show(shown, conv_arithmetic_figure(arithmetic))
        else:
            view = pools[stage]
            channel, row, col = 0, 0, 0
            show(shown, pooling_figure(view.before[channel], view.after[channel], view.kernel, view.stride,
                                       view.padding, view.kind, highlight=(row, col)))
            top, left_edge, bottom, right_edge = pool_windows(view, row, col)
            window = view.before[channel, max(top, 0):bottom, max(left_edge, 0):right_edge]
            ", ".join(f"{v:.2f}" for v in window.flatten()[:16])  # the caption under the figure
            show(shown, feature_maps_figure(view.after, shared_scale=shared_scale))
    return shown


def rnn_pca(model, dataset) -> PCA:
    """The PCA app_pages/inspect_rnn.py fits once per model and step and keeps in the session:
    on the validation sentences, when they use the model's words (as the built-in data does)."""
    return fit_pca(dataset_hidden_states(model, dataset.x_val), k=3)


def rnn_page(model, texts: list[str], context: InputContext, pca: PCA, dims: int = 2) -> list[go.Figure]:
    """Mirrors app_pages/inspect_rnn.py call by call; keep the two in step. The PCA comes in fitted,
    as the page keeps it in the session."""
    shown: list[go.Figure] = []
    vocab = context.vocab
    sentences = [prepare_sentence(context, text) for text in texts]
    inspections = [inspect_rnn(model, item.ids, vocab) for item in sentences]
    rows = [{"sentence": item.text, "prediction": view.class_names[int(np.argmax(view.probabilities))],
             "sure": f"{float(np.max(view.probabilities)):.0%}"} for item, view in zip(sentences, inspections)]
    if len(rows) == 1:
        show(shown, probability_bars(inspections[0].probabilities, inspections[0].class_names, top_k=5))
    dims = min(dims, pca.components.shape[0])
    paths = [{"label": item.text, "points": pca.transform(view.hidden), "tokens": view.tokens}
             for item, view in zip(sentences, inspections)]
    titles = [f"PC{i + 1} ({ratio:.0%})" for i, ratio in enumerate(pca.explained_variance_ratio)]
    show(shown, trajectory_figure(paths, dims=dims, axis_titles=titles))
    item, view = sentences[0], inspections[0]
    show(shown, prefix_predictions_figure(view.tokens, view.prefix_probabilities, view.class_names))
    show(shown, units_heatmap(view.hidden, view.tokens))
    if view.cell_state is not None:
        show(shown, units_heatmap(view.cell_state, view.tokens, title="cell state c_t", colorbar="c"))
    if view.gates is not None:
        show(shown, gates_figure(view.gates, view.gate_names, view.tokens))
    step_index = min(len(view.tokens), 2) - 1  # the page's default word box: word 2
    step = step_arithmetic(model, item.ids, step_index, vocab)
    step.unit_numbers(0)
    show(shown, step_figure(step))
    return shown


def attention_page(model, context: InputContext, x: torch.Tensor | None = None, text: str | None = None
                   ) -> list[go.Figure]:
    """Mirrors app_pages/inspect_attention.py call by call; keep the two in step. A picture ``x``
    for a ViT, else the sentence ``text``."""
    shown: list[go.Figure] = []
    picture = None
    if context.kind == "image":
        picture = example_image(context, x, "example 1")
        inspection = inspect_attention(model, picture.x)
    else:
        inspection = inspect_attention(model, prepare_sentence(context, text).ids, context.vocab)
    show(shown, probability_bars(inspection.probabilities, inspection.class_names, top_k=5))
    if inspection.prefix_probabilities is not None and len(inspection.tokens) > 1:
        show(shown, prefix_predictions_figure(inspection.tokens, inspection.prefix_probabilities,
                                              inspection.class_names))
    layers, heads = inspection.patterns.shape[:2]
    layer, head = most_concentrated_head(inspection.patterns)  # the page's default head; the first token
    show(shown, attention_grid(inspection.patterns, inspection.labels, tile=min(150, 860 // heads),
                               chosen=(layer, head), clickable=True))
    pattern = inspection.patterns[layer, head]
    show(shown, attention_heatmap(pattern, inspection.labels, title=f"Block {layer + 1}, head {head + 1}"))
    show(shown, attention_lines(inspection.patterns[layer], inspection.labels, heads=[head]))
    labels, query = inspection.labels, 0
    arithmetic = query_arithmetic(inspection, layer, head, query)
    show(shown, query_bars(arithmetic.weights, labels, labels[query]))
    show(shown, scores_figure(arithmetic.scores, arithmetic.weights, labels))
    arithmetic.numbers(top=3)
    if picture is not None and inspection.patch_grid is not None:
        maps = cls_patch_attention(inspection, layer) if inspection.has_cls else mean_patch_attention(inspection, layer)
        show(shown, patch_attention_figure(picture.seen if picture.seen.shape[2] == 3 else
                                           picture.seen[:, :, 0].astype(float), maps, inspection.patch_size,
                                           titles=[f"head {h + 1}" for h in range(maps.shape[0])]))
    return shown


# ---- timing ---------------------------------------------------------------------------------

def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``call`` in milliseconds, after a warm-up."""
    for _ in range(WARMUP):
        call()
    return statistics.median(_seconds(call) for _ in range(repeats)) * 1000


def page_and_forward_ms(page: Callable[[], object], forward: Callable[[], object], repeats: int
                        ) -> tuple[float, float]:
    """(median ms of ``page``, median ms of ``forward``), after a warm-up of each.

    The two are interleaved (one page call, then FORWARD_REPEATS forward passes, ``repeats``
    times), so a busy spell on a shared machine slows both sides alike and the ratio holds."""
    for _ in range(WARMUP):
        page()
        forward()
    page_times, forward_times = [], []
    for _ in range(repeats):
        page_times.append(_seconds(page))
        forward_times.extend(_seconds(forward) for _ in range(FORWARD_REPEATS))
    return statistics.median(page_times) * 1000, statistics.median(forward_times) * 1000


def forward_call(model, x: torch.Tensor) -> Callable[[], object]:
    """One plain forward pass of one input, as the baseline."""
    model.eval()
    batch = x.unsqueeze(0)  # (1, ...) one input

    def call():
        with torch.no_grad():
            return model(batch)
    return call


def model_stages(model) -> list[str]:
    """The CNN page's tabs: its conv and pool stages in order."""
    return [f"{kind}.{index}" for kind, index in model.order if kind in ("conv", "pool")]


def page_case(model, datasets: dict) -> tuple[str, Callable[[], object], torch.Tensor, Callable | None]:
    """(page, the page call, the forward input, the once-per-model call or None) for a model."""
    name = model.spec.name
    dataset = datasets[DATA.get(name, "sentiment")]
    context = input_context(model, dataset)
    kind = model.spec.kind
    if kind == "cnn":
        x = dataset.x_val[0]
        return PAGES[kind], lambda: cnn_page(model, x, context), x, None
    if kind == "rnn":  # the page's default: the two contrasts when the vocabulary knows their words
        known = set(context.vocab)
        texts = list(CONTRASTS) if all(word in known for line in CONTRASTS for word in line.split()) else \
            [default_probe_sentence(context.vocab, dataset.x_val)]
        pca = rnn_pca(model, dataset)
        x = prepare_sentence(context, texts[0]).ids
        return PAGES[kind], lambda: rnn_page(model, texts, context, pca), x, lambda: rnn_pca(model, dataset)
    if context.kind == "image":
        x = dataset.x_val[0]
        return PAGES[kind], lambda: attention_page(model, context, x=x), x, None
    text = default_probe_sentence(context.vocab, dataset.x_val)
    x = prepare_sentence(context, text).ids
    return PAGES[kind], lambda: attention_page(model, context, text=text), x, None


def minilm_importance(repeats: int) -> None:
    """Time the Take apart page's importance over every head of the built-in MiniLM."""
    from models.pretrained import BUILTIN_TEXT, load_pretrained, tokenize

    model = load_pretrained(BUILTIN_TEXT)
    ids, _, _ = tokenize(model, TAKE_APART_SENTENCE)
    grid_ms, forward_ms = page_and_forward_ms(lambda: importance(model, ids[None], "blocks.0.attn.pattern", None),
                                              forward_call(model, ids), repeats)
    heads = model.spec.transformer.num_layers * model.spec.transformer.num_heads
    print(f"{BUILTIN_TEXT}: importance of all {heads} heads ({len(ids)} tokens): {grid_ms:.0f} ms "
          f"({grid_ms / forward_ms:.0f} x one forward of {forward_ms:.1f} ms); target under {MINILM_TARGET_MS} ms: "
          f"{'met' if grid_ms < MINILM_TARGET_MS else 'missed'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per measurement (median kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (torch.set_num_threads)")
    parser.add_argument("--presets", nargs="*", default=None, help="only these presets (default: all)")
    parser.add_argument("--minilm", action=argparse.BooleanOptionalAction, default=True,
                        help="time the Take apart page's importance over all heads of the built-in MiniLM")
    args = parser.parse_args()
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    names = args.presets or presets.names()
    unknown = [name for name in names if name not in presets.names()]
    if unknown:
        parser.error(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(presets.names())}")
    torch.set_num_threads(args.threads)
    datasets = {data: load_dataset(data) for data in {DATA.get(name, "sentiment") for name in names}}
    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} thread(s) | median of {args.repeats} page calls "
          f"and {args.repeats * FORWARD_REPEATS} forward passes (interleaved), after {WARMUP} warm-up calls each | "
          "page = explain calls + figures built + fig.to_json() each; Streamlit transport not timed")
    print(f"{'preset':<24}{'page':<16}{'figures':>8}{'page ms':>10}{'forward ms':>12}{'ratio':>9}")
    results, once, tabs = {}, [], []
    for name in names:
        model = build_model(presets.get(name), seed=0)
        page, call, x, fit_once = page_case(model, datasets)
        figures = len(call())
        page_ms, forward_ms = page_and_forward_ms(call, forward_call(model, x), args.repeats)
        results[name] = (page, page_ms, forward_ms)
        print(f"{name:<24}{page:<16}{figures:>8}{page_ms:>10.1f}{forward_ms:>12.3f}{page_ms / forward_ms:>9.0f}")
        if fit_once is not None:
            once.append((name, median_ms(fit_once, max(3, args.repeats // 4))))
        if model.spec.kind == "cnn":  # each other tab, as drawn when a visitor opens it
            context = input_context(model, datasets[DATA.get(name, "sentiment")])
            for stage in [s for s in model_stages(model) if s != model_stages(model)[0]]:
                tab_ms, _ = page_and_forward_ms(lambda: cnn_page(model, x, context, open_tab=stage),
                                                forward_call(model, x), max(3, args.repeats // 4))
                tabs.append((name, stage, tab_ms))
    for name, fit_ms in once:
        print(f"{name}: PCA fit, once per model (and training step), not in the page time above: {fit_ms:.1f} ms")
    for name, stage, tab_ms in tabs:
        print(f"{name}: with the {stage} tab open instead: {tab_ms:.1f} ms")
    slow = [name for name, (_, page_ms, _) in results.items() if page_ms > TARGET_MS]
    slow += [f"{name} ({stage} tab)" for name, stage, tab_ms in tabs if tab_ms > TARGET_MS]
    print(f"target: every page under {TARGET_MS} ms; over it: {', '.join(slow) if slow else 'none'}")
    if "digits-cnn" in results:
        page, page_ms, forward_ms = results["digits-cnn"]
        ratio = page_ms / forward_ms
        print(f"digits-cnn {page}: {page_ms:.0f} ms ({ratio:.0f} x one forward)" if ratio >= 10 else
              f"digits-cnn {page}: {page_ms:.0f} ms ({ratio:.1f} x one forward)")
    if args.minilm:
        minilm_importance(max(3, args.repeats // 4))


if __name__ == "__main__":
    main()
