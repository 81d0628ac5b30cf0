"""Claim 4: pre-MLP steering cannot leave col(W_d); post-MLP and post-block steering can.

docs/03-glu-and-pre-mlp.md eq. (3.5) and docs/05-parameterizations.md eq. (5.5).
A rank-deficient W_d (col(W_d) = span(Q)) and dW_d = Q_perp E: the target (dW_d) m has
the component Q_perp E m outside col(W_d), which bounds the residual of every pre-MLP
steer -- linearized (fit through A(h)) or exact, of any size -- from below. Adding
(dW_d) m at hook_mlp_out instead reproduces the updated model exactly.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import complement, orthonormal, stream
from strategies import model_and_tokens, seeds
from tolerances import EXACT
from ministeer.model import forward
from ministeer.theory import glu
from ministeer.theory.blocks import apply_mlp, block_params
from ministeer.theory.fitting import fit_pre_mlp
from ministeer.theory.first_order import perturb
from ministeer.theory.where import outside_column_space
from ministeer.tree import set_path

pytestmark = pytest.mark.claim(4)


def _deficient_setup(mt, data):
    """Params whose layer-l W_d has rank k < d, an update dW_d = Q_perp E, and the MLP inputs."""
    cfg, params, tokens = mt
    assume(cfg.d_model >= 2)
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    rng = np.random.default_rng(data.draw(seeds))
    k = int(rng.integers(1, min(cfg.d_model, cfg.d_mlp + 1)))
    Q = orthonormal(rng, cfg.d_model, k)
    name = f"model.layers.{layer}.mlp.down_proj.weight"
    W_d = block_params(params, layer)["mlp"]["down_proj"]["weight"]
    params = set_path(params, name, Q @ (Q.T @ W_d))  # col(W_d) = span(Q)
    Qp = complement(Q)
    E = rng.normal(size=(Qp.shape[1], cfg.d_mlp))
    return cfg, params, tokens, layer, name, Q, Qp @ E


@given(model_and_tokens(), st.data())
def test_col_A_inside_col_W_d(mt, data):
    cfg, params, tokens, layer, _, Q, _ = _deficient_setup(mt, data)
    p = block_params(params, layer)["mlp"]
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized").reshape(-1, cfg.d_model)
    A = glu.pre_mlp_jacobian(p, x, cfg)  # [N, d, d]
    leak = np.linalg.norm(A - Q @ (Q.T @ A), axis=(1, 2))
    assert np.all(leak <= 1e-12 * (1.0 + np.linalg.norm(A, axis=(1, 2))))


@given(model_and_tokens(), st.data())
def test_pre_mlp_residual_bounded_below_post_mlp_exact(mt, data):
    cfg, params, tokens, layer, name, Q, dW_d = _deficient_setup(mt, data)
    p = block_params(params, layer)["mlp"]
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized").reshape(-1, cfg.d_model)
    m = stream(params, tokens, cfg, f"blocks.{layer}.mlp.hook_post").reshape(-1, cfg.d_mlp)
    target = m @ dW_d.T  # the update's exact shift of y, token by token
    unreachable = outside_column_space(p["down_proj"]["weight"], target)
    np.testing.assert_allclose(unreachable, target, rtol=1e-9, atol=1e-9)  # all of it lies outside col(W_d)
    bound = float(np.sum(unreachable ** 2))
    assert bound == pytest.approx(float(np.sum(target ** 2)), rel=1e-9) and bound > 0
    # linearized pre-MLP steer, best per token
    _, residual = fit_pre_mlp(glu.pre_mlp_jacobian(p, x, cfg), target)
    assert residual >= bound * (1 - 1e-9)
    # exact pre-MLP steers of any size: y(x + dh) - y(x) stays in col(W_d)
    rng = np.random.default_rng(0)
    for size in (1e-3, 1.0, 1e3):
        dh = size * rng.normal(size=x.shape)
        miss = apply_mlp(p, x + dh, cfg) - apply_mlp(p, x, cfg) - target
        assert float(np.sum(miss ** 2)) >= bound * (1 - 1e-9)
    # post-MLP steer delta = (dW_d) m reproduces the updated model exactly
    steer = {f"blocks.{layer}.hook_mlp_out": lambda y, _: y + target.reshape(y.shape)}
    np.testing.assert_allclose(forward(params, tokens, cfg, hooks=steer),
                               forward(perturb(params, {name: dW_d}), tokens, cfg), **EXACT)
