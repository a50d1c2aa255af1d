"""What a conv channel (or a class) wants to see: feature visualisation by activation maximisation,
and the validation examples that excite the channel most.

``visualise`` starts from seeded noise and climbs the gradient of one channel's mean activation
(a hook such as ``conv.1.act``) or of one class's logit (``CLASS_SCORE``) with respect to the
picture, with the regularisers that keep the result a picture rather than adversarial static
(Olah et al. 2017, "Feature Visualization", Distill):

- **frequency-scaled parameterisation**: the picture is held as its 2-D Fourier spectrum, each
  frequency scaled by 1/f, so a gradient step moves smooth shapes far more than single pixels;
- **jitter**: every step sees the picture shifted by a random pixel or two, so a pattern must
  work wherever it lands rather than in one lucky alignment;
- **blur**: every step sees it slightly blurred, so pixel-sized speckle earns nothing.

The picture lives in pixel space (0..1 through a sigmoid, as a real picture does) and reaches the
model normalised exactly as the training data was (``normalization``, from ``explain.inputs``).
The model is lent, not changed: gradients are taken with respect to the picture only (no weight
gets a ``.grad``), hooks are removed and the train/eval mode restored whatever happens
(``model_guard``), and a model shared by several sessions is used in turns.

``top_examples`` ranks the validation examples by the same activation, in batches. Channels are
0-based here; the page counts them from 1.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .counting import numbered, one_to
from .model_guard import model_left_as_found

CLASS_SCORE = "logits"  # the objective "this class's score" instead of a channel at a hook
DEFAULT_STEPS = 256
LEARNING_RATE = 0.1  # Adam on the spectrum; much larger steps turn the picture to static
START_SPREAD = 0.5  # standard deviation of the starting noise before the sigmoid: visible, not saturated
BLUR_SIGMA = 0.5  # pixels; a 3×3 kernel this narrow removes speckle and keeps edges
BATCH = 256
TOP_EXAMPLES = 8

Progress = Callable[[int, int], None]  # (steps done, steps in all)


@dataclass
class FeatureVis:
    """A picture optimised to excite one channel (or class), and the noise it started from."""

    hook: str  # the hook name, or CLASS_SCORE
    channel: int  # 0-based channel (or class) index
    start_x: torch.Tensor  # (C, H, W) the starting noise as the model receives it (normalised)
    x: torch.Tensor  # (C, H, W) the optimised picture as the model receives it
    start_picture: np.ndarray  # (H, W, C) uint8 the starting noise, as a picture
    picture: np.ndarray  # (H, W, C) uint8 the optimised picture
    start_activation: float  # the objective on the starting noise (no jitter, no blur)
    activation: float  # the objective on the optimised picture (no jitter, no blur)
    history: np.ndarray  # (steps,) the objective at each step, as optimised (jittered and blurred)


@dataclass
class TopExamples:
    """The validation examples that excite one channel most."""

    indices: np.ndarray  # (k,) 0-based rows of the data, strongest first
    activations: np.ndarray  # (k,) their activation
    mean_activation: float  # the average over every example read
    count: int  # examples read


# ---- what the objective reads --------------------------------------------------------------
def channel_layers(model) -> list[str]:
    """The hooks whose channels can be visualised: each conv stage's output as the next layer
    receives it (``conv.0.act`` after a ReLU), as the model declares them."""
    return list(model.gradcam_layers())


def channel_count(model, hook: str) -> int:
    """How many channels (or classes, for CLASS_SCORE) the objective can pick from."""
    if hook == CLASS_SCORE:
        return int(model.spec.num_classes)
    return int(model.activation_shape(hook)[0])


def channel_value(activation: torch.Tensor, channel: int) -> torch.Tensor:
    """(B,) one channel's value per example: the mean over positions of a (B, C, H, W) map,
    the entry itself of a (B, C) vector."""
    if activation.dim() == 4:
        return activation[:, channel].mean(dim=(1, 2))
    return activation.reshape(len(activation), -1)[:, channel]


def check_choice(model, hook: str, channel: int) -> None:
    """ValueError in plain words for a hook the model lacks or a channel it does not have."""
    if hook != CLASS_SCORE and hook not in model.hook_names():
        raise ValueError(f"this model has no layer '{hook}' to visualise")
    count = channel_count(model, hook)
    if not 0 <= channel < count:
        noun = "class" if hook == CLASS_SCORE else "channel"
        raise ValueError(f"{numbered(noun, channel)} does not exist; choose one of {one_to(count)}")


# ---- the picture's parameterisation ----------------------------------------------------------
def frequency_scale(height: int, width: int) -> torch.Tensor:
    """(H, W//2 + 1) the weight of each frequency of a real 2-D FFT: 1/f, relative to the lowest
    non-zero frequency (the constant term and the lowest frequencies weigh 1)."""
    fy = torch.fft.fftfreq(height)[:, None]  # cycles per pixel, signed
    fx = torch.fft.rfftfreq(width)[None, :]
    f = torch.sqrt(fx ** 2 + fy ** 2) * max(height, width)  # 1 = one cycle across the picture
    return 1.0 / torch.clamp(f, min=1.0)


def spectrum_to_pixels(spectrum: torch.Tensor, scale: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, C, H, W) pixels in 0..1 from the (C, H, W//2 + 1, 2) real and imaginary parts."""
    raw = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=size, norm="ortho")  # (C, H, W)
    return torch.sigmoid(raw)[None]


