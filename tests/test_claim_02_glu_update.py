"""Claim 2: the GLU weight-update linearization dy_FT of docs/03-glu-and-pre-mlp.md eq. (3.2).

The closed form must equal autograd's forward-mode derivative in weight space (exactly),
equal the shift the whole model shows at blocks.{l}.hook_mlp_out (exactly), and leave an
O(eps^2) remainder: log-log slope 2 +- SLOPE_TOL over EPSILONS.
"""
import numpy as np
import pytest
from autograd import make_jvp
from hypothesis import given, strategies as st

from claim_helpers import as_named, mlp_update, stream
from strategies import configs, model_and_tokens, random_params, seeds
from tolerances import EPSILONS, EXACT, SLOPE_TOL
from ministeer.theory import glu
from ministeer.theory.blocks import apply_mlp, block_params
from ministeer.theory.first_order import first_order_shift, perturb, remainder_curve
from ministeer.theory.scaling import settled_slope

pytestmark = pytest.mark.claim(2)


def _mlp_setup(cfg, seed, n):
    rng = np.random.default_rng(seed)
    p = block_params(random_params(cfg, seed % 2**31), 0)["mlp"]
    return p, mlp_update(p, rng), rng.normal(size=(n, cfg.d_model))


@given(configs(), seeds, st.integers(1, 6))
def test_closed_form_equals_weight_space_jvp(cfg, seed, n):
    p, dp, x = _mlp_setup(cfg, seed, n)
    along = lambda eps: apply_mlp(perturb(p, as_named(dp, ""), eps), x, cfg)
    _, jvp = make_jvp(along)(0.0)(1.0)
    np.testing.assert_allclose(glu.weight_update_shift(p, dp, x, cfg), jvp, **EXACT)


@given(configs(), seeds, st.integers(1, 6), st.sampled_from(["gate_proj", "up_proj", "down_proj", "all"]))
def test_remainder_is_second_order(cfg, seed, n, which):
    """Scaling each of dW_g, dW_u, dW_d (or all) by eps leaves an eps^2 remainder.

    Two single-matrix updates are exact, as eq. (3.1) predicts: y is affine in W_d, and for
    SwiGLU m = s(a_g) * a_u is affine in W_u. Their remainder must sit at the rounding floor."""
    p, dp, x = _mlp_setup(cfg, seed, n)
    if which != "all":
        dp = {which: dp[which]} if which in dp else {"up_proj": dp["up_proj"]}
    errs, floor = remainder_curve(lambda e: apply_mlp(perturb(p, as_named(dp, ""), e), x, cfg),
                                  glu.weight_update_shift(p, dp, x, cfg), apply_mlp(p, x, cfg), EPSILONS)
    affine_in_update = list(dp) == ["down_proj"] or (list(dp) == ["up_proj"] and cfg.mlp == "swiglu")
    if affine_in_update:
        assert max(errs) <= floor
    else:
        assert abs(settled_slope(EPSILONS, errs, floor) - 2.0) <= SLOPE_TOL, errs


@given(model_and_tokens(), st.data())
def test_closed_form_is_the_model_site_shift(mt, data):
    """The formula, fed the model's own pre-MLP activations, is the first-order shift at hook_mlp_out."""
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    rng = np.random.default_rng(data.draw(seeds))
    p = block_params(params, layer)["mlp"]
    dp = mlp_update(p, rng)
    _, shift = first_order_shift(params, as_named(dp, f"model.layers.{layer}.mlp."), tokens, cfg,
                                 f"blocks.{layer}.hook_mlp_out")
    x = stream(params, tokens, cfg, f"blocks.{layer}.ln2.hook_normalized")
    np.testing.assert_allclose(glu.weight_update_shift(p, dp, x, cfg), shift, **EXACT)
