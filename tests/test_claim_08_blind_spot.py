"""Claim 8 (paper): with W_d = 0 every post-MLP steer g(y) is one constant; a post-block steer
still varies.

docs/04-where-to-steer.md eq. (4.1). More generally a post-MLP steer reads y - b_d only
inside col(W_d). The figure that decides it is ``where.best_read_residual``: the best
function of what an adapter reads, over *all* functions. Rejects, with the premise removed
(``test_without_the_premise_post_mlp_reads_tell_tokens_apart``): a "blind spot" that holds
for every W_d -- there the reads are distinct and the best function fits any target.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import flat_layernorm, orthonormal, stream
from strategies import model_and_tokens, seeds
from ministeer.model import run_with_cache
from ministeer.theory.where import best_read_residual, outside_column_space, variation
from ministeer.tree import set_path

pytestmark = pytest.mark.claim(8)


def _random_steer(rng, d, r=3):
    """A small nonlinear adapter g(h) = U silu(D h), the paper's post-block parameterization."""
    D, U = rng.normal(size=(r, d)), rng.normal(size=(d, r))
    return lambda h: (h @ D.T) / (1 + np.exp(-(h @ D.T))) @ U.T


@given(model_and_tokens(), st.data())
def test_zero_down_projection_blinds_post_mlp(mt, data):
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    rng = np.random.default_rng(data.draw(seeds))
    name = f"model.layers.{layer}.mlp.down_proj.weight"
    params = set_path(params, name, 0.0 * params["model"]["layers"][layer]["mlp"]["down_proj"]["weight"])
    tokens = np.concatenate([tokens, (tokens + 1) % cfg.vocab_size], axis=0)  # >= 2 distinct inputs
    _, cache = run_with_cache(params, tokens, cfg, names=[f"blocks.{layer}.hook_mlp_out", f"blocks.{layer}.hook_resid_post"])
    y, h_out = cache[f"blocks.{layer}.hook_mlp_out"], cache[f"blocks.{layer}.hook_resid_post"]
    g = _random_steer(rng, cfg.d_model)
    assert np.all(y == y.reshape(-1, cfg.d_model)[0])  # bitwise: y is b_d (or 0) at every token
    # (the mean of equal numbers is off by an ulp or so, hence 1e-12 rather than 0)
    assert variation(y) <= 1e-12 * (1 + np.max(np.abs(y))) and variation(g(y)) <= 1e-12 * (1 + np.max(np.abs(g(y))))
    assert variation(h_out) > 1e-6 and variation(g(h_out)) > 1e-9


@given(model_and_tokens(), st.data())
def test_post_mlp_reads_only_col_W_d(mt, data):
    """Rank-deficient W_d (col = span(Q)): y - b_d has no component outside span(Q) at any token."""
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    rng = np.random.default_rng(data.draw(seeds))
    Q = orthonormal(rng, cfg.d_model, int(rng.integers(1, cfg.d_model)))
    p = params["model"]["layers"][layer]["mlp"]["down_proj"]
    params = set_path(params, f"model.layers.{layer}.mlp.down_proj.weight", Q @ (Q.T @ p["weight"]))
    y = stream(params, tokens, cfg, f"blocks.{layer}.hook_mlp_out")
    y = y - p.get("bias", 0.0)
    assert np.max(np.abs(outside_column_space(Q, y))) <= 1e-12 * (1 + np.max(np.abs(y)))


def _blind_and_target(mt, data, zero):
    """Layer-l reads (y, h_out) over >= 2 distinct inputs, with W_d zeroed or not, and a target
    shift that depends on the input (a random adapter of the block output)."""
    cfg, params, tokens = mt
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    rng = np.random.default_rng(data.draw(seeds))
    if zero:
        name = f"model.layers.{layer}.mlp.down_proj.weight"
        params = set_path(params, name, 0.0 * params["model"]["layers"][layer]["mlp"]["down_proj"]["weight"])
    tokens = np.concatenate([tokens, (tokens + 1) % cfg.vocab_size], axis=0)
    names = [f"blocks.{layer}.hook_mlp_out", f"blocks.{layer}.hook_resid_post"]
    _, cache = run_with_cache(params, tokens, cfg, names=names)
    y, h_out = cache[names[0]], cache[names[1]]
    return y, h_out, _random_steer(rng, cfg.d_model)(h_out)


@given(model_and_tokens(), st.data())
def test_blind_post_mlp_misses_every_varying_target(mt, data):
    """W_d = 0: the best g(y) of any form leaves the target's whole spread; g(h_out) leaves 0."""
    y, h_out, target = _blind_and_target(mt, data, zero=True)
    assert variation(target) > 1e-9
    assert best_read_residual(y, target) == pytest.approx(variation(target) ** 2, rel=1e-12)
    assert best_read_residual(h_out, target) <= 1e-20 * float(np.sum(target ** 2))


@given(model_and_tokens(), st.data())
def test_without_the_premise_post_mlp_reads_tell_tokens_apart(mt, data):
    """Premise removed (a generic W_d): tokens with distinct block outputs have distinct MLP
    outputs, so the best g(y) fits the same target exactly -- the blind spot is W_d = 0's."""
    assume(not flat_layernorm(mt[0]))  # LayerNorm over 2 features: the MLP input is one constant
    y, h_out, target = _blind_and_target(mt, data, zero=False)
    assert best_read_residual(h_out, target) <= 1e-20 * float(np.sum(target ** 2))  # g(h_out) fits
    assert best_read_residual(y, target) <= 1e-20 * (1 + float(np.sum(target ** 2)))