def normalise(pixels: torch.Tensor, normalization: dict | None) -> torch.Tensor:
    """Pixels in 0..1 -> the model's input, as the training data was normalised (mean, std per
    channel); without a normalisation the model reads pixels in 0..1, as the plain preprocessor
    gives them."""
    if not normalization:
        return pixels
    shape = (1, -1, 1, 1)
    mean = torch.as_tensor(normalization["mean"], dtype=pixels.dtype, device=pixels.device).reshape(shape)
    std = torch.as_tensor(normalization["std"], dtype=pixels.dtype, device=pixels.device).reshape(shape)
    return (pixels - mean) / std


def blur_kernel(channels: int, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """(C, 1, 3, 3) a normalised Gaussian, one per channel (a depthwise convolution)."""
    steps = torch.tensor([-1.0, 0.0, 1.0])
    g = torch.exp(-steps ** 2 / (2 * sigma ** 2))
    kernel = g[:, None] * g[None, :]
    return (kernel / kernel.sum()).expand(channels, 1, 3, 3).clone()


def jitter_and_blur(pixels: torch.Tensor, shift: tuple[int, int], kernel: torch.Tensor) -> torch.Tensor:
    """The picture as one optimisation step sees it: rolled by ``shift`` pixels, blurred."""
    moved = torch.roll(pixels, shifts=shift, dims=(2, 3))
    padded = F.pad(moved, (1, 1, 1, 1), mode="replicate")  # the blur keeps the size
    return F.conv2d(padded, kernel.to(pixels.device), groups=pixels.shape[1])


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) 0..1 -> (H, W, C) uint8."""
    values = pixels[0].detach().cpu().float().numpy().transpose(1, 2, 0)
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


# ---- activation maximisation -------------------------------------------------------------------
def visualise(model, hook: str, channel: int, normalization: dict | None, steps: int = DEFAULT_STEPS,
              seed: int = 0, progress: Progress | None = None, learning_rate: float = LEARNING_RATE,
              jitter: int | None = None) -> FeatureVis:
    """A picture that makes ``channel`` at ``hook`` (or class ``channel`` when ``hook`` is
    CLASS_SCORE) as large as it can, after ``steps`` steps from noise made with ``seed``.
    ``jitter`` is the largest shift in pixels (None: about 1/16 of the picture's side)."""
    check_choice(model, hook, channel)
    if steps < 1:
        raise ValueError(f"take at least one step, not {steps}")
    spec = model.spec.input
    if spec.kind != "image":
        raise ValueError("feature visualisation makes pictures: this model does not read pictures")
    channels, height, width = spec.channels, spec.height, spec.width
    jitter = max(1, round(min(height, width) / 16)) if jitter is None else int(jitter)
    generator = torch.Generator().manual_seed(seed)
    scale = frequency_scale(height, width)
    spectrum = torch.randn(channels, height, width // 2 + 1, 2, generator=generator)
    # Scaled so the starting picture's noise has the same spread at any size.
    spread = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(height, width), norm="ortho").std()
    spectrum = spectrum * (START_SPREAD / float(spread.clamp(min=1e-8)))
    shifts = torch.randint(-jitter, jitter + 1, (steps, 2), generator=generator).tolist()
    kernel = blur_kernel(channels)

    with model_left_as_found(model) as device:
        scale = scale.to(device)
        spectrum = spectrum.to(device).requires_grad_(True)
        objective = _objective(model, hook, channel, normalization)
        optimiser = torch.optim.Adam([spectrum], lr=learning_rate)
        with torch.no_grad():
            start_pixels = spectrum_to_pixels(spectrum, scale, (height, width))
            start_activation = float(objective(start_pixels))
        history = []
        for step in range(steps):
            pixels = spectrum_to_pixels(spectrum, scale, (height, width))
            value = objective(jitter_and_blur(pixels, tuple(shifts[step]), kernel))
            # Only the picture's gradient: the weights never get a .grad.
            (gradient,) = torch.autograd.grad(-value, [spectrum])
            optimiser.zero_grad(set_to_none=True)
            spectrum.grad = gradient
            optimiser.step()
            history.append(float(value.detach()))
            if progress is not None:
                progress(step + 1, steps)
        with torch.no_grad():
            pixels = spectrum_to_pixels(spectrum, scale, (height, width))
            activation = float(objective(pixels))
            x = normalise(pixels, normalization)[0].cpu()
            start_x = normalise(start_pixels, normalization)[0].cpu()
    return FeatureVis(hook=hook, channel=channel, start_x=start_x, x=x, start_picture=to_uint8(start_pixels),
                      picture=to_uint8(pixels), start_activation=start_activation, activation=activation,
                      history=np.asarray(history, dtype=np.float64))


def _objective(model, hook: str, channel: int, normalization: dict | None):
    """pixels (1, C, H, W) -> the channel's (or class's) value, with gradients. The hook is
    attached for one forward pass and removed in ``finally``."""
    if hook == CLASS_SCORE:
        return lambda pixels: model(normalise(pixels, normalization))[0, channel]
    point = model.hook_points()[hook]

    def value(pixels: torch.Tensor) -> torch.Tensor:
        seen = {}
        handle = point.register_forward_hook(lambda module, inputs, output: seen.__setitem__("out", output))
        try:
            model(normalise(pixels, normalization))
        finally:
            handle.remove()
        return channel_value(seen["out"], channel)[0]

    return value


# ---- the examples that excite it most ---------------------------------------------------------
@torch.no_grad()
def channel_activations(model, hook: str, channel: int, x: torch.Tensor, batch_size: int = BATCH) -> np.ndarray:
    """(N,) the channel's (or class's) value for every row of ``x``, read in batches."""
    check_choice(model, hook, channel)
    parts = []
    with model_left_as_found(model) as device:
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size].to(device)  # (B, C, H, W)
            if hook == CLASS_SCORE:
                values = model(batch)
            else:
                _, cache = model.run_with_cache(batch, names=[hook])
                values = cache[hook]
            parts.append(channel_value(values.float(), channel).cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def top_examples(model, hook: str, channel: int, x: torch.Tensor, k: int = TOP_EXAMPLES,
                 batch_size: int = BATCH) -> TopExamples:
    """The ``k`` rows of ``x`` (the validation data) whose channel value is largest, and the
    average over all rows (what an ordinary example gives)."""
    if len(x) == 0:
        raise ValueError("there are no examples to rank")
    values = channel_activations(model, hook, channel, x, batch_size)
    order = np.argsort(-values, kind="stable")[:k]
    return TopExamples(indices=order, activations=values[order], mean_activation=float(values.mean()),
                       count=len(values))
