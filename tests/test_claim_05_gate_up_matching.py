"""Claim 5 (paper, corrected): when a pre-MLP steer matches a gate/up update.

docs/03-glu-and-pre-mlp.md eqs. (3.6)-(3.8).

* dW_g = W_g M, dW_u = W_u M, dW_d = 0 is reproduced to all orders by dh = M h, in the
  MLP alone and through the whole model (3.6).
* The stacked system [W_g; W_u] dh = [dW_g h; dW_u h] (3.7) is only *sufficient*. Its
  residual is zero iff the read matrix has rows <= d (a fact about (3.7), tested as such).
* The *necessary* condition is A(h) dh = dy_FT (3.8). With M_g != M_u the stacked residual
  is bounded away from zero, yet (3.8) is solved exactly per token whenever A(h) is
  invertible, and that dh reproduces the update to O(eps^2). Rejects the old reading
  "different M_g, M_u cannot be matched" (a claim of failure from the stacked residual).
* (3.8) can fail: when W_g and W_u read through one direction w (rank-1 reads), col(A(h))
  is a line and a generic update's dy_FT leaves it; the residual is the part outside.
  Rejects a matching test that cannot fail.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import as_named, stream
from strategies import model_and_tokens, seeds
from tolerances import EPSILONS, EXACT, SLOPE_TOL
from ministeer.model import forward
from ministeer.theory import glu
from ministeer.theory.blocks import apply_mlp, block_params
from ministeer.theory.first_order import perturb, remainder_curve, slope_or_none

pytestmark = pytest.mark.claim(5)


@given(model_and_tokens(), st.data())
def test_shared_M_is_reproduced_exactly(mt, data):
    """Rejects a shared-input update that is not W M (e.g. M W), or a steer M^T h."""
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    M = 0.5 * np.random.default_rng(data.draw(seeds)).normal(size=(cfg.d_model, cfg.d_model))
    p = block_params(params, layer)["mlp"]
    dp = glu.shared_input_update(p, M, cfg)
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized")
    np.testing.assert_allclose(apply_mlp(perturb(p, as_named(dp, "")), x, cfg),
                               apply_mlp(p, x + x @ M.T, cfg), **EXACT)
    steer = {f"blocks.{layer}.ln2.hook_normalized": lambda h, _: h + h @ M.T}
    ft = perturb(params, as_named(dp, f"model.layers.{layer}.mlp."))
    np.testing.assert_allclose(forward(params, tokens, cfg, hooks=steer), forward(ft, tokens, cfg), **EXACT)
    _, residual = glu.gate_up_matching_residual(p, dp, x.reshape(-1, cfg.d_model), cfg)
    assert np.all(residual <= 1e-8 * (1 + np.linalg.norm(x)))


def _setup(mt, data):
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized").reshape(-1, cfg.d_model)
    return cfg, block_params(params, layer)["mlp"], x, np.random.default_rng(data.draw(seeds))


@given(model_and_tokens(), st.data())
def test_stacked_system_solvable_iff_read_matrix_has_full_row_rank(mt, data):
    """The sufficient system (3.7) alone: zero residual iff [W_g; W_u] (GELU: W_u) has rows <= d."""
    cfg, p, x, rng = _setup(mt, data)
    names = ("gate_proj", "up_proj") if cfg.mlp == "swiglu" else ("up_proj",)
    dp = {n: {"weight": rng.normal(size=p[n]["weight"].shape)} for n in names}
    _, residual = glu.gate_up_matching_residual(p, dp, x, cfg)
    S = glu.read_matrix(p, cfg)
    scale = np.linalg.norm(x, axis=1) * np.sqrt(S.size)
    if S.shape[0] <= cfg.d_model:  # full row rank (random S): every target is reachable
        assert np.all(residual <= 1e-8 * scale)
    else:  # more read directions than input dimensions: a generic target is out of reach
        assert np.all(residual >= 1e-6 * scale)


@given(model_and_tokens(presets=("llama",)), st.data())
def test_different_M_fail_the_stacked_system_but_meet_the_necessary_condition(mt, data):
    """SwiGLU, d_mlp >= d, dW_g = W_g M_g, dW_u = W_u M_u, M_g != M_u: the stacked residual is
    >= s_min ||(M_g - M_u) h|| / sqrt 2 > 0, but A(h) dh = dy_FT is solved to rounding and the
    steer eps * dh(h) matches the update to O(eps^2)."""
    cfg, p, x, rng = _setup(mt, data)
    assume(cfg.d_mlp >= cfg.d_model)  # W_g, W_u of full column rank; W_d of full row rank
    A = glu.pre_mlp_jacobian(p, x, cfg)
    assume(max(np.linalg.cond(a) for a in A) < 1e4)
    M_g, M_u = rng.normal(size=(2, cfg.d_model, cfg.d_model))
    dp = {"gate_proj": {"weight": p["gate_proj"]["weight"] @ M_g}, "up_proj": {"weight": p["up_proj"]["weight"] @ M_u}}
    _, stacked = glu.gate_up_matching_residual(p, dp, x, cfg)
    gap = np.linalg.norm(x @ (M_g - M_u).T, axis=1)
    s_min = min(np.linalg.svd(p[n]["weight"], compute_uv=False)[-1] for n in ("gate_proj", "up_proj"))
    assert np.all(stacked >= s_min * gap / np.sqrt(2) * (1 - 1e-9)) and np.all(stacked > 0)
    dh, necessary = glu.first_order_matching(p, dp, x, cfg)
    dy = glu.weight_update_shift(p, dp, x, cfg)
    assert np.all(necessary <= 1e-9 * (1 + np.linalg.norm(dy, axis=1)))
    s = 1.0 / max(1.0, float(np.max(np.abs(dh)) / np.max(np.abs(x))))  # eps as a relative size
    named = {f"{k}.weight": s * v["weight"] for k, v in dp.items()}
    errs, floor = remainder_curve(lambda e: apply_mlp(perturb(p, named, e), x, cfg) - apply_mlp(p, x + e * s * dh, cfg),
                                  0 * dy, 0 * dy, EPSILONS)
    slope = slope_or_none(EPSILONS, errs, floor)
    assert slope is None or abs(slope - 2.0) <= SLOPE_TOL, errs


@given(model_and_tokens(), st.data())
def test_necessary_condition_fails_when_the_mlp_reads_one_direction(mt, data):
    """W_g = a w^T, W_u = b w^T: col(A(h)) = span(W_d (c(h))) is a line. A generic up/gate
    update moves y off that line: the residual of (3.8) equals the part of dy_FT outside
    col(A(h)), > 0 -- so no pre-MLP steer matches it even to first order."""
    cfg, p, x, rng = _setup(mt, data)
    assume(cfg.d_model >= 2 and cfg.d_mlp >= 2)
    w = rng.normal(size=cfg.d_model)
    p = {**p, "up_proj": {**p["up_proj"], "weight": np.outer(rng.normal(size=cfg.d_mlp), w)}}
    if cfg.mlp == "swiglu":
        p["gate_proj"] = {**p["gate_proj"], "weight": np.outer(rng.normal(size=cfg.d_mlp), w)}
    names = ("gate_proj", "up_proj") if cfg.mlp == "swiglu" else ("up_proj",)
    dp = {n: {"weight": rng.normal(size=p[n]["weight"].shape)} for n in names}
    A = glu.pre_mlp_jacobian(p, x, cfg)
    dy = glu.weight_update_shift(p, dp, x, cfg)
    line = [np.linalg.svd(a)[0][:, :1] for a in A]  # col(A(h)), one direction per token
    outside = np.array([np.linalg.norm(t - u @ (u.T @ t)) for u, t in zip(line, dy)])
    assume(np.all(outside > 1e-6 * (1 + np.linalg.norm(dy, axis=1))))  # generic: W_d has rank >= 2
    _, necessary = glu.first_order_matching(p, dp, x, cfg)
    np.testing.assert_allclose(necessary, outside, rtol=1e-6)
