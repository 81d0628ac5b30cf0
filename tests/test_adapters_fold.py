"""Folding activation edits into weights: exact where the algebra allows, a clear error elsewhere."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from adapter_strategies import randomize
from strategies import model_and_tokens, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.model import forward
from ministeer.tree import get_path, set_path


@given(model_and_tokens(presets=("gpt2",)), seeds)
def test_all_position_vector_at_attn_out_is_the_o_proj_bias_update(mt, seed):
    """gpt2: attn_out + v at every token == o_proj.bias + v, exactly (docs/02: a weight update with Delta W = 0)."""
    cfg, params, tokens = mt
    layer = seed % cfg.n_layers
    site = f"blocks.{layer}.hook_attn_out"
    vec = randomize(A.steering_vector(cfg, sites=site), seed)
    v = vec.params[site]["vector"]
    path = f"model.layers.{layer}.self_attn.o_proj.bias"
    by_hand = set_path(params, path, get_path(params, path) + v)
    steered = A.adapted_forward(params, vec, tokens, cfg)
    np.testing.assert_allclose(forward(by_hand, tokens, cfg), steered, **EXACT)
    np.testing.assert_allclose(forward(A.fold(params, vec, cfg), tokens, cfg), steered, **EXACT)


@given(model_and_tokens(presets=("gpt2",)), seeds)
def test_last_position_vector_cannot_be_folded(mt, seed):
    cfg, params, tokens = mt
    assume(cfg.d_model >= 4)  # a 2-dim LayerNorm output is just a sign pattern: shifts may vanish
    tokens = np.concatenate([tokens, tokens[:, :1]], axis=1)[:, : cfg.n_ctx]  # at least 2 positions
    site = "blocks.0.hook_attn_out"
    last = randomize(A.steering_vector(cfg, sites=site, positions="last"), seed)
    with pytest.raises(A.FoldError, match="only some positions"):
        A.fold(params, last, cfg)
    # why: the edit leaves every earlier position's logits exactly as in the base model (causal
    # attention), while a bias acts on every position: the bias update o_proj.bias + v moves them.
    steered, base = A.adapted_forward(params, last, tokens, cfg), forward(params, tokens, cfg)
    assert np.array_equal(steered[:, :-1], base[:, :-1]) and not np.allclose(steered[:, -1], base[:, -1])
    path = "model.layers.0.self_attn.o_proj.bias"
    biased = forward(set_path(params, path, get_path(params, path) + last.params[site]["vector"]), tokens, cfg)
    assert not np.allclose(biased[:, :-1], base[:, :-1])


FOLDABLE = ["hook_attn_out", "hook_mlp_out", "ln1.hook_normalized", "ln2.hook_normalized", "mlp.hook_post",
            "mlp.hook_pre", "hook_resid_mid", "hook_resid_post"]


@given(model_and_tokens(presets=("gpt2",)), st.sampled_from(FOLDABLE), st.sampled_from(["vector", "linear", "loreft"]),
       seeds)
def test_affine_all_position_adapters_fold_exactly(mt, suffix, kind, seed):
    """Vector, linear low-rank and LoReFT (positions=None) fold into the adjacent linear: producer
    W <- (I + PQ) W, consumer W <- W (I + PQ), residual constants into the last-written bias."""
    cfg, params, tokens = mt
    site = f"blocks.{cfg.n_layers - 1}.{suffix}"
    assume(kind == "vector" or not suffix.startswith("hook_resid"))  # see test_unfoldable_adapters_say_why
    adapter = {"vector": lambda: A.steering_vector(cfg, sites=site),
               "linear": lambda: A.lowrank(cfg, sites=site, r=2, activation="linear", seed=seed),
               "loreft": lambda: A.loreft(cfg, sites=site, r=2, positions=None, seed=seed)}[kind]()
    adapter = randomize(adapter, seed)
    np.testing.assert_allclose(forward(A.fold(params, adapter, cfg), tokens, cfg),
                               A.adapted_forward(params, adapter, tokens, cfg), **EXACT)


@given(model_and_tokens(), seeds)
def test_lora_and_hooks_fold_together(mt, seed):
    cfg, params, tokens = mt
    adapters = {"lora": randomize(A.lora(cfg, r=2, targets=["o", "down"]), seed),
                "a": randomize(A.lowrank(cfg, sites="post_mlp", r=2, activation="linear"), seed + 1),
                "b": randomize(A.lowrank(cfg, sites="post_mlp", r=1, activation="linear"), seed + 2),
                "c": randomize(A.lowrank(cfg, sites="pre_mlp", r=1, activation="linear"), seed + 3),
                "d": randomize(A.lowrank(cfg, sites="pre_mlp", r=2, activation="linear"), seed + 4)}
    np.testing.assert_allclose(forward(A.fold(params, adapters, cfg), tokens, cfg),
                               A.adapted_forward(params, adapters, tokens, cfg), **EXACT)


def test_unfoldable_adapters_say_why():
    from ministeer.model import Config, init_params
    llama, gpt2 = Config.llama(), Config.gpt2()
    cases = [(gpt2, A.lowrank(gpt2, sites="post_mlp", activation="silu"), "nonlinear"),
             (gpt2, A.lowrank(gpt2, sites="post_block", activation="linear"), "skip connection"),
             (llama, A.steering_vector(llama, sites="post_block"), "bias"),
             (llama, A.steering_vector(llama, sites="hook_attn_out"), "bias"),
             (gpt2, A.steering_vector(gpt2, sites="hook_embed"), "no linear layer"),
             (gpt2, A.loreft(gpt2), "only some positions")]
    for cfg, adapter, reason in cases:
        with pytest.raises(A.FoldError, match=reason):
            A.fold(init_params(cfg), adapter, cfg)
