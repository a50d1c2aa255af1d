"""Is an input like the data the model was trained on? A measured score, and the words for it.

A model answers every input with one of its classes, even a photo given to a digits CNN ("7,
71 % sure"). ``fit_reference`` learns what the training data looks like to the model, and
``familiarity`` says how far one input is from it, with a threshold set on held-out data:

- **Features** (every model): class-conditional Gaussians with one shared covariance on the
  vector the classifier reads (``model.features_hook()``: the penultimate features of a CNN,
  an RNN's final state, a Transformer's pooled vector); the score is the Mahalanobis distance to
  the nearest class mean (Lee et al. 2018, "A simple unified framework for detecting
  out-of-distribution samples and adversarial attacks").
- **Input statistics** (pictures): the same distance on the prepared picture itself, averaged to
  a coarse grid (at most ``INPUT_GRID`` × ``INPUT_GRID`` per channel), which a colour photo
  fails however the features come out.
- **Unknown words** (sentences): a sentence most of whose words are not in the vocabulary is
  read as a row of ``<unk>``; more than ``UNKNOWN_SHARE_FAR`` of them is far whatever the score.

Each distance's threshold is ``MARGIN`` times the largest distance of any validation example, so
no validation example is flagged by construction (of a large data set, of the ``MOST_EXAMPLES``
read) and an input is called far only when it is
clearly farther than anything the held-out data holds. Nothing here draws or imports Streamlit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.words import with_article
from training.tokenizer import PAD_ID, UNK

MARGIN = 1.5  # a threshold is this many times the largest validation distance
INPUT_GRID = 8  # the input statistics average a picture to at most this many cells a side
SHRINKAGE = 0.01  # share of the average variance added to every direction: dead units make the covariance singular
UNKNOWN_SHARE_FAR = 0.5  # more than this share of unknown words makes a sentence far
BATCH = 512
MOST_EXAMPLES = 5_000  # a fit reads at most this many training (and validation) examples, evenly spread

MEASURES = {"features": "what its last layer sees", "input": "the picture itself"}  # how a reason names a check


# ---- Gaussians with a shared covariance ----------------------------------------------------
@dataclass(frozen=True)
class Gaussians:
    """One mean per class and the precision (inverse covariance) they share."""

    means: np.ndarray  # (K, D)
    precision: np.ndarray  # (D, D)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """(N,) Mahalanobis distance of each row of ``features`` (N, D) to its nearest class mean:
        min_k sqrt((f - mu_k)^T P (f - mu_k))."""
        features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        diff = features[:, None, :] - self.means[None, :, :]  # (N, K, D)
        squared = np.einsum("nkd,de,nke->nk", diff, self.precision, diff)
        return np.sqrt(np.maximum(squared.min(axis=1), 0.0))


def fit_gaussians(features: np.ndarray, labels: np.ndarray, num_classes: int,
                  shrinkage: float = SHRINKAGE) -> Gaussians:
    """Class means and the shared covariance of ``features`` (N, D) around them, shrunk towards
    its average variance so that it can be inverted; a class with no example gets the overall mean."""
    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    labels = np.asarray(labels)
    overall = features.mean(axis=0)
    means = np.stack([features[labels == k].mean(axis=0) if np.any(labels == k) else overall
                      for k in range(num_classes)])  # (K, D)
    centred = features - means[labels]  # (N, D)
    covariance = centred.T @ centred / max(len(features), 1)  # (D, D)
    average = float(np.trace(covariance)) / covariance.shape[0] or 1.0
    covariance = (1 - shrinkage) * covariance + shrinkage * average * np.eye(covariance.shape[0])
    return Gaussians(means, np.linalg.pinv(covariance, hermitian=True))


# ---- what the model sees ---------------------------------------------------------------------
@torch.no_grad()
def model_features(model, x: torch.Tensor, batch_size: int = BATCH) -> np.ndarray:
    """(N, D) the vector the classifier reads for each example (flattened), in batches."""
    model.eval()
    hook = model.features_hook()
    parts = []
    for start in range(0, len(x), batch_size):
        _, cache = model.run_with_cache(x[start:start + batch_size], names=[hook])
        parts.append(cache[hook].float().flatten(1).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def input_statistics(x: torch.Tensor) -> np.ndarray:
    """(N, D) prepared pictures (N, C, H, W) averaged to at most INPUT_GRID × INPUT_GRID per channel."""
    x = x.float()
    grid = (min(x.shape[2], INPUT_GRID), min(x.shape[3], INPUT_GRID))
    return F.adaptive_avg_pool2d(x, grid).flatten(1).numpy()  # (N, C*gh*gw)


# ---- the reference --------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One distance with its threshold, set on the validation data."""

    measure: str  # features | input
    gaussians: Gaussians
    threshold: float
    largest_validation: float  # the largest distance of a validation example


@dataclass(frozen=True)
class Reference:
    """What the training data looks like to a model, and how it is described in words."""

    kind: str  # image | tokens
    checks: tuple[Check, ...]
    knows: str  # "the digits 0–9 (the digits data it was trained on)"
    validation_count: int


