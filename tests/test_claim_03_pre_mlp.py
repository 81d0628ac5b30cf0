"""Claim 3: pre-MLP steering is linear to first order, dy = A(h) dh, with A(h) = W_d J(h).

docs/03-glu-and-pre-mlp.md eqs. (3.3), (3.4): the closed-form A(h) equals
autograd.jacobian of the MLP (exactly), and GLU(h + eps v) - GLU(h) - eps A(h) v = O(eps^2).
"""
import numpy as np
import pytest
from autograd import jacobian
from hypothesis import given, strategies as st

from claim_helpers import stream
from strategies import configs, model_and_tokens, random_params, seeds
from tolerances import EPSILONS, EXACT, SLOPE_TOL
from ministeer.theory import glu
from ministeer.theory.blocks import apply_mlp, block_params
from ministeer.theory.first_order import remainder_curve
from ministeer.theory.scaling import settled_slope

pytestmark = pytest.mark.claim(3)


@given(model_and_tokens(), st.data())
def test_A_equals_autograd_jacobian_on_model_activations(mt, data):
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    p = block_params(params, layer)["mlp"]
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized").reshape(-1, cfg.d_model)
    A = glu.pre_mlp_jacobian(p, x, cfg)  # [N, d, d]
    for i in range(x.shape[0]):
        np.testing.assert_allclose(A[i], jacobian(lambda h: apply_mlp(p, h, cfg))(x[i]), **EXACT)


@given(configs(), seeds, st.integers(1, 5))
def test_steer_remainder_is_second_order(cfg, seed, n):
    rng = np.random.default_rng(seed)
    p = block_params(random_params(cfg, seed % 2**31), 0)["mlp"]
    x, v = rng.normal(size=(n, cfg.d_model)), rng.normal(size=(n, cfg.d_model))
    errs, floor = remainder_curve(lambda e: apply_mlp(p, x + e * v, cfg), glu.pre_mlp_shift(p, x, v, cfg),
                                  apply_mlp(p, x, cfg), EPSILONS)
    assert abs(settled_slope(EPSILONS, errs, floor) - 2.0) <= SLOPE_TOL, errs
