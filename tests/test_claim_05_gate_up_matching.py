"""Claim 5: when a pre-MLP steer matches a gate/up update -- exactly, or not at all.

docs/03-glu-and-pre-mlp.md eqs. (3.6), (3.7). dW_g = W_g M, dW_u = W_u M, dW_d = 0 is
reproduced to all orders by the input-dependent steer dh = M h, in the MLP alone and
through the whole model. With M_g != M_u, one dh must solve the stacked system
[W_g; W_u] dh = [dW_g h; dW_u h]: the residual is zero when that matrix has full row
rank (rows <= d) and positive when rows > d.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import as_named, stream
from strategies import model_and_tokens, seeds
from tolerances import EXACT
from ministeer.model import forward
from ministeer.theory import glu
from ministeer.theory.blocks import apply_mlp, block_params
from ministeer.theory.first_order import perturb

pytestmark = pytest.mark.claim(5)


@given(model_and_tokens(), st.data())
def test_shared_M_is_reproduced_exactly(mt, data):
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
def test_generic_update_matchable_iff_read_matrix_has_full_row_rank(mt, data):
    """A random gate/up update: zero residual iff [W_g; W_u] (GELU: W_u) has rows <= d."""
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
def test_gate_and_up_with_different_M_cannot_share_one_steer(mt, data):
    """SwiGLU with W_g, W_u of full column rank (d_mlp >= d): dW_g = W_g M_g, dW_u = W_u M_u,
    M_g != M_u. Each half alone needs dh = M_g h resp. M_u h; no single dh serves both."""
    cfg, p, x, rng = _setup(mt, data)
    assume(cfg.d_mlp >= cfg.d_model)  # the claim's hypothesis: full column rank
    M_g, M_u = rng.normal(size=(2, cfg.d_model, cfg.d_model))
    dp = {"gate_proj": {"weight": p["gate_proj"]["weight"] @ M_g}, "up_proj": {"weight": p["up_proj"]["weight"] @ M_u}}
    _, residual = glu.gate_up_matching_residual(p, dp, x, cfg)
    # residual^2 = min ||W_g (dh - M_g h)||^2 + ||W_u (dh - M_u h)||^2
    #           >= s_min^2 min (||dh - a||^2 + ||dh - b||^2) = s_min^2 ||a - b||^2 / 2
    gap = np.linalg.norm(x @ (M_g - M_u).T, axis=1)
    s_min = min(np.linalg.svd(p[n]["weight"], compute_uv=False)[-1] for n in ("gate_proj", "up_proj"))
    assert np.all(residual >= s_min * gap / np.sqrt(2) * (1 - 1e-9))
    assert np.all(residual > 0)
