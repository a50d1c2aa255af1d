"""Pretrained Hugging Face image models (ViT, ResNet) behind Glassbox's hook names.

A vision transformer is a ``PretrainedTransformer`` (models.pretrained.base), like the text
models: the Hugging Face forward pass runs as it is, with eager attention, and the hook points
(``embed.out``, ``blocks.{i}.attn.pattern``, ``blocks.{i}.out``, ``pooled``) are read-outs
filled from its outputs inside ``run_with_cache``. So the attention page works on it unchanged.

A ResNet is run stage by stage here instead (stem, stem pooling, each stage, average pooling,
classifier: exactly what ``ResNetModel.forward`` does), with each stage's output passing
*through* its hook point (``conv.0.out``, ``pool.0.out``, ``conv.{i}.out``). Grad-CAM replaces a
hook point's output to take gradients with respect to it, which only works on a point the
logits are computed from; a read-out would be a dead end.

Each model gets its own preprocessing from its ``preprocessor_config.json`` (size, mean, std),
read here as plain JSON: no image-processor class is built (the fast ones need torchvision),
and nothing in the folder runs. Loading is reached only through ``models.pretrained.load``,
which checks the folder and keeps the safetensors-only, no-remote-code rules.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..hooks import HookedModel, HookPoint
from ..meta import ModelMeta
from ..spec import InputSpec, ModelSpec, TransformerConfig
from .base import Family, PretrainedError, PretrainedTransformer, class_names, read_json

PREPROCESSOR_FILE = "preprocessor_config.json"
IMAGENET_MEAN = [0.485, 0.456, 0.406]  # transformers' IMAGENET_DEFAULT_MEAN: ResNet's processor default
IMAGENET_STD = [0.229, 0.224, 0.225]  # transformers' IMAGENET_DEFAULT_STD
STANDARD_MEAN_STD = [0.5, 0.5, 0.5]  # transformers' IMAGENET_STANDARD_MEAN and _STD: ViT's processor default
DEFAULT_SIDE = 224  # pixels, when neither the preprocessor nor the model config gives a size
VISION_FAMILIES = {"vit": "ViT", "resnet": "ResNet"}  # model_type -> the name shown in messages
# Where a ViT keeps what PretrainedTransformer's read-outs read, relative to its base model.
VIT_LAYOUT = Family("ViT", False, "layers", "attention", ("q_proj", "k_proj", "v_proj"), True, "attention.o_proj")


def image_preprocessing(source, model_config=None) -> dict:
    """{"mean", "std", "height", "width"} a picture is prepared with, so that Glassbox's
    ``(pixel / 255 − mean) / std`` at height × width is what the model's own processor makes.

    ``source``: a model folder (its preprocessor_config.json, if any) or that file's contents as
    a dict. ``model_config`` gives the defaults: the family's mean and std, its image_size or 224."""
    if isinstance(source, dict):
        settings, name = source, "the model"
    else:
        settings, name = read_json(Path(source) / PREPROCESSOR_FILE, Path(source).name), Path(source).name
    channels = int(getattr(model_config, "num_channels", 3) or 3)
    family_default = STANDARD_MEAN_STD if getattr(model_config, "model_type", None) == "vit" else None
    mean = _per_channel(settings.get("image_mean", family_default or IMAGENET_MEAN), channels, "image_mean", name)
    std = _per_channel(settings.get("image_std", family_default or IMAGENET_STD), channels, "image_std", name)
    if not settings.get("do_normalize", True):
        mean, std = [0.0] * channels, [1.0] * channels
    if any(s <= 0 for s in std):
        raise PretrainedError(f"'{name}': every image_std in {PREPROCESSOR_FILE} must be above 0, not {std}")
    # The model reads (pixel · rescale − mean) / std; (pixel / 255 − m) / s is the same with
    # m = mean / (255 · rescale) and s = std / (255 · rescale). rescale is 1/255 almost always.
    rescale = float(settings.get("rescale_factor", 1 / 255)) if settings.get("do_rescale", True) else 1.0
    factor = 255.0 * rescale
    model_side = getattr(model_config, "image_size", None)
    if model_side:  # a ViT's position embeddings fix the size it reads, whatever its processor says
        height, width = _pair(model_side, name)
    else:
        height, width = _size_of(settings, name)
    return {"mean": [m / factor for m in mean], "std": [s / factor for s in std], "height": height, "width": width}


