"""A small decoder-only transformer, the whole model in one file (nanoGPT style).

Pre-norm blocks with RMSNorm (Zhang & Sennrich 2019), rotary position embeddings (RoPE, Su et al.
2021, arXiv:2104.09864), a SwiGLU MLP (Shazeer 2020, arXiv:2002.05202) and PyTorch's
`scaled_dot_product_attention`. Options:

- ``qk_norm``: RMS-normalise queries and keys per head before the dot product, which keeps
  attention logits from growing without bound (Dehghani et al. 2023; Wortsman et al. 2023,
  "Small-scale proxies for large-scale Transformer training instabilities", arXiv:2309.14322).
- ``z_loss``: add ``z_loss * mean(log Z)^2`` of the output logits to the loss, which keeps the
  log-partition near 0 and prevents output-logit divergence (PaLM, Chowdhery et al. 2022,
  arXiv:2204.02311; Wortsman et al. 2023).
- ``tied_embeddings``: the output projection is the input embedding matrix.
- ``mup_base_width``: muP (Yang et al. 2022, "Tensor Programs V", arXiv:2203.03466) relative to a
  base model of that width: hidden weights initialised with std ``init_std / sqrt(m)`` and trained
  with Adam LR ``lr / m``, attention scaled by ``1 / d_head`` instead of ``1 / sqrt(d_head)``, and
  output logits multiplied by ``1 / m``, where ``m = d_model / mup_base_width``. At the base width
  the model is the standard parametrisation, so an LR tuned there transfers to wider models.

`forward` returns the cross-entropy (the loss the laws model) and the objective that is
differentiated (cross-entropy plus z-loss). `diagnostics` measures the instability signals of
Wortsman et al.: the largest attention logit of each layer and the mean, max and log-partition of
the output logits.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lrlab.errors import LrlabError
from lrlab.tunnel.config import ModelConfig


def swiglu_width(d_model: int) -> int:
    """The SwiGLU hidden width with the parameter count of a 4x GELU MLP: 8/3 d, up to 16."""
    return 16 * math.ceil(8 * d_model / 3 / 16)


class RMSNorm(nn.Module):
    """``x / rms(x) * gain``, without mean subtraction or bias (Zhang & Sennrich 2019)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rotary_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the RoPE angles ``t * base^(-2i/d)``, each ``(seq_len, head_dim / 2)``."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels (first half, second half) of ``x: (B, H, T, D)`` by the angles."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


@dataclass
class Stats:
    """The instability signals of one evaluation batch (Wortsman et al. 2023)."""

    max_attn_logit: list[float]
    logit_mean: float
    logit_max: float
    log_z: float


