"""Claim 10: per-layer post-block oracle shifts on the steered stream reproduce the fine-tuned
model exactly; lockstep replacement makes every later layer fine-tuned.

docs/04-where-to-steer.md eqs. (4.5), (4.6); ministeer/theory/oracle.py.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import flat_layernorm, fine_tuned
from strategies import model_and_tokens, seeds
from tolerances import EXACT
from ministeer.model import forward, run_with_cache
from ministeer.theory import oracle
from ministeer.theory.oracle import oracle_shift

pytestmark = pytest.mark.claim(10)


def _pair(mt, data):
    cfg, params, tokens = mt
    return cfg, params, fine_tuned(params, "model.layers.*", data.draw(seeds), 0.3), tokens


@given(model_and_tokens(), st.data())
def test_oracle_composition_is_exact(mt, data):
    cfg, params, ft, tokens = _pair(mt, data)
    target = forward(ft, tokens, cfg)
    steered = forward(params, tokens, cfg, hooks=oracle.oracle_hooks(params, ft, cfg))
    np.testing.assert_allclose(steered, target, **EXACT)
    assume(not flat_layernorm(cfg))  # there the update may not reach the logits at all
    assert np.max(np.abs(forward(params, tokens, cfg) - target)) > 1e-6  # the update did something


@given(model_and_tokens(), st.data())
def test_lockstep_replacement_makes_later_layers_fine_tuned(mt, data):
    cfg, params, ft, tokens = _pair(mt, data)
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    names = "blocks.*.hook_resid_post"
    _, ft_cache = run_with_cache(ft, tokens, cfg, names=names)
    shifts = oracle.lockstep_shifts(params, ft, tokens, cfg)
    hooks = oracle.lockstep_hooks(shifts, replace_at=layer, stream_ft=ft_cache[f"blocks.{layer}.hook_resid_post"])
    logits, cache = run_with_cache(params, tokens, cfg, names=names, hooks=hooks)
    for later in range(layer, cfg.n_layers):
        np.testing.assert_allclose(cache[f"blocks.{later}.hook_resid_post"], ft_cache[f"blocks.{later}.hook_resid_post"], **EXACT)
    np.testing.assert_allclose(logits, forward(ft, tokens, cfg), **EXACT)


@given(model_and_tokens(), st.data())
def test_shifts_taken_on_the_base_stream_do_not_compose(mt, data):
    """Negative: the same oracle, but each shift computed on the *base* stream, misses as soon as
    an earlier layer changed the stream (two or more layers)."""
    cfg, params, ft, tokens = _pair(mt, data)
    assume(cfg.n_layers >= 2)
    _, base_cache = run_with_cache(params, tokens, cfg, names="blocks.*.hook_resid_pre")
    fixed = {l: oracle_shift(params, ft, base_cache[f"blocks.{l}.hook_resid_pre"], cfg, l) for l in range(cfg.n_layers)}
    _, ft_cache = run_with_cache(ft, tokens, cfg, names="blocks.*.hook_resid_post")
    _, wrong = run_with_cache(params, tokens, cfg, names="blocks.*.hook_resid_post", hooks=oracle.lockstep_hooks(fixed))
    last = f"blocks.{cfg.n_layers - 1}.hook_resid_post"
    # layer 0 is right (its input is the shared embedding); the last layer is not
    np.testing.assert_allclose(wrong["blocks.0.hook_resid_post"], ft_cache["blocks.0.hook_resid_post"], **EXACT)
    assert np.max(np.abs(wrong[last] - ft_cache[last])) > 1e-8