def trained_on(model, dataset, vocab: list[str] | None = None) -> bool:
    """True when ``dataset`` is the data ``model`` was trained on, in the form it reads: a
    pretrained model, one not trained yet, or data of another name, shape, class count or
    vocabulary (``vocab``: the words the model reads) gives no reference to measure against."""
    spec = model.spec
    if model.is_pretrained or dataset is None or model.features_hook() is None:
        return False
    if model.meta.dataset != dataset.name or dataset.input_kind != spec.input.kind:
        return False
    if len(dataset.x_train) < 2 or len(dataset.x_val) < 1 or dataset.num_classes != spec.num_classes:
        return False
    if spec.input.kind == "tokens":
        return vocab is not None and list(dataset.vocab or []) == list(vocab)
    return tuple(dataset.input_shape) == (spec.input.channels, spec.input.height, spec.input.width)


def fit_reference(model, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor,
                  class_names: list[str], dataset_name: str) -> Reference:
    """Fit the Gaussians on the training data and set each threshold on the validation data."""
    kind = "tokens" if model.spec.input.kind == "tokens" else "image"
    num_classes = len(class_names)
    # A large data set (MNIST's 60,000) is read in part: 5,000 examples place the class means and
    # a covariance of a few hundred dimensions well, and keep the fit to about a second.
    train = evenly_spread(len(x_train), MOST_EXAMPLES)
    x_train, labels, x_val = x_train[train], y_train[train].numpy(), x_val[evenly_spread(len(x_val), MOST_EXAMPLES)]
    measured = {"features": lambda x: model_features(model, x)}
    if kind == "image":
        measured["input"] = input_statistics
    checks = []
    for measure, read in measured.items():
        gaussians = fit_gaussians(read(x_train), labels, num_classes)
        validation = read(x_val)
        largest = float(gaussians.distance(validation).max()) if len(validation) else 0.0
        checks.append(Check(measure, gaussians, MARGIN * largest, largest))
    return Reference(kind, tuple(checks), knows_phrase(kind, class_names, dataset_name), len(x_val))


def evenly_spread(count: int, most: int) -> torch.Tensor:
    """Indices of at most ``most`` of ``count`` examples, evenly spread (all of them when fewer)."""
    if count <= most:
        return torch.arange(count)
    return torch.linspace(0, count - 1, most).round().long()


def knows_phrase(kind: str, class_names: list[str], dataset_name: str) -> str:
    """What a model knows, in words built from its classes and data."""
    data = f"the {dataset_name} data it was trained on"
    if kind == "tokens":
        return f"sentences like those of {data}, each sorted as {either_or(class_names)}"
    if [name.strip() for name in class_names] == [str(d) for d in range(len(class_names))]:
        return f"the digits 0–{len(class_names) - 1} ({data})"
    return f"pictures of {either_or([with_article(str(name)) for name in class_names])} ({data})"


def either_or(names: list[str]) -> str:
    names = [str(name) for name in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# ---- one input ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Familiarity:
    """How far one input is from the training data, with the words to say it."""

    score: float  # the distance of the check that is farthest past (or nearest to) its threshold
    threshold: float
    far: bool
    reason: str  # plain words; when far, the note shown next to the prediction
    measure: str  # features | input | words
    unknown_share: float | None = None  # sentences: the share of words not in the vocabulary


def unknown_share(ids: torch.Tensor, vocab: list[str]) -> float:
    """The share of a sentence's words (padding left out) that the vocabulary does not know."""
    ids = torch.as_tensor(ids).flatten()
    ids = ids[ids != PAD_ID]
    if not len(ids):
        return 0.0
    return float((ids == vocab.index(UNK)).float().mean())


def familiarity(model, reference: Reference, x: torch.Tensor, vocab: list[str] | None = None) -> Familiarity:
    """How far ``x`` (one prepared input, no batch dimension) is from ``reference``."""
    batch = x.unsqueeze(0)  # (1, ...)
    worst = None  # (distance / threshold, check, distance)
    for check in reference.checks:
        read = model_features(model, batch) if check.measure == "features" else input_statistics(batch)
        distance = float(check.gaussians.distance(read)[0])
        ratio = distance / check.threshold if check.threshold > 0 else float("inf")
        if worst is None or ratio > worst[0]:
            worst = (ratio, check, distance)
    ratio, check, distance = worst
    thing = "sentence" if reference.kind == "tokens" else "picture"
    share = unknown_share(x, vocab) if reference.kind == "tokens" and vocab else None
    knows = f"This model only knows {reference.knows}"
    if share is not None and share > UNKNOWN_SHARE_FAR:
        return Familiarity(distance, check.threshold, True,
                           f"{knows}; {share:.0%} of the words of this {thing} are not in its vocabulary "
                           "(it reads each as <unk>), so its answer means little.", "words", share)
    if ratio > 1:
        times = distance / check.largest_validation if check.largest_validation > 0 else float("inf")
        return Familiarity(distance, check.threshold, True,
                           f"{knows}; this {thing} looks nothing like them (measured on {MEASURES[check.measure]}, "
                           f"it is {times:.1f} times farther from the training data than the farthest of the "
                           f"{reference.validation_count:,} validation examples), so its answer means little.",
                           check.measure, share)
    return Familiarity(distance, check.threshold, False,
                       f"This {thing} is within the range of the {reference.validation_count:,} validation examples "
                       "of the data the model was trained on.", check.measure, share)