class Attention(nn.Module):
    """Causal multi-head self-attention with RoPE and optional qk-layernorm."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.d_model // config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.q_norm = RMSNorm(self.head_dim, config.norm_eps) if config.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim, config.norm_eps) if config.qk_norm else None
        # muP scales attention by 1/d (not 1/sqrt(d)): q.k grows like d once q, k correlate.
        mup = config.mup_base_width is not None
        self.scale = 1.0 / self.head_dim if mup else 1.0 / math.sqrt(self.head_dim)

    def _qkv(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, time, _ = x.shape
        q, k, v = self.qkv(x).view(batch, time, 3, self.n_heads, self.head_dim).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.proj(y.transpose(1, 2).reshape(x.shape))

    @torch.no_grad()
    def max_logit(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> float:
        """The largest pre-softmax attention logit over the causal positions."""
        q, k, _ = self._qkv(x, cos, sin)
        logits = (q @ k.transpose(-2, -1)).float() * self.scale
        time = x.shape[1]
        causal = torch.ones(time, time, dtype=torch.bool, device=x.device).tril()
        return float(logits.masked_fill(~causal, float("-inf")).max())


class MLP(nn.Module):
    """SwiGLU: ``W_down(silu(W_gate x) * W_up x)`` (Shazeer 2020)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden = config.d_ff or swiglu_width(config.d_model)
        self.gate_up = nn.Linear(config.d_model, 2 * hidden, bias=config.bias)
        self.down = nn.Linear(hidden, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    """Pre-norm residual block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    """The language model: embedding, blocks, final norm, output projection."""

    def __init__(self, config: ModelConfig, vocab_size: int, max_seq_len: int) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.head = (
            None if config.tied_embeddings else nn.Linear(config.d_model, vocab_size, bias=False)
        )
        base = config.mup_base_width
        self.width_mult = config.d_model / base if base is not None else 1.0
        cos, sin = rotary_tables(max_seq_len, config.d_model // config.n_heads, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        std = self.config.init_std
        hidden_std = std / math.sqrt(self.width_mult)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=hidden_std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embed.weight, std=std)
        if self.head is not None:
            nn.init.normal_(self.head.weight, std=std)
        # GPT-2's scaling of the residual output projections: the residual stream's variance
        # then stays the same whatever the depth.
        for block in self.blocks:
            for layer in (block.attn.proj, block.mlp.down):
                nn.init.normal_(layer.weight, std=hidden_std / math.sqrt(2 * len(self.blocks)))

    def hidden_parameters(self) -> set[nn.Parameter]:
        """The matrices whose fan-in grows with the width (muP's 'hidden' weights)."""
        return {module.weight for module in self.blocks.modules() if isinstance(module, nn.Linear)}

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Output logits ``(B, T, vocab)`` for token ids ``(B, T)``."""
        time = idx.shape[1]
        cos, sin = self.rope_cos[:time], self.rope_sin[:time]
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self._readout(x)

    def _readout(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        out = F.linear(x, self.embed.weight) if self.head is None else self.head(x)
        # muP readout multiplier: logits stay O(1) as the width grows.
        return out / self.width_mult if self.width_mult != 1.0 else out

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cross_entropy, objective)``; the objective adds the z-loss when it is enabled."""
        logits = self.logits(idx).float()
        flat = logits.view(-1, logits.shape[-1])
        cross_entropy = F.cross_entropy(flat, targets.reshape(-1))
        if not self.config.z_loss:
            return cross_entropy, cross_entropy
        log_z = torch.logsumexp(flat, dim=-1)
        return cross_entropy, cross_entropy + self.config.z_loss * log_z.square().mean()

    @torch.no_grad()
    def diagnostics(self, idx: torch.Tensor) -> Stats:
        """The instability signals on one batch: per-layer max attention logit, and the output
        logits' mean, max and mean log-partition ``log Z = logsumexp(logits)``."""
        time = idx.shape[1]
        cos, sin = self.rope_cos[:time], self.rope_sin[:time]
        x = self.embed(idx)
        max_attn = []
        for block in self.blocks:
            max_attn.append(block.attn.max_logit(block.attn_norm(x), cos, sin))
            x = block(x, cos, sin)
        logits = self._readout(x).float()
        return Stats(
            max_attn_logit=max_attn,
            logit_mean=float(logits.mean()),
            logit_max=float(logits.max()),
            log_z=float(torch.logsumexp(logits, dim=-1).mean()),
        )

    def num_parameters(self, *, matmul_only: bool = False) -> int:
        """Parameter count; with `matmul_only`, those used in matrix products (for FLOP counts):
        all but an untied input embedding, which is a table lookup."""
        total = sum(p.numel() for p in self.parameters())
        if matmul_only and self.head is not None:
            total -= self.embed.weight.numel()
        return total


def check_memory(
    config: ModelConfig, vocab_size: int, max_seq_len: int, device: torch.device
) -> int:
    """The model's parameter count, after refusing a model whose weights, gradients and AdamW's
    two moments (16 bytes a parameter in float32) would not fit in `device`'s memory: PyTorch
    would fail deep inside its allocator instead. The count comes from building the model on
    the meta device, which allocates nothing."""
    with torch.device("meta"):
        parameters = Transformer(config, vocab_size, max_seq_len).num_parameters()
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    else:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    need = 16 * parameters
    if need > total:
        raise LrlabError(
            f"model: d_model={config.d_model}, n_layers={config.n_layers} makes "
            f"{parameters:,} parameters, whose weights, gradients and AdamW state need "
            f"{need / 2**30:,.1f} GiB; {device.type} memory here is {total / 2**30:,.1f} GiB"
        )
    return parameters
