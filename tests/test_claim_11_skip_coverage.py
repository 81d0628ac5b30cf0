"""Claim 11 (paper, restated here): what limits post-MLP steering is what its adapter *reads*,
not where it writes.

docs/04-where-to-steer.md eqs. (4.1), (4.4); ministeer/theory/where.py, oracle.py.

* Writing: a shift added at hook_mlp_out enters the stream exactly as a post-block shift
  does, so the per-layer oracle T_FT(H~) - T(H~) written there reproduces the fine-tuned
  logits, attention fine-tuned or not. Rejects the old reading "post-MLP steering misses
  the attention change" (a rearranged definition of a naive steer, not a limit).
* Reading: when the needed shift varies with the attention output while y does not (here
  W_d = 0 at the layer, so y is one constant), the best function g(y) of *any* form leaves a
  residual equal to the shift's whole spread, bounded away from zero; a post-block adapter
  g(h_out) leaves 0. Rejects: a "post-MLP adapter" that reads the skip stream.
* The MLP share ||dy|| / ||dh_out|| is measured, not asserted (the paper's 0.4-0.7 is an
  empirical property of large models); its *value* is checked against its definition.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import fine_tuned, flat_layernorm
from strategies import model_and_tokens, seeds
from tolerances import EXACT
from ministeer.model import forward, run_with_cache
from ministeer.theory.blocks import block_parts, block_params
from ministeer.theory.oracle import oracle_hooks, oracle_shift
from ministeer.theory.where import best_read_residual, skip_coverage, variation
from ministeer.tree import set_path

pytestmark = pytest.mark.claim(11)


@given(model_and_tokens(), st.data())
def test_oracle_written_at_mlp_out_reproduces_fine_tuned_logits(mt, data):
    cfg, params, tokens = mt
    which = data.draw(st.sampled_from(["o_proj", "v_proj", "q_proj"]))
    ft = fine_tuned(params, f"model.layers.*.self_attn.{which}.*", data.draw(seeds), 0.3)
    ft = fine_tuned(ft, "model.layers.*.mlp.*", data.draw(seeds), 0.3)
    target = forward(ft, tokens, cfg)
    at_mlp = forward(params, tokens, cfg, hooks=oracle_hooks(params, ft, cfg, at="hook_mlp_out"))
    np.testing.assert_allclose(at_mlp, target, **EXACT)
    np.testing.assert_allclose(at_mlp, forward(params, tokens, cfg, hooks=oracle_hooks(params, ft, cfg)), **EXACT)


@given(model_and_tokens(), st.data())
def test_an_adapter_reading_y_cannot_follow_the_skip_stream(mt, data):
    """W_d = 0 at layer l in base and fine-tuned model; attention at l fine-tuned. The needed
    shift T_FT(H) - T(H) = the attention change varies over tokens; y does not."""
    cfg, params, tokens = mt
    assume(not flat_layernorm(cfg))
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    name = f"model.layers.{layer}.mlp.down_proj.weight"
    params = set_path(params, name, 0.0 * block_params(params, layer)["mlp"]["down_proj"]["weight"])
    ft = fine_tuned(params, f"model.layers.{layer}.self_attn.o_proj.weight", data.draw(seeds), 0.5)
    tokens = np.concatenate([tokens, (tokens + 1) % cfg.vocab_size], axis=0)  # >= 2 distinct inputs
    H = run_with_cache(params, tokens, cfg, names=f"blocks.{layer}.hook_resid_pre")[1][f"blocks.{layer}.hook_resid_pre"]
    parts = block_parts(block_params(params, layer), H, cfg)
    need = oracle_shift(params, ft, H, cfg, layer)
    spread = variation(need) ** 2
    assert spread > 1e-12 * (1 + float(np.sum(need ** 2)))
    assert best_read_residual(parts["hook_mlp_out"], need) == pytest.approx(spread, rel=1e-10)  # >= spread: bounded away
    assert best_read_residual(parts["hook_resid_post"], need) <= 1e-20 * float(np.sum(need ** 2))


@given(model_and_tokens(), st.data())
def test_mlp_share_is_its_definition(mt, data):
    """share = ||y_FT(H) - y(H)|| / ||T_FT(H) - T(H)|| on the fine-tuned stream, by hand
    (rejects an inverted ratio or a share taken on the base stream); MLP-only updates give 1."""
    cfg, params, tokens = mt
    ft = fine_tuned(params, "model.layers.*.self_attn.o_proj.*", data.draw(seeds), 0.3)
    ft = fine_tuned(ft, "model.layers.*.mlp.*", data.draw(seeds), 0.3)
    _, cache = run_with_cache(ft, tokens, cfg, names="blocks.*.hook_resid_pre")
    for row in skip_coverage(params, ft, tokens, cfg):
        H = cache[f"blocks.{row['layer']}.hook_resid_pre"]
        base, tuned = (block_parts(block_params(p, row["layer"]), H, cfg) for p in (params, ft))
        dy = np.linalg.norm(tuned["hook_mlp_out"] - base["hook_mlp_out"])
        dh = np.linalg.norm(tuned["hook_resid_post"] - base["hook_resid_post"])
        assert row["share"] == pytest.approx(dy / dh, rel=1e-12)
        assert row["attn_change"] == pytest.approx(np.linalg.norm(tuned["hook_attn_out"] - base["hook_attn_out"]), rel=1e-12)
    for row in skip_coverage(params, fine_tuned(params, "model.layers.*.mlp.*", data.draw(seeds), 0.3), tokens, cfg):
        assert row["attn_change"] == 0.0 and row["share"] == pytest.approx(1.0, rel=1e-12)
