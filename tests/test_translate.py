"""Translating a LoRA into per-layer post-block shifts (docs/02-weight-updates-as-shifts.md
eqs. (2.10), (2.11)), and the slope helper every first-order claim relies on (eq. (2.8))."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from strategies import model_and_tokens, seeds
from tolerances import EPSILONS, EPSILONS_WIDE, EXACT, SLOPE_TOL
from ministeer import adapters as A
from ministeer.model import forward
from ministeer.theory.first_order import perturb, rounding_floor
from ministeer.theory.scaling import loglog_slope, settled_slope
from ministeer.theory.translate import lora_update, translation_report, untranslated
from ministeer.tree import get_path, tree_map

pytestmark = pytest.mark.claim(15)


def _trained_lora(cfg, seed, params=None):
    """A LoRA with nonzero B, as after training (B = 0 at init would make the update vanish).

    With ``params``, each module's B is scaled so that ||s B A||_F = ||W||_F: eps is then a
    relative size, and EPSILONS lie in the asymptotic O(eps^2) regime (as for random_update)."""
    lora = A.lora(cfg, r=2, seed=seed)
    rng = np.random.default_rng(seed)
    lora = lora.with_params(tree_map(lambda a: rng.normal(size=a.shape), lora.params))
    if params is None:
        return lora
    scaled = {}
    for module, p in lora.params.items():
        W = get_path(params, module + ".weight")
        scaled[module] = {**p, "lora_B": p["lora_B"] * (np.linalg.norm(W) / np.linalg.norm(A.delta_weight(lora.spec, p)))}
    return lora.with_params(scaled)


@given(model_and_tokens(), seeds)
def test_lora_update_is_the_merged_weights(mt, seed):
    cfg, params, tokens = mt
    lora = _trained_lora(cfg, seed % 2**31)
    np.testing.assert_allclose(forward(perturb(params, lora_update(lora)), tokens, cfg),
                               forward(A.merge_lora(params, lora), tokens, cfg), **EXACT)


@given(model_and_tokens(), seeds)
def test_translated_lora_recovers_the_fine_tuned_model(mt, seed):
    cfg, params, tokens = mt
    # d_model = 2 (one 2-wide head): a full-rank LoRA there puts eps = 1e-2 outside the O(eps^2)
    # regime in a few percent of draws (third-order terms still visible); claim 15's own test
    # covers d_model = 2 with random updates.
    assume(cfg.d_model >= 4)
    delta = lora_update(_trained_lora(cfg, seed % 2**31, params))
    assert untranslated(delta) == []
    rows = translation_report(params, delta, tokens, cfg, EPSILONS_WIDE, targets=tokens)
    errs = [r["error_vs_ft"] for r in rows]
    logits = forward(params, tokens, cfg)
    floor = rounding_floor(np.max(np.abs(logits)) * np.sqrt(logits.size))
    assert abs(settled_slope(EPSILONS_WIDE, errs, floor) - 2.0) <= SLOPE_TOL, errs  # asymptotic range only
    assert rows[-1]["recovery"] > 0.9 and rows[-1]["recovery"] > rows[0]["recovery"]
    assert all(0.0 <= r["accuracy_translated"] <= 1.0 for r in rows)


def test_embedding_updates_are_reported_untranslated():
    assert untranslated({"model.embed_tokens.weight": 0, "model.layers.0.mlp.up_proj.weight": 0}) == \
        ["model.embed_tokens.weight"]


@given(st.floats(0.5, 4.0), st.floats(1e-3, 1e3), seeds)
def test_loglog_slope_recovers_a_power_law(power, scale, seed):
    noise = np.random.default_rng(seed).uniform(0.99, 1.01, len(EPSILONS))
    errs = [scale * e ** power * n for e, n in zip(EPSILONS, noise)]
    assert loglog_slope(EPSILONS, errs) == pytest.approx(power, abs=0.02)


def test_loglog_slope_refuses_a_floor_only_curve():
    with pytest.raises(ValueError, match="rounding floor"):
        loglog_slope(EPSILONS, [1e-17] * len(EPSILONS), floor=1e-15)
