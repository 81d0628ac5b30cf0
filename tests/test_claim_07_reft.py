"""Claim 7: LoReFT at post-MLP is a rank-<=r update of the down projection, plus a constant.

docs/05-parameterizations.md eqs. (5.6)-(5.8); ministeer/theory/reft.py.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from claim_helpers import orthonormal, stream
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
