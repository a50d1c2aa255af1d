"""A transformer encoder classifier over tokens, or over image patches (ViT-style).

Attention is written out as softmax(QKᵀ/√d)V rather than calling a fused kernel, so the
scores and the pattern exist as tensors that a hook point can hand to the attention views.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .hooks import HookedModel, HookPoint
from .spec import ModelSpec


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The fixed sin/cos table of 'Attention Is All You Need', (length, dim)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (ceil(D/2),)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class Attention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.q, self.k, self.v = HookPoint(), HookPoint(), HookPoint()  # (B, heads, T, head_dim)
        self.scores = HookPoint()  # (B, heads, Tq, Tk): QKᵀ/√d before the mask and softmax
        self.pattern = HookPoint()  # (B, heads, Tq, Tk): attention weights, rows sum to 1
        self.z = HookPoint()  # (B, heads, Tq, head_dim): weighted sum of values per head
        self.out = HookPoint()  # (B, T, D): after the output projection

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)  # 3 × (B, T, D)
        q = self.q(q.view(B, T, self.num_heads, self.head_dim).transpose(1, 2))  # (B, h, T, dh)
        k = self.k(k.view(B, T, self.num_heads, self.head_dim).transpose(1, 2))  # (B, h, T, dh)
        v = self.v(v.view(B, T, self.num_heads, self.head_dim).transpose(1, 2))  # (B, h, T, dh)
        scores = self.scores(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim))  # (B, h, T, T)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))  # allowed: (B, 1, 1|T, T)
        pattern = self.pattern(torch.softmax(scores, dim=-1))  # (B, h, T, T)
        z = self.z(self.dropout(pattern) @ v)  # (B, h, T, dh)
        merged = z.transpose(1, 2).reshape(B, T, D)  # (B, T, h*dh)
        return self.out(self.proj(merged))


class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(d_model, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, d_model)
        self.dropout = nn.Dropout(dropout)
        self.out = HookPoint()  # (B, T, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.fc2(self.act(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, d_model: int, num_heads: int, mlp_hidden: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.pre_norm = pre_norm
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, num_heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_hidden, dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.out = HookPoint()  # (B, T, D): the residual stream after this block

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.resid_dropout(self.attn(self.ln1(x), allowed))
            x = x + self.mlp(self.ln2(x))
        else:  # post-norm, as in the 2017 paper
            x = self.ln1(x + self.resid_dropout(self.attn(x, allowed)))
            x = self.ln2(x + self.mlp(x))
        return self.out(x)


class StemLayer(nn.Module):
    """One layer of a ViT's conv stem: (a 2×2 max pool,) a 3×3 conv, batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool):
        super().__init__()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        self.out = HookPoint()  # (B, C, H', W')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.norm(self.conv(self.pool(x)))))


class TokenEmbed(nn.Module):
    """Token ids (or image patches) to vectors, with the CLS token and positions added."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        cfg, inp = spec.transformer, spec.input
        D = cfg.d_model
        self.vision = inp.kind == "image"
        if self.vision:
            # A conv stem (if any) sees edges and corners first, which a plain linear patch cannot;
            # the patches still cover the picture's patch_size × patch_size squares.
            widths = list(cfg.stem_channels or [])
            self.stem = nn.Sequential(*(StemLayer(c_in, c_out, pool=i > 0) for i, (c_in, c_out)
                                        in enumerate(zip([inp.channels] + widths, widths))))
            kernel = cfg.patch_size // 2 ** max(len(widths) - 1, 0)  # the stem's pools shrank the picture
            self.patches = nn.Conv2d(widths[-1] if widths else inp.channels, D, kernel, stride=kernel)
            n_tokens = (inp.height // cfg.patch_size) * (inp.width // cfg.patch_size)
        else:
            self.tokens = nn.Embedding(inp.vocab_size, D, padding_idx=0)
            n_tokens = inp.max_len
        self.use_cls = cfg.pooling == "cls"
        if self.use_cls:
            self.cls = nn.Parameter(torch.zeros(1, 1, D))
        self.max_tokens = n_tokens + int(self.use_cls)
        if cfg.positional == "learned":
            self.pos = nn.Parameter(torch.randn(1, self.max_tokens, D) * 0.02)
        else:  # a buffer, not a parameter: nothing to learn and nothing to save
            self.register_buffer("pos", sinusoidal_positions(self.max_tokens, D).unsqueeze(0), persistent=False)
        self.out = HookPoint()  # (B, T, D), CLS first when used

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.vision:
            x = self.patches(self.stem(x)).flatten(2).transpose(1, 2)  # (B, D, H/p, W/p) -> (B, N, D)
        else:
            x = self.tokens(x)  # (B, T) -> (B, T, D)
        if self.use_cls:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1+T, D)
        return self.out(x + self.pos[:, : x.shape[1]])


class TransformerClassifier(HookedModel):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        cfg = spec.transformer
        self.embed = TokenEmbed(spec)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(cfg.d_model, cfg.num_heads, cfg.mlp_ratio * cfg.d_model, cfg.dropout, cfg.norm == "pre")
            for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()
        self.pooled = HookPoint()  # (B, D): what the classifier reads
        self.head = nn.Linear(cfg.d_model, spec.num_classes)

    def features_hook(self) -> str:
        return "pooled"

    def patch_grid(self) -> tuple[int, int] | None:
        inp, patch = self.spec.input, self.spec.transformer.patch_size
        return (inp.height // patch, inp.width // patch) if self.embed.vision else None

    def head_mixer(self, block: int) -> nn.Module:
        return self.blocks[block].attn.proj

    def classify_stream(self, stream: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._pool(self.norm(stream), self._real_tokens(x)))

    def _real_tokens(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, T) True for every token attention may read, the class token included; None for pictures."""
        embed = self.embed
        if embed.vision:
            return None  # every patch is real
        real = x != 0  # (B, T)
        if embed.use_cls:
            real = torch.cat([torch.ones_like(real[:, :1]), real], dim=1)  # the CLS token is always real
        real[:, 0] = True  # an all-padding row still needs one key to attend to
        return real

    def _pool(self, h: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        """(B, T, D) -> (B, D): the class token, or the mean of the real tokens."""
        if self.embed.use_cls:
            return h[:, 0]
        if real is None:
            return h.mean(dim=1)
        weights = real.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        return (h * weights).sum(1) / weights.sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embed = self.embed
        if not embed.vision:
            if x.dim() != 2 or x.shape[1] == 0:
                raise ValueError("the model needs a batch of token id sequences with at least one token")
            limit = embed.max_tokens - int(embed.use_cls)
            if x.shape[1] > limit:
                raise ValueError(f"a sequence of {x.shape[1]} tokens is longer than this model's maximum of {limit}")
        real = self._real_tokens(x)
        h = self.dropout(embed(x))  # (B, T, D)
        allowed = None if real is None else real[:, None, None, :]  # (B, 1, 1, Tk): keys that may be attended
        for block in self.blocks:
            h = block(h, allowed)
        pooled = self._pool(self.norm(h), real)  # (B, D)
        return self.head(self.pooled(pooled))  # (B, num_classes) logits
