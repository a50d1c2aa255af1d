"""Attributions page: each method's time for one input, as a multiple of one forward+backward pass.

    python bench/attribution_latency.py [--repeats 10] [--threads 1] [--faithfulness-only]

For ``digits-cnn`` (the first validation picture of ``digits``) every method the page offers
for it (the CAM family on its last conv stage among them), with the default ``Settings``, plus
SmoothGrad on Saliency and on Integrated Gradients; for ``sentiment-lstm`` ("the film was not
good", prepared as the Inspect pages prepare it) every sentence method; for ``shapes-vit`` (the
first validation picture of ``shapes``) every method it is offered, attention rollout and
Grad-CAM on patch tokens among them. Each ``explain.attributions.attribute`` call is timed whole: checks, Captum,
the completeness reference where there is one, and the copy of the result to numpy.

The unit is one forward+backward pass of the same input in the same process and threads:
pictures, ``model(x)[0, target].backward()`` with ``x`` requiring grad; sentences, the same
with the backward pass reaching the embedding output (token ids have no gradient). Both
``backward()`` calls also fill the weights' gradients, as a training step would.

Last, ``cascade_timing``: the sanity check's cascading randomisation with the page's default
methods, whole (a copy per layer, every method recomputed after each step).

Both are timed with ``time.perf_counter``: a warm-up, then the median of ``--repeats`` calls of
each method and ten times as many unit passes, interleaved (one method call, then ten unit
passes) so that a busy spell on a shared machine slows both alike. ratio = method / unit.
The model is ``build_model(presets.get(name), seed=0)``, untrained: the work does not depend
on the weights' values. Target: the predicted class, as the page's default.

Then the faithfulness metrics (``explain.faithfulness``, ``explain.faithfulness_captum``) in the
same unit, each timed whole as the page calls it: a deletion and an insertion curve (21 inputs,
one batch), ERASER's two scores (sentences: 11 sentences, one batch), infidelity (pictures: 32
noisy copies) and max-sensitivity (pictures: the method re-run on 5 noisy copies) of Saliency
and Integrated Gradients, and the page's whole report on its default methods' maps.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explain.attributions import (Settings, attribute, available_methods, cascade_layers,  # noqa: E402
                                  cascading_randomisation, predicted_class)
from explain.inputs import input_context, prepare_sentence  # noqa: E402
from models import build_model, presets  # noqa: E402
from training.datasets import load_dataset  # noqa: E402
from explain.faithfulness import deletion_curve, eraser_scores, insertion_curve  # noqa: E402
from explain.faithfulness_captum import infidelity_of, max_sensitivity_of  # noqa: E402
from explain.faithfulness_report import faithfulness_report  # noqa: E402
from explain.tokens import pad_id_of, strip_padding  # noqa: E402

SENTENCE = "the film was not good"
UNIT_REPEATS = 10  # unit passes timed after each method call timed
WARMUP = 3  # calls before timing: first calls pay for lazy imports and allocator growth


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def unit_pass(model, x: torch.Tensor, target: int) -> Callable[[], None]:
    """One forward+backward pass of one input: the cost every gradient method pays per sample."""
    model.eval()
    if x.dtype.is_floating_point:  # a picture: the gradient reaches the pixels
        def call():
            inputs = x.unsqueeze(0).requires_grad_(True)  # (1, C, H, W)
            model(inputs)[0, target].backward()
            model.zero_grad(set_to_none=True)
        return call
    embedding = model.embed.tokens

    def keep_gradient(module, inputs, output):
        output.retain_grad()  # the backward pass goes down to the embedding output, as Layer IG's does

    def call():
        handle = embedding.register_forward_hook(keep_gradient)
        try:
            model(x.unsqueeze(0))[0, target].backward()  # (1, T) ids
        finally:
            handle.remove()
        model.zero_grad(set_to_none=True)
    return call


def timed(method_call: Callable[[], object], unit: Callable[[], None], repeats: int) -> tuple[float, list[float]]:
    """(median ms of ``method_call``, every unit pass's ms), interleaved after a warm-up."""
    for _ in range(WARMUP):
        method_call()
        unit()
    method_times, unit_times = [], []
    for _ in range(repeats):
        method_times.append(_seconds(method_call) * 1000)
        unit_times.extend(_seconds(unit) * 1000 for _ in range(UNIT_REPEATS))
    return statistics.median(method_times), unit_times


def cases(model, x: torch.Tensor) -> list[tuple[str, str, Settings]]:
    """(row label, method, settings): every method on offer, and SmoothGrad on two for pictures."""
    rows = [(method, method, Settings()) for method in available_methods(model)]
    if model.spec.input.kind == "image":
        rows += [(f"smoothgrad {method}", method, Settings(smoothgrad=True))
                 for method in ("saliency", "integrated_gradients")]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of each method (median kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (torch.set_num_threads)")
    parser.add_argument("--faithfulness-only", action="store_true", help="only the faithfulness metrics' section")
    args = parser.parse_args()
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    digits = build_model(presets.get("digits-cnn"), seed=0)
    lstm = build_model(presets.get("sentiment-lstm"), seed=0)
    vit = build_model(presets.get("shapes-vit"), seed=0)
    inputs = {"digits-cnn": (digits, load_dataset("digits").x_val[0]),
              "sentiment-lstm": (lstm, prepare_sentence(input_context(lstm, load_dataset("sentiment")), SENTENCE).ids),
              "shapes-vit": (vit, load_dataset("shapes").x_val[0])}
    defaults = Settings()
    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} thread(s) | median of {args.repeats} calls per "
          f"method and {args.repeats * UNIT_REPEATS} forward+backward passes (interleaved), after {WARMUP} warm-up "
          "calls | "
          f"Settings(): n_steps {defaults.n_steps}, internal_batch_size {defaults.internal_batch_size}, n_samples "
          f"{defaults.n_samples}, occlusion {defaults.occlusion_window}/{defaults.occlusion_stride}, "
          f"perturbations_per_eval {defaults.perturbations_per_eval}, nt_samples {defaults.nt_samples}")
    print(f"{'model':<16}{'method':<34}{'ms':>10}{'ratio':>9}")
    slowest = None
    for name, (model, x) in ({} if args.faithfulness_only else inputs).items():
        target = predicted_class(model, x)
        unit = unit_pass(model, x, target)
        rows, unit_times = [], []
        for row, method, settings in cases(model, x):
            ms, units = timed(lambda: attribute(model, x, target, method, settings), unit, args.repeats)
            rows.append((row, ms))
            unit_times += units
        unit_ms = statistics.median(unit_times)
        print(f"{name:<16}{'forward+backward (the unit)':<34}{unit_ms:>10.3f}{1:>9.1f}")
        for row, ms in rows:
            print(f"{name:<16}{row:<34}{ms:>10.2f}{ms / unit_ms:>9.1f}")
            if slowest is None or ms / unit_ms > slowest[2]:
                slowest = (name, row, ms / unit_ms, ms)
    if slowest is not None:
        name, row, ratio, ms = slowest
        print(f"slowest: {name} {row}: {ms:.1f} ms ({ratio:.0f} x one forward+backward)")
    faithfulness_section(inputs, args.repeats)
    if not args.faithfulness_only:
        cascade_timing(inputs, args.repeats)


