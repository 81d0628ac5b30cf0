"""Claim 4 (paper; restated here): a pre-MLP steer moves the MLP output only inside col(W_d).

docs/03-glu-and-pre-mlp.md eq. (3.5) and docs/05-parameterizations.md eq. (5.5).

* Rank-deficient W_d (col(W_d) = span(Q)), update dW_d = Q E_in + Q_perp E_out: the best
  pre-MLP steer, *computed* by least squares through A(h) token by token, reaches the
  inside part and misses exactly the outside part. Rejects: a reachability bound that is
  not attained (e.g. a Jacobian without its W_d factor, or a target wholly outside col(W_d)
  where even dh = 0 "passes") -- the residual must *equal* the bound, and the bound must be
  smaller than the residual of doing nothing.
* Full-row-rank W_d (every real LLM: d_mlp > d): the bound is 0 and the claim restricts
  nothing per token: dh = A(h)^-1 dy_FT matches the whole first-order update of all MLP
  weights. Rejects: reading claim 4 as "pre-MLP cannot match an MLP fine-tune".
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import complement, mlp_update, orthonormal, stream
from strategies import model_and_tokens, seeds
from tolerances import EPSILONS, EXACT, SLOPE_TOL
from ministeer.model import forward
from ministeer.theory import glu
from ministeer.theory.blocks import apply_mlp, block_params
from ministeer.theory.fitting import fit_pre_mlp
from ministeer.theory.first_order import perturb, remainder_curve, slope_or_none
from ministeer.theory.linear import numerical_rank
from ministeer.theory.where import outside_column_space
from ministeer.tree import set_path

pytestmark = pytest.mark.claim(4)


def _deficient_setup(mt, data):
    """Params whose layer-l W_d has rank k < d, an update dW_d = Q E_in + Q_perp E_out, the MLP inputs."""
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    rng = np.random.default_rng(data.draw(seeds))
    k = int(rng.integers(1, min(cfg.d_model, cfg.d_mlp + 1)))
    Q = orthonormal(rng, cfg.d_model, k)
    name = f"model.layers.{layer}.mlp.down_proj.weight"
    W_d = block_params(params, layer)["mlp"]["down_proj"]["weight"]
    params = set_path(params, name, Q @ (Q.T @ W_d))  # col(W_d) = span(Q)
    Qp = complement(Q)
    dW_d = Q @ rng.normal(size=(k, cfg.d_mlp)) + Qp @ rng.normal(size=(Qp.shape[1], cfg.d_mlp))
    return cfg, params, tokens, layer, name, Q, dW_d


@given(model_and_tokens(), st.data())
def test_col_A_inside_col_W_d(mt, data):
    """Rejects a Jacobian A(h) that leaks outside col(W_d) (e.g. a dropped W_d factor)."""
    cfg, params, tokens, layer, _, Q, _ = _deficient_setup(mt, data)
    p = block_params(params, layer)["mlp"]
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized").reshape(-1, cfg.d_model)
    A = glu.pre_mlp_jacobian(p, x, cfg)  # [N, d, d]
    leak = np.linalg.norm(A - Q @ (Q.T @ A), axis=(1, 2))
    assert np.all(leak <= 1e-12 * (1.0 + np.linalg.norm(A, axis=(1, 2))))


@given(model_and_tokens(), st.data())
def test_best_pre_mlp_steer_misses_exactly_the_part_outside_col_W_d(mt, data):
    cfg, params, tokens, layer, name, Q, dW_d = _deficient_setup(mt, data)
    p = block_params(params, layer)["mlp"]
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized").reshape(-1, cfg.d_model)
    m = stream(params, tokens, cfg, f"blocks.{layer}.mlp.hook_post").reshape(-1, cfg.d_mlp)
    target = m @ dW_d.T  # the update's exact shift of y, token by token
    bound = float(np.sum(outside_column_space(Q, target) ** 2))
    inside = float(np.sum(target ** 2)) - bound
    A = glu.pre_mlp_jacobian(p, x, cfg)
    # the generic case: A(h) has rank k, col(A(h)) = col(W_d) (J(h) is onto a k-dim image)
    assume(all(numerical_rank(a, 1e-6) == Q.shape[1] for a in A) and inside > 1e-6 * bound)
    _, residual = fit_pre_mlp(A, target)  # the best dh per token, computed
    assert residual == pytest.approx(bound, rel=1e-7, abs=1e-20)  # the bound is attained...
    assert residual < float(np.sum(target ** 2)) * (1 - 1e-9)    # ...and dh = 0 does worse
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


@given(model_and_tokens(), st.data())
def test_full_row_rank_W_d_reaches_every_first_order_update(mt, data):
    """W_d of full row rank (d_mlp >= d): per token dh = A(h)^-1 dy_FT solves A dh = dy_FT
    to rounding, and the steer eps*dh reproduces the update of *all* MLP weights to O(eps^2)."""
    cfg, params, tokens = mt
    assume(cfg.d_mlp >= cfg.d_model)
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    p = block_params(params, layer)["mlp"]
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized").reshape(-1, cfg.d_model)
    A = glu.pre_mlp_jacobian(p, x, cfg)
    assume(max(np.linalg.cond(a) for a in A) < 1e4)
    dp = mlp_update(p, np.random.default_rng(data.draw(seeds)))
    dh, residual = glu.first_order_matching(p, dp, x, cfg)
    dy = glu.weight_update_shift(p, dp, x, cfg)
    assert np.all(residual <= 1e-9 * (1 + np.linalg.norm(dy, axis=1)))
    # eps is a relative size: scale the pair (update, steer) so the steer is at most as big as x
    s = 1.0 / max(1.0, float(np.max(np.abs(dh)) / np.max(np.abs(x))))
    named = {f"{k}.{kk}": s * v for k, sub in dp.items() for kk, v in sub.items()}
    dh = s * dh
    errs, floor = remainder_curve(lambda e: apply_mlp(perturb(p, named, e), x, cfg) - apply_mlp(p, x + e * dh, cfg),
                                  0 * dy, 0 * dy, EPSILONS)
    slope = slope_or_none(EPSILONS, errs, floor)
    assert slope is None or abs(slope - 2.0) <= SLOPE_TOL, errs
