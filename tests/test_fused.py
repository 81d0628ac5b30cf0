"""The fused block (``ministeer/fused.py``) against the hooked reference path (``model.block``).

The fused node runs the same array operations as the reference, and sums the gradients that
meet at one array in autograd's order, so its loss and every gradient are *bitwise* the
reference's, in float64 and float32 alike: the checks below use ``np.array_equal``, stricter
than the 1e-12 an independent derivation would need. (A float re-association anywhere, e.g.
adding the q, k, v input gradients in another order, would show up here as a last-bit
difference; the mutants in ``scripts/mutants.py`` that change the math fail by far more.)
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from autograd import grad, make_jvp
from hypothesis import given, strategies as st

from ministeer import adapters as A, fused
from ministeer.model import (INNER_SITES, Config, fused_layers, forward, loss_fn, param_shapes,
                             run_with_cache)
from ministeer.tree import flatten, named_leaves, tree_map, unflatten
from adapter_strategies import randomize
from strategies import configs, random_params, seeds

ROOT = Path(__file__).resolve().parent.parent
BOUNDARY = ("hook_resid_pre", "hook_resid_post")
FUSABLE_KINDS = ("none", "lora", "vector", "lowrank", "loreft", "direft", "nodireft")


@st.composite
def fused_configs(draw):
    """Both presets, float32/float64, grouped-query attention on or off (GPT-2 included)."""
    cfg = draw(configs(dtype=draw(st.sampled_from(["float64", "float32"]))))
    kv = draw(st.sampled_from([k for k in (1, 2, 4) if cfg.n_heads % k == 0]))
    return cfg.replace(n_kv_heads=kv)


@st.composite
def boundary_adapter(draw, cfg):
    """An adapter the fused path keeps: LoRA (weights), or an activation adapter at block boundaries."""
    kind = draw(st.sampled_from(FUSABLE_KINDS))
    if kind == "none":
        return {}
    if kind == "lora":
        fields = dict(r=draw(st.integers(1, 3)), targets=draw(st.lists(st.sampled_from(
            ["q", "k", "v", "o", "up", "down"] + (["gate"] if cfg.mlp == "swiglu" else [])), min_size=1,
            max_size=3, unique=True)), layers=draw(st.none() | st.just([cfg.n_layers - 1])))
    else:
        sites = draw(st.lists(st.sampled_from([f"blocks.{l}.{s}" for l in range(cfg.n_layers) for s in BOUNDARY]),
                              min_size=1, max_size=2, unique=True))
        fields = dict(sites=sites, positions=draw(st.none() | st.just("last") | st.just("f1+l1")))
        if kind != "vector":
            fields["r"] = draw(st.integers(1, 2))
    spec = A.make_spec(cfg, kind, **fields)
    return {kind: randomize(A.init_adapter(cfg, spec, seed=1), seed=2)}


def _batch(cfg, seed, odd_t):
    rng = np.random.default_rng(seed)
    T = 2 * rng.integers(1, cfg.n_ctx // 2) + 1 if odd_t else 2 * rng.integers(1, cfg.n_ctx // 2 + 1)
    tokens = rng.integers(0, cfg.vocab_size, (int(rng.integers(1, 3)), int(T)))
    mask = (rng.random(tokens.shape) < 0.7).astype(float)
    mask[:, 1] = 1.0  # something is supervised after the shift
    return tokens, mask


def _loss_and_grads(params, adapters, tokens, mask, cfg, trained):
    """Loss and gradients w.r.t. the base leaves named in ``trained`` (``"all"``: the whole
    nested tree, as full fine-tuning and ``bench`` differentiate it) and every adapter array."""
    if trained == "all":
        f = lambda base, adapter_part: A.adapted_loss(base, A.with_trainable(adapters, adapter_part), tokens, cfg,
                                                      mask=mask)
        return f(params, A.trainable_of(adapters)), grad(f, argnum=[0, 1])(params, A.trainable_of(adapters))
    flat = flatten(params)

    def f(base_part, adapter_part):
        base = unflatten({**flat, **base_part})
        return A.adapted_loss(base, A.with_trainable(adapters, adapter_part), tokens, cfg, mask=mask)
    args = ({n: flat[n] for n in trained}, A.trainable_of(adapters))
    return f(*args), grad(f, argnum=[0, 1])(*args)


def _assert_bitwise(a, b):
    leaves_a, leaves_b = named_leaves(a), named_leaves(b)
    assert [n for n, _ in leaves_a] == [n for n, _ in leaves_b]
    for (name, x), (_, y) in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype and np.array_equal(x, y), (name, np.max(np.abs(x - y)))


@given(fused_configs(), seeds, st.booleans(), st.data())
def test_fused_loss_and_gradients_are_the_hooked_paths_bitwise(cfg, seed, odd_t, data):
    """Loss, base-weight and adapter gradients: fused == hooked, for LoRA, full FT (any subset of the
    base trained), steering vectors, low-rank and ReFT at the block boundaries.

    Kills: fused_dw_transposed, fused_skip_residual_grad, fused_gqa_sum_axis,
    fused_qkv_order, fused_need_skips_norm, fused_bias_grad_mean, fused_gelu_slope_dropped,
    fused_tree_layers_reversed (and any sign or missing term in the block's backward)."""
    params = random_params(cfg, seed)
    adapters = data.draw(boundary_adapter(cfg))
    names = sorted(param_shapes(cfg))
    trained = data.draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True)
                        | st.just("all"))  # a few leaves, or full fine-tuning (the tree as a whole)
    trained = trained if trained or adapters else "all"  # something is differentiated
    tokens, mask = _batch(cfg, seed, odd_t)
    assert A.fused_layers(cfg, adapters) == list(range(cfg.n_layers))  # the fused path really runs
    loss, grads = _loss_and_grads(params, adapters, tokens, mask, cfg, trained)
    with fused.use_fused(False):
        assert A.fused_layers(cfg, adapters) == []
        loss_ref, grads_ref = _loss_and_grads(params, adapters, tokens, mask, cfg, trained)
    assert np.array_equal(loss, loss_ref)
    _assert_bitwise(grads, grads_ref)


