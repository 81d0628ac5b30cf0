"""Claim 7 (paper): LoReFT *at the MLP output* is a rank-<=r update of the down projection,
plus a constant.

docs/05-parameterizations.md eqs. (5.6)-(5.8); ministeer/theory/reft.py.

The premise is the site. pyreft's default site is the block output (``block_output``), and
so is the LoReFT baseline here (``adapters.loreft(sites="post_block")``). There the edit
reads h_out = r + y, and its shift depends on the skip stream r: no update of W_d (plus a
constant) reproduces it. ``test_loreft_at_block_output_is_no_down_update`` measures that:
the best (dW_d, c) leaves a residual bounded away from zero, while at the MLP output the
same fit is exact. Rejects: applying claim 7 to the block-output baseline.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from claim_helpers import orthonormal, stream
from ministeer.theory.fitting import fit_affine
from strategies import model_and_tokens, seeds
from tolerances import EXACT
from ministeer.theory import reft
from ministeer.theory.blocks import block_params
from ministeer.theory.linear import numerical_rank

pytestmark = pytest.mark.claim(7)


def _setup(mt, data):
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    rng = np.random.default_rng(data.draw(seeds))
    r = data.draw(st.integers(1, cfg.d_model))
    m = stream(params, tokens, cfg, f"blocks.{layer}.mlp.hook_post").reshape(-1, cfg.d_mlp)
    W_d = block_params(params, layer)["mlp"]["down_proj"]["weight"]
    return cfg, rng, r, m, W_d


@given(model_and_tokens(), st.data())
def test_loreft_is_an_effective_down_update(mt, data):
    cfg, rng, r, m, W_d = _setup(mt, data)
    R = orthonormal(rng, cfg.d_model, r).T  # [r, d], orthonormal rows
    W, b = rng.normal(size=(r, cfg.d_model)), rng.normal(size=r)
    y = m @ W_d.T  # the model's MLP output without its bias (eq. (5.7) assumes y = W_d m)
    np.testing.assert_allclose(reft.loreft_shift(R, W, b, y), reft.loreft_as_update(R, W, b, W_d, m), **EXACT)
    dW = reft.loreft_effective_update(R, W, W_d)
    assert numerical_rank(dW) <= r
    assert reft.subspace_leak(dW, R) <= 1e-12 * (1 + np.linalg.norm(dW))


@given(model_and_tokens(), st.data())
def test_direft_is_an_effective_down_update(mt, data):
    cfg, rng, r, m, W_d = _setup(mt, data)
    W1, W2, b = rng.normal(size=(r, cfg.d_model)), rng.normal(size=(r, cfg.d_model)), rng.normal(size=r)
    y = m @ W_d.T
    dW = reft.direft_effective_update(W1, W2, W_d)
    np.testing.assert_allclose(reft.direft_shift(W1, W2, b, y), m @ dW.T + W2.T @ b, **EXACT)
    assert numerical_rank(dW) <= r
    assert reft.subspace_leak(dW, W2) <= 1e-9 * (1 + np.linalg.norm(dW))


@given(model_and_tokens(), st.data())
def test_loreft_cannot_imitate_a_down_update_outside_row_R(mt, data):
    """Negative: for a target dW_d, every LoReFT (any W, b) misses it by >= ||(I - R^T R) dW_d||_F."""
    cfg, rng, r, m, W_d = _setup(mt, data)
    r = min(r, cfg.d_model - 1)  # row(R) a proper subspace (d_model >= 2 in every config)
    R = orthonormal(rng, cfg.d_model, r).T
    target = rng.normal(size=W_d.shape)
    bound = reft.subspace_leak(target, R)
    assert bound > 0
    for _ in range(5):
        dW = reft.loreft_effective_update(R, rng.normal(size=(r, cfg.d_model)), W_d)
        assert np.linalg.norm(dW - target) >= bound * (1 - 1e-12)


@given(st.integers(2, 10), st.integers(2, 12), seeds, st.data())
def test_loreft_at_block_output_is_no_down_update(d, d_mlp, seed, data):
    """N tokens with hidden m_i and skip stream r_i (independent), y_i = W_d m_i. Fit the
    LoReFT shift by dW m + c (least squares over all dW, c): exact at the MLP output; at the
    block output the residual is the part of R^T (W - R) r_i not affine in m_i, > 0."""
    rng = np.random.default_rng(seed)
    r_dim = data.draw(st.integers(1, d - 1))
    n = d_mlp + d + 8  # more tokens than unknowns per output coordinate
    m, skip = rng.normal(size=(n, d_mlp)), rng.normal(size=(n, d))
    W_d = rng.normal(size=(d, d_mlp))
    R = orthonormal(rng, d, r_dim).T
    W, b = rng.normal(size=(r_dim, d)), rng.normal(size=r_dim)
    y = m @ W_d.T
    at_mlp = reft.loreft_shift(R, W, b, y)
    at_block = reft.loreft_shift(R, W, b, skip + y)
    scale = float(np.sum(at_block ** 2))
    assert fit_affine(m, at_mlp)[2] <= 1e-20 * scale + 1e-24
    skip_part = skip @ (R.T @ (W - R)).T  # the shift's dependence on r
    assert fit_affine(m, at_block)[2] >= 1e-3 * float(np.sum((skip_part - skip_part.mean(0)) ** 2))
    assert fit_affine(m, at_block)[2] > 1e-6 * scale
