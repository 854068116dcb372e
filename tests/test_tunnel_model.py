"""The wind tunnel's transformer and optimizer groups: shapes, options, muP, diagnostics."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from lrlab.errors import LrlabError
from lrlab.tunnel.config import ModelConfig, OptimConfig
from lrlab.tunnel.model import Transformer, apply_rotary, check_memory, rotary_tables
from lrlab.tunnel.optim import parameter_groups

VOCAB, SEQ = 256, 16


def tiny(**changes: object) -> Transformer:
    torch.manual_seed(0)
    config = ModelConfig(**{"d_model": 32, "n_layers": 2, "n_heads": 2, **changes})
    return Transformer(config, VOCAB, SEQ)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, VOCAB, (3, SEQ + 1), generator=generator)
    return tokens[:, :-1], tokens[:, 1:]


def test_forward_backward_shapes_and_initial_loss() -> None:
    model = tiny()
    x, y = batch()
    assert model.logits(x).shape == (3, SEQ, VOCAB)
    cross_entropy, objective = model(x, y)
    assert cross_entropy.shape == ()
    assert torch.equal(cross_entropy, objective)  # no z-loss by default
    # Small initial weights: close to the uniform prediction.
    assert abs(cross_entropy.item() - math.log(VOCAB)) < 0.05
    objective.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(
    "options",
    [
        {"qk_norm": True},
        {"tied_embeddings": False},
        {"bias": True},
        {"mup_base_width": 16},
        {"z_loss": 1e-4},
        {"d_ff": 48},
    ],
)
def test_options_train(options: dict[str, object]) -> None:
    model = tiny(**options)
    x, y = batch()
    _, objective = model(x, y)
    objective.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_z_loss_adds_log_partition_penalty() -> None:
    model = tiny(z_loss=1e-2)
    x, y = batch()
    cross_entropy, objective = model(x, y)
    log_z = torch.logsumexp(model.logits(x).float(), dim=-1)
    assert objective.item() == pytest.approx(
        cross_entropy.item() + 1e-2 * log_z.square().mean().item(), rel=1e-5
    )


def test_tied_untied_and_qk_norm_parameters() -> None:
    tied, untied, qk = tiny(), tiny(tied_embeddings=False), tiny(qk_norm=True)
    assert untied.num_parameters() - tied.num_parameters() == VOCAB * 32
    assert qk.num_parameters() - tied.num_parameters() == 2 * 2 * 16  # q and k gains, 2 layers
    assert untied.num_parameters(matmul_only=True) == tied.num_parameters()


def test_attention_matches_explicit_softmax() -> None:
    """SDPA with the model's scale equals softmax(q k^T * scale) v, for both scalings."""
    for options in ({}, {"mup_base_width": 16, "qk_norm": True}):
        model = tiny(**options)
        attn = model.blocks[0].attn
        x = torch.randn(2, SEQ, 32)
        cos, sin = model.rope_cos, model.rope_sin
        q, k, v = attn._qkv(x, cos, sin)
        logits = (q @ k.transpose(-2, -1)) * attn.scale
        mask = torch.ones(SEQ, SEQ, dtype=torch.bool).tril()
        manual = logits.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        expected = attn.proj(manual.transpose(1, 2).reshape(x.shape))
        torch.testing.assert_close(attn(x, cos, sin), expected, rtol=1e-4, atol=1e-5)
        assert attn.max_logit(x, cos, sin) == pytest.approx(
            logits.masked_fill(~mask, float("-inf")).max().item(), rel=1e-5
        )


def test_rotary_embedding_is_relative() -> None:
    """RoPE: q(m) . k(n) depends only on m - n (Su et al. 2021)."""
    cos, sin = rotary_tables(12, 8, 10000.0)
    q, k = torch.randn(8), torch.randn(8)

    def score(m: int, n: int) -> float:
        qm = apply_rotary(q.view(1, 1, 1, 8), cos[m : m + 1], sin[m : m + 1]).flatten()
        kn = apply_rotary(k.view(1, 1, 1, 8), cos[n : n + 1], sin[n : n + 1]).flatten()
        return float(qm @ kn)

    assert score(5, 2) == pytest.approx(score(9, 6), rel=1e-5)
    assert score(3, 3) == pytest.approx(float(q @ k), rel=1e-5)


def test_mup_scales_init_lr_attention_and_readout() -> None:
    wide = tiny(mup_base_width=16)  # width multiplier 2
    assert wide.width_mult == 2.0
    assert wide.blocks[0].attn.scale == pytest.approx(1 / 16)
    groups = {g["name"]: g for g in parameter_groups(wide, OptimConfig())}
    assert groups["hidden"]["lr_scale"] == pytest.approx(0.5)
    assert groups["embedding"]["lr_scale"] == 1.0
    # Hidden weights start with std / sqrt(2): compare the gate/up matrix's spread.
    std = wide.blocks[0].mlp.gate_up.weight.std().item()
    assert std == pytest.approx(0.02 / math.sqrt(2), rel=0.1)
    # At the base width the initialisation and LRs are the standard ones; attention stays 1/d.
    base = tiny(mup_base_width=32)
    assert base.width_mult == 1.0
    assert all(g["lr_scale"] == 1.0 for g in parameter_groups(base, OptimConfig()))
    assert base.blocks[0].attn.scale == pytest.approx(1 / 16)


def test_parameter_groups_cover_all_and_decay_flags() -> None:
    model = tiny(bias=True, qk_norm=True, tied_embeddings=False)
    groups = {g["name"]: g for g in parameter_groups(model, OptimConfig(weight_decay=0.1))}
    grouped = [p for g in groups.values() for p in g["params"]]
    assert len(grouped) == len(list(model.parameters())) == len(set(map(id, grouped)))
    assert groups["matrices"]["weight_decay"] == 0.1
    assert groups["norms"]["weight_decay"] == groups["biases"]["weight_decay"] == 0.0
    assert groups["embedding"]["weight_decay"] == 0.0
    assert any(p is model.head.weight for p in groups["matrices"]["params"])
    decayed = {
        g["name"]: g
        for g in parameter_groups(
            model, OptimConfig(decay_norms=True, decay_embeddings=True, decay_biases=True)
        )
    }
    assert all(g["weight_decay"] == 0.1 for g in decayed.values())


def test_diagnostics_report_every_layer() -> None:
    model = tiny(n_layers=3)
    x, _ = batch()
    stats = model.diagnostics(x)
    assert len(stats.max_attn_logit) == 3
    logits = model.logits(x)
    assert stats.logit_max == pytest.approx(logits.max().item(), rel=1e-5)
    assert stats.logit_mean == pytest.approx(logits.mean().item(), rel=1e-4, abs=1e-6)
    assert stats.log_z == pytest.approx(torch.logsumexp(logits, -1).mean().item(), rel=1e-5)


def test_check_memory_counts_without_allocating_and_refuses_what_cannot_fit() -> None:
    config = ModelConfig(d_model=32, n_layers=2, n_heads=2)
    cpu = torch.device("cpu")
    assert check_memory(config, 256, 64, cpu) == Transformer(config, 256, 64).num_parameters()
    huge = ModelConfig(d_model=10_000_000, n_layers=4, n_heads=4)
    with pytest.raises(LrlabError, match=r"d_model=10000000, n_layers=4 makes [\d,]+ param.*GiB"):
        check_memory(huge, 256, 64, cpu)
