"""A recurrent classifier (RNN, LSTM or GRU) over token ids or numeric sequences.

Training runs PyTorch's fused ``nn.RNN/LSTM/GRU``. Inside ``run_with_cache`` the same weights
are unrolled one step at a time, because the fused kernels never expose the LSTM cell state
or the gates at each step; a test checks both paths give the same logits.

Token id 0 is ``<pad>``; padding goes on the right. The classifier reads the forward
direction at the last real token and, when bidirectional, the backward direction at step 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .hooks import HookedModel, HookPoint, StepPoint
from .spec import ModelSpec

GATE_NAMES = {"rnn": ("h",), "lstm": ("input", "forget", "candidate", "output"), "gru": ("reset", "update", "new")}


class Embed(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        inp, dim = spec.input, spec.rnn.embed_dim
        self.from_tokens = inp.kind == "tokens"
        if self.from_tokens:
            self.tokens = nn.Embedding(inp.vocab_size, dim, padding_idx=0)
        else:
            self.linear = nn.Linear(inp.features, dim)
        self.out = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.from_tokens:
            return self.out(self.tokens(x))  # (B, T) ids -> (B, T, E)
        return self.out(self.linear(x))  # (B, T, F) -> (B, T, E)


class Recurrent(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        cfg = spec.rnn
        net_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cfg.cell]
        self.cell_type = cfg.cell
        self.net = net_cls(cfg.embed_dim, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True,
                           bidirectional=cfg.bidirectional, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.hidden = HookPoint()  # (B, T, H * directions): top layer's h_t at every step
        self.cell = HookPoint()  # LSTM only, (B, T, H * directions): c_t at every step
        self.gates = HookPoint()  # LSTM/GRU, (B, T, gates, H * directions): gate values at every step
        self.final = HookPoint()  # (B, H * directions): the state the classifier reads
        # (B, H): the top layer's h_t at one step, as the next step and the classifier read it; they
        # fire once per step, on the step-by-step path only, so a hook that changes h_t (ablating a
        # unit, explain.ablation) changes every step after it. ``step_back``: the backward direction.
        self.step, self.step_back = StepPoint(), StepPoint()

    def forward(self, x: torch.Tensor, last: torch.Tensor, unroll: bool) -> torch.Tensor:
        if unroll:
            outputs, cells, gates = self._unrolled(x)
            if cells is not None:
                self.cell(cells)
            if gates is not None:
                self.gates(gates)
        else:
            outputs, _ = self.net(x)  # (B, T, H * directions)
        outputs = self.hidden(outputs)
        H = self.net.hidden_size
        rows = torch.arange(x.shape[0], device=x.device)
        final = outputs[rows, last, :H]  # forward direction at the last real token, (B, H)
        if self.net.bidirectional:
            final = torch.cat([final, outputs[:, 0, H:]], dim=-1)  # backward direction ends at step 0
        return self.final(final)

    def _unrolled(self, x: torch.Tensor):
        """The fused layer's arithmetic written out step by step (same weights, same result)."""
        net, cell_type = self.net, self.cell_type
        B, T, _ = x.shape
        H = net.hidden_size
        layer_input = x
        cells_top = gates_top = None
        for layer in range(net.num_layers):
            if layer > 0 and net.dropout:
                layer_input = F.dropout(layer_input, net.dropout, self.training)
            per_direction = []
            for direction in range(2 if net.bidirectional else 1):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                w_ih, w_hh = getattr(net, "weight_ih" + suffix), getattr(net, "weight_hh" + suffix)
                b_ih, b_hh = getattr(net, "bias_ih" + suffix), getattr(net, "bias_hh" + suffix)
                x_part = layer_input @ w_ih.T + b_ih  # (B, T, gates * H), W x_t + b for every t at once
                h = x.new_zeros(B, H)
                c = x.new_zeros(B, H)
                hs, cs, gs = [None] * T, [None] * T, [None] * T
                for t in (range(T - 1, -1, -1) if direction else range(T)):
                    h_part = h @ w_hh.T + b_hh  # (B, gates * H)
                    if cell_type == "rnn":
                        h = torch.tanh(x_part[:, t] + h_part)  # h_t = tanh(W x_t + U h_{t-1} + b)
                        step_gates = h.unsqueeze(1)
                    elif cell_type == "lstm":
                        i, f, g, o = (x_part[:, t] + h_part).chunk(4, dim=-1)
                        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                        c = f * c + i * g
                        h = o * torch.tanh(c)
                        step_gates = torch.stack([i, f, g, o], dim=1)  # (B, 4, H)
                    else:  # gru
                        xr, xz, xn = x_part[:, t].chunk(3, dim=-1)
                        hr, hz, hn = h_part.chunk(3, dim=-1)
                        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                        n = torch.tanh(xn + r * hn)
                        h = (1 - z) * n + z * h
                        step_gates = torch.stack([r, z, n], dim=1)  # (B, 3, H)
                    if layer == net.num_layers - 1:
                        h = self.step_back(h) if direction else self.step(h)
                    hs[t], cs[t], gs[t] = h, c, step_gates
                per_direction.append((torch.stack(hs, 1), torch.stack(cs, 1), torch.stack(gs, 1)))
            layer_input = torch.cat([d[0] for d in per_direction], dim=-1)  # (B, T, H * directions)
            cells_top = torch.cat([d[1] for d in per_direction], dim=-1)
            gates_top = torch.cat([d[2] for d in per_direction], dim=-1)  # (B, T, gates, H * directions)
        if cell_type != "lstm":
            cells_top = None
        if cell_type == "rnn":
            gates_top = None
        return layer_input, cells_top, gates_top


class RNNClassifier(HookedModel):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.embed = Embed(spec)
        self.rnn = Recurrent(spec)
        directions = 2 if spec.rnn.bidirectional else 1
        self.head = nn.Linear(spec.rnn.hidden_size * directions, spec.num_classes)

    def features_hook(self) -> str:
        return "rnn.final"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] == 0:
            raise ValueError("the model needs at least one token per sequence")
        if self.embed.from_tokens:
            real = x != 0  # (B, T) True where there is a token, not padding
        else:
            real = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        steps = torch.arange(x.shape[1], device=x.device)
        last = (steps * real).amax(dim=1)  # (B,) index of the last real token (0 if none)
        embedded = self.embed(x)  # (B, T, E)
        final = self.rnn(embedded, last, unroll=self._caching)
        return self.head(final)  # (B, num_classes) logits