def _size_of(settings: dict, name: str) -> tuple[int, int]:
    """The processor's final size: its centre crop when it crops, else its resize target."""
    crop = settings.get("crop_size") if settings.get("do_center_crop") else None
    size = crop or settings.get("size")
    if size is None:
        return DEFAULT_SIDE, DEFAULT_SIDE
    if isinstance(size, dict):
        if "height" in size and "width" in size:
            return _pair((size["height"], size["width"]), name)
        if "shortest_edge" in size:  # resized so the short side is this long, then (we) crop square
            return _pair(size["shortest_edge"], name)
    return _pair(size, name)


def _pair(size, name: str) -> tuple[int, int]:
    sides = list(size) if isinstance(size, (list, tuple)) else [size, size]
    if len(sides) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sides):
        raise PretrainedError(f"'{name}': the picture size {size!r} is not a whole number of pixels "
                              "(or a height and a width)")
    return sides[0], sides[1]


def _per_channel(value, channels: int, key: str, name: str) -> list[float]:
    values = [value] * channels if isinstance(value, (int, float)) else list(value)
    if len(values) != channels or not all(isinstance(v, (int, float)) for v in values):
        raise PretrainedError(f"'{name}': {key} in {PREPROCESSOR_FILE} needs {channels} numbers, not {value!r}")
    return [float(v) for v in values]


def _meta(source: str, family: str, classifier: bool, image: dict) -> ModelMeta:
    return ModelMeta(pretrained=source, family=family, classifier=classifier, image=dict(image),
                     # explain.attributions' default baseline: a black picture in the model's own input space
                     normalization={"mean": list(image["mean"]), "std": list(image["std"])})


def _checked_pictures(x, channels: int, height: int | None, width: int | None) -> torch.Tensor:
    """A (B, C, H, W) float batch; H and W are checked only when the model needs one size."""
    x = torch.as_tensor(x)
    if x.dim() != 4 or not x.dtype.is_floating_point or x.shape[1] != channels:
        raise ValueError(f"the model needs a batch of {channels}-channel pictures (batch, {channels}, height, "
                         f"width) of numbers, not a {x.dtype} array of shape {tuple(x.shape)}")
    if height is not None and tuple(x.shape[2:]) != (height, width):
        raise ValueError(f"this model reads {height}×{width} pictures, not {x.shape[2]}×{x.shape[3]}")
    return x


# ---- ViT --------------------------------------------------------------------------------------