@given(fused_configs(), seeds, st.data())
def test_a_hook_inside_a_block_falls_back_to_the_hooked_path(cfg, seed, data):
    """A hook at any inner site runs (it changes the output), its layer leaves the fused path and
    the others keep it, and logits, cache and gradients are the all-hooked path's, bitwise.

    Kills: fused_ignores_inner_hooks (a layer with an inner hook run fused: the hook is skipped)."""
    params = random_params(cfg, seed)
    layer = data.draw(st.integers(0, cfg.n_layers - 1))
    suffixes = [s for s in INNER_SITES if s != "mlp.hook_pre_linear" or cfg.mlp == "swiglu"]
    inner = f"blocks.{layer}.{data.draw(st.sampled_from(suffixes))}"
    hooks = {inner: lambda x, name: x * 1.5}
    tokens, _ = _batch(cfg, seed, odd_t=True)
    assert fused_layers(cfg, hooks) == [l for l in range(cfg.n_layers) if l != layer]
    f = lambda p: loss_fn(p, tokens, cfg, hooks=hooks)
    logits, cache = run_with_cache(params, tokens, cfg, names=[inner, f"blocks.{layer}.hook_resid_post"], hooks=hooks)
    loss, g = f(params), grad(f)(params)
    with fused.use_fused(False):
        logits_ref, cache_ref = run_with_cache(params, tokens, cfg, names=[inner, f"blocks.{layer}.hook_resid_post"],
                                               hooks=hooks)
        loss_ref, g_ref = f(params), grad(f)(params)
        plain = forward(params, tokens, cfg)
    assert np.array_equal(logits, logits_ref) and not np.array_equal(logits, plain)  # the hook acted
    _assert_bitwise(cache, cache_ref)
    assert np.array_equal(loss, loss_ref)
    _assert_bitwise(g, g_ref)


def test_run_with_cache_on_inner_sites_runs_every_block_hooked():
    """Caching all sites needs every inner activation: no layer is fused, and the cache is complete."""
    cfg = Config.llama(n_layers=2)
    assert fused_layers(cfg, {"blocks.*.attn.hook_z": lambda x, n: x}) == []
    assert fused_layers(cfg, {"blocks.*.hook_resid_post": lambda x, n: x}) == [0, 1]
    _, cache = run_with_cache(random_params(cfg, 0), np.arange(5)[None], cfg)
    assert "blocks.1.mlp.hook_post" in cache


