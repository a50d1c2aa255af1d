"""Infidelity and max-sensitivity of a picture's attribution map, computed by ``captum.metrics``.

- Infidelity (Yeh et al., 2019): the expected squared gap between what the map predicts a small
  random change of the picture does to the class's score (map · change) and what it does
  (f(x) − f(x − change)); lower is better. The changes are Gaussian noise of ``noise`` × the
  picture's range; the map is rescaled to fit best first (Captum's ``normalize=True``, as in the
  paper), so a method whose scores are in other units (Saliency's |gradient|, Grad-CAM) is
  judged on its pattern, not its scale. The score is the model's logit, which the methods explain.
- Max-sensitivity (Yeh et al., 2019): the most the map changes (relative Frobenius norm) when the
  picture moves by at most ``radius`` × its range (uniform noise); lower is better. It re-runs
  the method on every noisy copy, so it costs ``n_perturb_samples`` attributions.

Both are for pictures only: they move the input by small real-valued amounts, and a sentence's
token ids have no "slightly different" neighbour (noise on an id is another word, or none). Both
apply to every picture method: Grad-CAM's one-channel map counts for every channel of its pixel.
"""
from __future__ import annotations

import torch
from captum.metrics import infidelity, sensitivity_max

from explain.attributions import Settings, attribute
from explain.model_guard import model_left_as_found, seeded

NOISE = 0.1  # infidelity: σ of the Gaussian change, as a fraction of the picture's range
RADIUS = 0.02  # max-sensitivity: the largest change of a pixel, as a fraction of the picture's range (Captum's 0.02)
INFIDELITY_SAMPLES = 32  # random changes averaged
SENSITIVITY_SAMPLES = 5  # noisy copies re-attributed (each costs one attribution)
SEED = 0


def infidelity_of(model, x: torch.Tensor, target: int, values, noise: float = NOISE,
                  n_perturb_samples: int = INFIDELITY_SAMPLES, seed: int = SEED) -> float:
    """Captum's infidelity of the map ``values`` ((C, H, W) or (1, H, W)) of picture ``x`` (C, H, W)."""
    x = _picture(x)
    attributions = torch.as_tensor(values, dtype=x.dtype).expand_as(x).unsqueeze(0)  # (1, C, H, W)
    sigma = noise * _value_range(x)

    def perturb(inputs):
        change = torch.randn_like(inputs) * sigma
        return change, inputs - change

    with model_left_as_found(model) as device, seeded(seed, device), torch.no_grad():
        found = infidelity(model, perturb, x.unsqueeze(0).to(device), attributions.to(device), target=target,
                           n_perturb_samples=n_perturb_samples, normalize=True)
    return float(found[0])


def max_sensitivity_of(model, x: torch.Tensor, target: int, method: str, settings: Settings | None = None,
                       baselines: torch.Tensor | None = None, radius: float = RADIUS,
                       n_perturb_samples: int = SENSITIVITY_SAMPLES, seed: int = SEED) -> float:
    """Captum's max-sensitivity of ``method`` (a key of ``explain.attributions.IMAGE_METHODS``, with
    ``settings``) on picture ``x`` (C, H, W), each noisy copy attributed by ``attribute``."""
    x = _picture(x)
    settings = settings or Settings()

    def explain(inputs):  # (N, C, H, W) -> maps (N, C', H, W): the page's own method, copy by copy
        # Captum passes the unperturbed input as a 1-tuple and the noisy copies as a tensor; it
        # expects the maps in the same form.
        batch = inputs[0] if isinstance(inputs, tuple) else inputs
        maps = [torch.as_tensor(attribute(model, row, target, method, settings, baselines).values) for row in batch]
        maps = torch.stack(maps).to(batch.dtype)
        return (maps,) if isinstance(inputs, tuple) else maps

    with seeded(seed, torch.device("cpu")):
        found = sensitivity_max(explain, x.unsqueeze(0), perturb_radius=radius * _value_range(x),
                                n_perturb_samples=n_perturb_samples)
    return float(found[0])


def _picture(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 3 or not x.dtype.is_floating_point:
        raise ValueError("infidelity and max-sensitivity are measured on pictures (channels, height, width)")
    return x.detach().float()


def _value_range(x: torch.Tensor) -> float:
    return float(x.max() - x.min()) or 1.0
