"""Claim 11: once attention weights change, the MLP output change is only part of the block-output
change; steering y all the way to y_FT misses h_out^FT by exactly the attention change.

docs/04-where-to-steer.md eq. (4.4); ministeer/theory/where.py ``skip_coverage``.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from claim_helpers import fine_tuned
from strategies import model_and_tokens, seeds
from ministeer.theory.where import skip_coverage

pytestmark = pytest.mark.claim(11)


@given(model_and_tokens(), st.data())
def test_post_mlp_misses_exactly_the_attention_change(mt, data):
    cfg, params, tokens = mt
    which = data.draw(st.sampled_from(["o_proj", "v_proj"]))
    ft = fine_tuned(params, f"model.layers.*.self_attn.{which}.*", data.draw(seeds), 0.3)
    ft = fine_tuned(ft, "model.layers.*.mlp.*", data.draw(seeds), 0.3)
    for row in skip_coverage(params, ft, tokens, cfg):
        assert row["post_mlp_gap"] == pytest.approx(row["attn_change"], rel=1e-10, abs=1e-13)
        assert row["post_mlp_gap"] > 1e-4 * row["block_change"]  # bounded away from zero
        assert 0.0 <= row["share"]


@given(model_and_tokens(), st.data())
def test_mlp_only_update_is_fully_covered(mt, data):
    """Contrast: with attention untouched, share = 1 and post-MLP steering reaches h_out^FT."""
    cfg, params, tokens = mt
    ft = fine_tuned(params, "model.layers.*.mlp.*", data.draw(seeds), 0.3)
    for row in skip_coverage(params, ft, tokens, cfg):
        assert row["attn_change"] == 0.0 and row["post_mlp_gap"] == 0.0
        assert row["share"] == pytest.approx(1.0, rel=1e-12)
