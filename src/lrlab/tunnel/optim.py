"""AdamW with explicit parameter groups (Loshchilov & Hutter 2019, decoupled weight decay).

Parameters are grouped by role: matrices of the linear layers (decayed), RMSNorm gains, biases and
the embedding (not decayed by default: decaying a gain or an embedding row pulls it towards zero
for no regularisation benefit; each is configurable). Under muP (Yang et al. 2022,
arXiv:2203.03466, Table 3, Adam column) the hidden matrices get their LR divided by the width
multiplier; each group carries that factor as ``lr_scale`` and the loop sets
``group["lr"] = schedule(t) * group["lr_scale"]``.
"""

from __future__ import annotations

from typing import Any

import torch

from lrlab.tunnel.config import OptimConfig
from lrlab.tunnel.model import RMSNorm, Transformer


def parameter_groups(model: Transformer, config: OptimConfig) -> list[dict[str, Any]]:
    """The groups (non-empty only), each with ``name``, ``params``, ``weight_decay`` and
    ``lr_scale``; every trainable parameter is in exactly one group."""
    hidden = model.hidden_parameters()
    norms = {p for m in model.modules() if isinstance(m, RMSNorm) for p in m.parameters()}
    embedding = model.embed.weight
    roles: dict[str, list[torch.nn.Parameter]] = {
        "matrices": [],
        "hidden": [],
        "norms": [],
        "biases": [],
        "embedding": [],
    }
    for name, param in model.named_parameters():
        if param is embedding:
            roles["embedding"].append(param)
        elif param in norms:
            roles["norms"].append(param)
        elif name.endswith(".bias"):
            roles["biases"].append(param)
        elif param in hidden and model.width_mult != 1.0:
            roles["hidden"].append(param)
        else:
            roles["matrices"].append(param)
    return [
        {
            "name": role,
            "params": params,
            "weight_decay": _weight_decay(role, config),
            "lr_scale": 1.0 / model.width_mult if role == "hidden" else 1.0,
        }
        for role, params in roles.items()
        if params
    ]


def _weight_decay(role: str, config: OptimConfig) -> float:
    flags = {
        "norms": config.decay_norms,
        "biases": config.decay_biases,
        "embedding": config.decay_embeddings,
    }
    return config.weight_decay if flags.get(role, True) else 0.0


def build_optimizer(
    model: Transformer, config: OptimConfig, device: torch.device
) -> torch.optim.AdamW:
    """AdamW over `parameter_groups`: the fused kernel on GPU, PyTorch's default on CPU (there
    the multi-tensor variant measured twice as slow)."""
    groups = parameter_groups(model, config)
    fused = True if device.type == "cuda" else None
    return torch.optim.AdamW(
        groups, lr=0.0, betas=(config.beta1, config.beta2), eps=config.eps, fused=fused
    )