# ---- faithfulness metrics (issue 16) ----------------------------------------------------------

PAGE_METHODS = {"image": ("saliency", "integrated_gradients", "grad_cam"), "tokens": ("integrated_gradients",)}


def faithfulness_cases(model, x: torch.Tensor, target: int) -> list[tuple[str, Callable[[], object]]]:
    """(row label, call): each faithfulness metric on the maps the page computes by default."""
    picture = x.dtype.is_floating_point
    x = x if picture else strip_padding(x, pad_id_of(model))
    methods = [m for m in PAGE_METHODS["image" if picture else "tokens"] if m in available_methods(model)]
    maps = [(m, m, attribute(model, x, target, m).values) for m in methods]
    first = maps[0][2]
    rows = [("deletion curve (20 steps)", lambda: deletion_curve(model, x, target, first)),
            ("insertion curve (20 steps)", lambda: insertion_curve(model, x, target, first))]
    if picture:
        rows += [("infidelity", lambda: infidelity_of(model, x, target, first))]
        rows += [(f"max-sensitivity {m}", lambda m=m: max_sensitivity_of(model, x, target, m))
                 for m in ("saliency", "integrated_gradients")]
    else:
        rows += [("comprehensiveness+sufficiency", lambda: eraser_scores(model, x, target, first))]
    rows += [(f"page report ({len(maps)} map{'s' * (len(maps) > 1)} + random)", lambda: faithfulness_report(model, x, target, maps))]
    return rows


def faithfulness_section(inputs: dict, repeats: int) -> None:
    print(f"\n{'model':<16}{'faithfulness metric':<40}{'ms':>10}{'ratio':>9}")
    for name, (model, x) in inputs.items():
        target = predicted_class(model, x)
        unit = unit_pass(model, x, target)
        rows, unit_times = [], []
        for row, call in faithfulness_cases(model, x, target):
            ms, units = timed(call, unit, max(1, repeats // 2) if "max-sensitivity" in row else repeats)
            rows.append((row, ms))
            unit_times += units
        unit_ms = statistics.median(unit_times)
        print(f"{name:<16}{'forward+backward (the unit)':<40}{unit_ms:>10.3f}{1:>9.1f}")
        for row, ms in rows:
            print(f"{name:<16}{row:<40}{ms:>10.2f}{ms / unit_ms:>9.1f}")


def cascade_timing(inputs: dict, repeats: int) -> None:
    """The sanity check's cascading randomisation (every layer re-drawn in turn, the page's default
    methods recomputed after each step), whole, as a multiple of the same unit pass."""
    for name, (model, x) in inputs.items():
        methods = [m for m in ("saliency", "integrated_gradients", "grad_cam") if m in available_methods(model)]
        target = predicted_class(model, x)
        ms, units = timed(lambda: cascading_randomisation(model, x, target, methods), unit_pass(model, x, target),
                          max(1, repeats // 5))
        unit_ms = statistics.median(units)
        label = f"cascade ({len(cascade_layers(model))} layers)"
        print(f"{name:<16}{label:<34}{ms:>10.2f}{ms / unit_ms:>9.1f}")


if __name__ == "__main__":
    main()
