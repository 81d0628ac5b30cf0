"""Defaults and corner cases the random strategies do not reach: documented default sites,
hooks given twice for one site, ill-conditioned ReFT rotations, norm/bias combinations."""
from math import prod

import numpy as np
import pytest
from hypothesis import given, strategies as st

from strategies import seeds
from ministeer import adapters as A
from ministeer.ops import orthonormal_rows, orthonormal_rows_composed
from ministeer.model import Config, forward, init_params, param_shapes
from ministeer.sites import resolve_hooks
from ministeer.tree import named_leaves

CFG = Config.llama(vocab_size=13, d_model=8, n_heads=2, n_kv_heads=1, n_layers=2, d_mlp=12, n_ctx=8)


def test_two_keys_for_one_site_both_run_in_order():
    """"post_block" and "blocks.0.hook_resid_post" name the same site: both hooks run, in the
    order given. Rejects a resolver that lets the second key replace the first's hooks."""
    resolved = resolve_hooks(CFG, {"post_block": lambda x, n: x + 1.0, "blocks.0.hook_resid_post": lambda x, n: 2.0 * x})
    assert len(resolved["blocks.0.hook_resid_post"]) == 2 and len(resolved["blocks.1.hook_resid_post"]) == 1
    tokens = np.array([[1, 2, 3]])
    params = init_params(CFG, 0, std=0.3)
    got = forward(params, tokens, CFG, hooks={"post_block": lambda x, n: x + 1.0,
                                              "blocks.0.hook_resid_post": lambda x, n: 2.0 * x})
    want = forward(params, tokens, CFG, hooks={"blocks.0.hook_resid_post": lambda x, n: 2.0 * (x + 1.0),
                                               "blocks.1.hook_resid_post": lambda x, n: x + 1.0})
    np.testing.assert_array_equal(got, want)


def test_default_sites_are_the_documented_ones():
    """The paper's adapter sits after every block by default (official code: post-block low-rank
    steering); ReFT at the block output, as pyreft's default. Rejects another default site."""
    every_block = [f"blocks.{l}.hook_resid_post" for l in range(CFG.n_layers)]
    assert A.lowrank(CFG).spec["sites"] == every_block
    assert A.loreft(CFG, r=2).spec["sites"] == every_block
    assert A.lowrank(CFG).spec["r"] == 8 and A.lowrank(CFG).spec["activation"] == "silu"


@pytest.mark.parametrize("orthonormalize", [orthonormal_rows, orthonormal_rows_composed])
@given(seeds, st.integers(2, 6), st.sampled_from([1e-5, 1e-7, 1e-9]))
def test_reft_rotation_is_orthonormal_for_nearly_parallel_rows(orthonormalize, seed, r, spread):
    """Rows within ``spread`` of one direction (cond ~ 1/spread): classical Gram-Schmidt run once
    leaves R R^T - I ~ 1e-16 / spread^2 (1e-4 at 1e-6); run twice, rounding. Rejects one pass.
    The QR primitive LoReFT uses and its Gram-Schmidt definition must both hold."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(1, 8)) + spread * rng.normal(size=(r, 8))
    R = np.asarray(orthonormalize(X))
    np.testing.assert_allclose(R @ R.T, np.eye(r), atol=1e-12)
    # row i spans the same flag as X[:i+1] (Gram-Schmidt, not any orthonormal basis). Rebuilding
    # R[i] from X's nearly parallel rows by least squares loses ~eps * cond(X) ~ 1e-16 / spread,
    # so the check's own tolerance scales with it (1e-6 up to spread 1e-8; 1e-5 at 1e-9).
    for i in range(r):
        coef = np.linalg.lstsq(X[: i + 1].T, R[i], rcond=None)[0]
        np.testing.assert_allclose(X[: i + 1].T @ coef, R[i], atol=max(1e-6, 1e-14 / spread))


@pytest.mark.parametrize("norm,bias", [("rms", True), ("layer", False), ("rms", False), ("layer", True)])
def test_norm_bias_follows_the_norm_and_linear_bias_follows_the_flag(norm, bias):
    """A norm has a bias iff it is LayerNorm; a linear layer has one iff ``bias``. Closed-form
    count: V d + L (2 n + 4 d^2-ish projections) + n (+ V d untied). Rejects tying the norm bias
    to ``cfg.bias`` (the presets never build rms+bias or layer without bias)."""
    cfg = Config(vocab_size=11, d_model=8, n_heads=2, n_kv_heads=1, n_layers=2, d_mlp=12, norm=norm, bias=bias)
    shapes = param_shapes(cfg)
    assert ("model.norm.bias" in shapes) == (norm == "layer")
    assert ("model.layers.0.input_layernorm.bias" in shapes) == (norm == "layer")
    assert ("model.layers.0.mlp.up_proj.bias" in shapes) == bias
    d, m, kv, V = 8, 12, cfg.n_kv_heads * cfg.d_head, 11
    n = d * (2 if norm == "layer" else 1)
    lin = lambda o, i: o * i + (o if bias else 0)
    per_layer = 2 * n + lin(d, d) * 2 + lin(kv, d) * 2 + lin(m, d) * 2 + lin(d, m)  # swiglu: gate + up
    want = V * d + cfg.n_layers * per_layer + n + V * d  # untied lm_head
    assert A.base_param_count(cfg) == want == sum(prod(s) for s in shapes.values())
    assert sum(leaf.size for _, leaf in named_leaves(init_params(cfg, 0))) == want
