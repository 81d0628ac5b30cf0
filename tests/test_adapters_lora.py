"""LoRA with PEFT semantics: merge == unmerged forward, unmerge(merge(W)) == W, targets, scaling."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from adapter_strategies import adapter_specs, randomize
from strategies import configs, model_and_tokens, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.model import Config, forward, init_params
from ministeer.tree import get_path, named_leaves


def random_lora(cfg, data):
    _, fields = data.draw(adapter_specs(cfg, kinds=("lora",)))
    return randomize(A.lora(cfg, seed=data.draw(seeds), **fields), data.draw(seeds))


@given(model_and_tokens(), st.data())
def test_merged_equals_unmerged(mt, data):
    cfg, params, tokens = mt
    lora = random_lora(cfg, data)
    unmerged = A.adapted_forward(params, lora, tokens, cfg)
    merged = forward(A.merge_lora(params, lora), tokens, cfg)
    np.testing.assert_allclose(merged, unmerged, **EXACT)


@given(configs(), seeds, st.data())
def test_unmerge_of_merge_restores_the_weights(cfg, seed, data):
    """(W + X) - X == W up to one rounding of W + X: |error| <= ulp(|W| + |X|) ~ 1e-16 for O(1)
    entries, so EXACT (1e-12) holds with a wide margin; untouched leaves are bitwise identical."""
    params = init_params(cfg, seed, std=0.5)
    lora = random_lora(cfg, data)
    restored = A.unmerge_lora(A.merge_lora(params, lora), lora)
    targets = {m + ".weight" for m in lora.spec["modules"]}
    for name, W in named_leaves(params):
        if name in targets:
            np.testing.assert_allclose(get_path(restored, name), W, **EXACT)
            assert not np.array_equal(get_path(A.merge_lora(params, lora), name), W)
        else:
            assert get_path(restored, name) is W  # never copied, never touched


@given(configs(), seeds, st.integers(1, 4), st.booleans())
def test_delta_weight_is_scaled_B_A_with_peft_shapes(cfg, seed, r, rslora):
    lora = randomize(A.lora(cfg, r=r, alpha=4.0, targets="down", rslora=rslora, seed=seed), seed)
    path = "model.layers.0.mlp.down_proj"
    p = lora.params[path]
    assert p["lora_A"].shape == (r, cfg.d_mlp) and p["lora_B"].shape == (cfg.d_model, r)
    scale = 4.0 / (np.sqrt(r) if rslora else r)
    np.testing.assert_allclose(A.delta_weight(lora.spec, p), scale * p["lora_B"] @ p["lora_A"], **EXACT)


def test_init_is_peft_kaiming_A_and_zero_B():
    cfg = Config.llama(d_model=32, d_mlp=64)
    p = A.lora(cfg, r=8, targets="up", seed=3).params["model.layers.1.mlp.up_proj"]
    assert np.all(p["lora_B"] == 0)
    bound = 1 / np.sqrt(cfg.d_model)  # kaiming-uniform(a=sqrt 5) = U(-1/sqrt(in), 1/sqrt(in))
    assert np.abs(p["lora_A"]).max() <= bound and np.abs(p["lora_A"]).max() > 0.8 * bound


def test_targets_by_short_name_path_glob_and_layer_subset():
    cfg = Config.llama(n_layers=3)
    assert A.resolve_targets(cfg, ["q", "down"], layers=[1]) == [
        "model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj"]
    assert A.resolve_targets(cfg, "model.layers.*.self_attn.q_proj") == A.resolve_targets(cfg, "q_proj")
    assert len(A.resolve_targets(cfg, "all-linear")) == 7 * 3
    assert A.resolve_targets(cfg, "lm_head") == ["lm_head"]


@pytest.mark.parametrize("target", ["qkv", "model.layers.*.mlp.w1", "gate"])
def test_unknown_target_raises_listing_the_valid_names(target):
    cfg = Config.gpt2()  # GELU MLP: no gate_proj, so "gate" is unknown here
    with pytest.raises(KeyError) as err:
        A.lora(cfg, targets=["q", target])
    message = str(err.value)
    assert repr(target) in message and "'down'" in message and "self_attn.q_proj" in message