class Embed(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = HookPoint()  # (B, 1 + patches, D): hidden_states[0], [CLS] first, positions added


class PretrainedViT(PretrainedTransformer):
    """A Hugging Face ViT (``ViTModel`` or ``ViTForImageClassification``, eager attention) with
    Glassbox's hook points; ``forward(x)`` takes normalised (B, C, H, W) pictures, gives (B, K)."""

    def __init__(self, hf: nn.Module, name: str, source: str, image: dict):
        config = hf.config
        classifier = hf is not hf.base_model and config.num_labels > 0
        num_classes, names = class_names(config, classifier)
        transformer = TransformerConfig(
            d_model=config.hidden_size, num_heads=config.num_attention_heads, num_layers=config.num_hidden_layers,
            mlp_ratio=max(1, config.intermediate_size // config.hidden_size), dropout=0.0, positional="learned",
            norm="pre", pooling="cls", patch_size=config.patch_size)
        spec = ModelSpec(name=name, kind="transformer", num_classes=num_classes, class_names=names,
                         input=InputSpec(kind="image", channels=config.num_channels,
                                         height=image["height"], width=image["width"]),
                         transformer=transformer)
        super().__init__(spec, hf, VIT_LAYOUT, Embed())
        self.meta = _meta(source, "vit", classifier, image)
        # As for text: transformers hooks its layers for good the first time attentions are asked for
        with torch.no_grad():
            self.hf(pixel_values=torch.zeros(1, config.num_channels, image["height"], image["width"]),
                    output_attentions=True, output_hidden_states=True)
        self.eval()  # inspected, never trained: dropout stays off

    def patch_grid(self) -> tuple[int, int]:
        inp, patch = self.spec.input, self.spec.transformer.patch_size
        return inp.height // patch, inp.width // patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = self.spec.input
        x = _checked_pictures(x, inp.channels, inp.height, inp.width)
        if not self._caching:
            return self._logits(self.hf(pixel_values=x), x)
        outputs = self._run_read_out(pixel_values=x)  # hidden states of (B, 1 + patches, D)
        if self.meta.classifier:  # ViTForImageClassification reads [CLS] after the final layer norm
            self.pooled(self.hf.base_model.layernorm(outputs.hidden_states[-1])[:, 0])
        else:
            self.pooled(outputs.pooler_output if outputs.pooler_output is not None else outputs.last_hidden_state[:, 0])
        return self._logits(outputs, x)


# ---- ResNet -----------------------------------------------------------------------------------

class Readout(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = HookPoint()  # (B, C, H, W): this stage's output, which the next stage reads


class PretrainedResNet(HookedModel):
    """A Hugging Face ResNet (``ResNetModel`` or ``ResNetForImageClassification``) run stage by
    stage through Glassbox's hook points; ``forward(x)`` takes normalised (B, C, H, W) pictures."""

    def __init__(self, hf: nn.Module, name: str, source: str, image: dict):
        config = hf.config
        classifier = hf is not hf.base_model and config.num_labels > 0
        num_classes, names = class_names(config, classifier)
        super().__init__(ModelSpec(name=name, kind="cnn", num_classes=num_classes, class_names=names,
                                   input=InputSpec(kind="image", channels=config.num_channels,
                                                   height=image["height"], width=image["width"]),
                                   layers=[]))  # descriptive only: the residual blocks are no layer table
        self.hf = hf
        self.meta = _meta(source, "resnet", classifier, image)
        self.input = HookPoint()  # (B, C, H, W) the normalised picture
        stages = len(hf.base_model.encoder.stages)
        self.conv = nn.ModuleList(Readout() for _ in range(1 + stages))  # conv.0: the stem; conv.{i}: stage i
        self.pool = nn.ModuleList([Readout()])  # pool.0: the stem's max pool
        self.pooled = HookPoint()  # (B, C): global average of the last stage, what the head reads
        self.eval()
        with torch.no_grad():  # each map's (C, H, W) at the model's size, for captions ("64 maps of 8×8")
            _, cache = self.run_with_cache(torch.zeros(1, config.num_channels, image["height"], image["width"]),
                                           names=self.stage_names())
        self.stage_shapes = {name: tuple(value.shape[1:]) for name, value in cache.items()}
        self.hidden_act = config.hidden_act  # its one activation function, for DeepLift's rules

    def gradcam_layers(self) -> list[str]:
        return [name for name in self.stage_names() if name.startswith("conv.")]  # the stem's and stages' outputs

    def activation_shape(self, hook_name: str) -> tuple[int, ...]:
        return self.stage_shapes[hook_name]  # measured at load: a ResNet has no layer table

    def activation_functions(self) -> set[str]:
        return {self.hidden_act}

    def stage_names(self) -> list[str]:
        """The hook names of the stem, its pooling and every stage, in the order they run."""
        return ["conv.0.out", "pool.0.out"] + [f"conv.{i}.out" for i in range(1, len(self.conv))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(_checked_pictures(x, self.spec.input.channels, None, None))
        base = self.hf.base_model
        x = self.conv[0].out(base.embedder.embedder(x))  # (B, C0, H/2, W/2): 7×7 conv, batch norm, activation
        x = self.pool[0].out(base.embedder.pooler(x))  # (B, C0, H/4, W/4)
        for readout, stage in zip(self.conv[1:], base.encoder.stages):
            x = readout.out(stage(x))  # (B, Ci, h, w)
        pooled = self.pooled(base.pooler(x).flatten(1))  # (B, C, 1, 1) -> (B, C)
        if self.meta.classifier:
            return self.hf.classifier(pooled)  # (B, K)
        return torch.zeros(x.shape[0], 0, device=x.device)  # (B, 0): a bare backbone has no classes


# ---- loading (called by models.pretrained.load after its checks) --------------------------------

def build_vision(location: str, config, name: str, source: str, offline: bool) -> HookedModel:
    """The ViT or ResNet at ``location`` (a checked folder or a hub id), wrapped with hook points."""
    from transformers import AutoModel, AutoModelForImageClassification

    classifier = any(arch.endswith("ForImageClassification") for arch in (config.architectures or []))
    loader = AutoModelForImageClassification if classifier else AutoModel
    options = {"attn_implementation": "eager"} if config.model_type == "vit" else {}  # eager: attentions exist
    hf = loader.from_pretrained(location, use_safetensors=True, trust_remote_code=False, local_files_only=offline,
                                dtype=torch.float32, **options)
    image = image_preprocessing(_preprocessor_settings(location, name, offline), hf.config)
    wrapper = PretrainedViT if config.model_type == "vit" else PretrainedResNet
    return wrapper(hf, name, source, image)


def _preprocessor_settings(location: str, name: str, offline: bool) -> dict:
    """The model's preprocessor_config.json as a dict ({} when it has none: defaults apply)."""
    folder = Path(location)
    if folder.is_dir():
        return read_json(folder / PREPROCESSOR_FILE, name)
    from transformers.utils import cached_file

    path = cached_file(location, PREPROCESSOR_FILE, local_files_only=offline,
                       _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False)
    return read_json(Path(path), name) if path else {}