@given(fused_configs(), seeds)
def test_forward_mode_through_the_fused_block_is_the_hooked_one(cfg, seed):
    """make_jvp through a fused block (a boundary site cached) equals the hooked path's JVP.

    Kills: a JVP rule that drops a tangent (e.g. the weights')."""
    params = random_params(cfg, seed)
    tokens, _ = _batch(cfg, seed, odd_t=True)
    site = f"blocks.{cfg.n_layers - 1}.hook_resid_post"
    act = lambda p: run_with_cache(p, tokens, cfg, names=site)[1][site]
    rng = np.random.default_rng(seed)
    tangent = tree_map(lambda a: rng.normal(size=a.shape).astype(a.dtype), params)
    _, jvp = make_jvp(act)(params)(tangent)
    with fused.use_fused(False):
        _, jvp_ref = make_jvp(act)(params)(tangent)
    np.testing.assert_allclose(jvp, jvp_ref, rtol=1e-10, atol=1e-10 if cfg.dtype == "float64" else 1e-4)


def test_the_fused_weights_are_every_block_parameter():
    """fused.weight_paths lists exactly the parameters param_shapes gives a layer, for every variant."""
    for cfg in (Config.llama(), Config.gpt2(), Config.llama(bias=True), Config.gpt2(n_kv_heads=2)):
        layer = [n.removeprefix("model.layers.0.") for n in param_shapes(cfg) if n.startswith("model.layers.0.")]
        assert sorted(".".join(path) for path in fused.weight_paths(cfg)) == sorted(layer)


TRAIN_SCRIPT = """
import hashlib, json, sys
import numpy as np
from ministeer import adapters as A, fused
from ministeer.model import Config, init_params
from ministeer.train import fit
cfg = Config.{preset}(n_layers=2, dtype="{dtype}")
params = init_params(cfg, seed=0, std=0.3)
tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (3, 9))
adapters = {{"lora": A.init_adapter(cfg, A.make_spec(cfg, "lora", r=2), seed=0),
             "steer": A.init_adapter(cfg, A.make_spec(cfg, "lowrank", sites="post_block", r=2), seed=0)}}
with fused.use_fused({on}):
    result = fit(A.objective(params, adapters, cfg), A.trainable_of(adapters), [{{"tokens": tokens}}], steps=4,
                 lr=1e-2, pass_step=True)
digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in
                                 __import__("ministeer").tree.tree_leaves(result.params))).hexdigest()
print(json.dumps({{"losses": [float(x).hex() for x in result.losses], "digest": digest,
                  "fused": A.fused_layers(cfg, adapters)}}))
"""


def _train_in_subprocess(preset, dtype, on):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT.format(preset=preset, dtype=dtype, on=on)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("preset,dtype", [("llama", "float64"), ("gpt2", "float32")])
def test_fused_training_is_bitwise_reproducible_across_processes_and_equals_hooked(preset, dtype):
    """LoRA + post-block steering trained 4 steps in two fresh processes: the same losses and
    parameters to the last bit, and the same as the hooked path's run.

    Kills: fused_qkv_order (a last-bit difference from the hooked run)."""
    a, b = _train_in_subprocess(preset, dtype, True), _train_in_subprocess(preset, dtype, True)
    assert a == b and a["fused"] == [0, 1]
    hooked = _train_in_subprocess(preset, dtype, False)
    assert (hooked["losses"], hooked["digest"]) == (a["losses"], a["digest"])


@pytest.mark.parametrize("kind, fields", [("jola", dict(layers=[1])), ("lofit_scale", dict(layers=[0])),
                                          ("lowrank", dict(sites="blocks.1.pre_mlp", r=2)),
                                          ("vector", dict(sites="blocks.0.hook_attn_out"))])
def test_adapters_inside_a_block_send_only_their_layers_to_the_hooked_path(kind, fields):
    """JoLA and LoFiT (attention heads), pre-MLP and attention-output steering need inner sites:
    their layers fall back, the others stay fused, and training numbers equal the all-hooked run's.

    Kills: fused_ignores_inner_hooks."""
    cfg = Config.llama(n_layers=3, dtype="float64")
    params = random_params(cfg, 3)
    adapter = {kind: randomize(A.init_adapter(cfg, A.make_spec(cfg, kind, **fields), seed=0), seed=1)}
    edited = sorted({int(s.split(".")[1]) for s in adapter[kind].spec["sites"]})
    assert A.fused_layers(cfg, adapter) == [l for l in range(cfg.n_layers) if l not in edited]
    tokens, mask = _batch(cfg, 3, odd_t=True)
    loss, grads = _loss_and_grads(params, adapter, tokens, mask, cfg, trained=[])
    with fused.use_fused(False):
        loss_ref, grads_ref = _loss_and_grads(params, adapter, tokens, mask, cfg, trained=[])
    assert np.array_equal(loss, loss_ref)
    _assert_bitwise(grads, grads_ref)
