"""Baselines as their authors run them: ReFT at every position, pyreft's separate first- and
last-position interventions, LoFiT's published K, and each method's official training setup."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from adapter_strategies import randomize
from strategies import configs, model_and_tokens, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.adapters.core import Adapter
from ministeer.adapters.lofit import default_k
from ministeer.model import Config, init_params, run_with_cache
from ministeer.tree import tree_size

REFT_KINDS = ("loreft", "direft", "nodireft")
CFG = Config.llama(vocab_size=16, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=16, n_ctx=12)


def _prompt_mask(rng, batch, T):
    """A completion mask [B, T] with prompts of random lengths 1..T-1."""
    lengths = rng.integers(1, T, batch)
    return (np.arange(T)[None, :] >= lengths[:, None]).astype(float), lengths

# ---------------------------------------------------------------- pyreft's share_weights


@given(configs(), st.sampled_from(REFT_KINDS), st.integers(1, 4), seeds)
def test_unshared_reft_holds_two_independent_interventions_and_counts_them(cfg, kind, r, seed):
    """share_weights=False: twice the arrays of the shared adapter, drawn independently, and
    count_params says so. Kills reft_unshared_not_doubled and reft_unshared_same_draw."""
    r = min(r, cfg.d_model)
    shared = A.init_adapter(cfg, A.make_spec(cfg, kind, r=r), seed)
    unshared = A.init_adapter(cfg, A.make_spec(cfg, kind, r=r, share_weights=False), seed)
    n = A.count_params(cfg, {"kind": kind, "r": r}).trainable
    assert tree_size(shared.params) == n
    assert A.count_params(cfg, {"kind": kind, "r": r, "share_weights": False}).trainable == 2 * n
    assert tree_size(unshared.params) == 2 * n
    first = "R" if kind == "nodireft" else "R_raw"
    for site, p in unshared.params.items():
        assert sorted(p) == sorted([*shared.params[site], *(leaf + "_last" for leaf in shared.params[site])])
        other = "W" if kind == "nodireft" else first  # NoDiReFT's R starts at 0 in both
        assert not np.array_equal(p[other], p[other + "_last"])


@given(st.sampled_from(REFT_KINDS), st.integers(1, 3), st.integers(1, 3), seeds)
def test_unshared_reft_edits_the_first_positions_with_one_and_the_last_with_the_other(kind, f, l, seed):
    """pyreft's get_intervention_locations with share_weights=False: the first intervention edits
    the first f prompt positions, the second the last l, nothing else. Equal to two shared
    adapters on explicit bool masks; unequal to the shared adapter (first arrays on both sides).
    Kills reft_parts_same_arrays and reft_parts_swapped."""
    rng = np.random.default_rng(seed)
    params = init_params(CFG, seed % 1000, std=0.3)
    tokens = rng.integers(0, 16, (3, 10))
    mask, P = _prompt_mask(rng, 3, 10)
    unshared = randomize(A.init_adapter(CFG, A.make_spec(CFG, kind, r=2, positions=f"f{f}+l{l}",
                                                         share_weights=False), seed), seed)
    t = np.arange(9)[None, :]  # the loss feeds tokens[:, :-1]
    first = (t < np.minimum(f, P)[:, None]).tolist()
    last = ((t >= (P - l)[:, None]) & (t < P[:, None])).tolist()
    mine = {s: {k: v for k, v in q.items() if not k.endswith("_last")} for s, q in unshared.params.items()}
    theirs = {s: {k[:-5]: v for k, v in q.items() if k.endswith("_last")} for s, q in unshared.params.items()}
    spec = {**unshared.spec, "share_weights": True}
    by_part = {"first": Adapter({**spec, "positions": first}, mine),
               "last": Adapter({**spec, "positions": last}, theirs)}
    loss = A.adapted_loss(params, unshared, tokens, CFG, mask=mask)
    np.testing.assert_allclose(loss, A.adapted_loss(params, by_part, tokens, CFG, mask=mask), **EXACT)
    shared = Adapter(spec, mine)
    assert not np.isclose(loss, A.adapted_loss(params, shared, tokens, CFG, mask=mask), rtol=1e-9, atol=0)


def test_the_shared_default_is_pyrefts_share_weights_flag_and_old_specs_still_load():
    """The registry's loreft is one intervention on both sides (pyreft's --share_weights), as the
    committed results were trained; a spec saved without the field reads as shared."""
    assert A.make_spec(CFG, "loreft")["share_weights"] is True
    assert A.METHODS["loreft"].adapters["reft"].get("share_weights", True) is True
    a = randomize(A.loreft(CFG, r=2), 3)
    old = Adapter({k: v for k, v in a.spec.items() if k != "share_weights"}, a.params)
    tokens = np.random.default_rng(0).integers(0, 16, (2, 9))
    mask = np.zeros((2, 9))
    mask[:, 5:] = 1
    params = init_params(CFG, 0, std=0.3)
    np.testing.assert_array_equal(A.adapted_loss(params, old, tokens, CFG, mask=mask),
                                  A.adapted_loss(params, a, tokens, CFG, mask=mask))


@pytest.mark.parametrize("positions", [None, "last", "f1", "l2", [0, 1]])
def test_unshared_reft_needs_first_and_last_positions(positions):
    with pytest.raises(ValueError, match="share_weights=False"):
        A.make_spec(CFG, "loreft", r=2, positions=positions, share_weights=False)
    with pytest.raises(ValueError, match="share_weights must be True or False"):
        A.make_spec(CFG, "loreft", r=2, share_weights="no")

# ---------------------------------------------------------------- ReFT at every position


@given(model_and_tokens(), seeds)
def test_loreft_all_edits_generated_positions_and_loreft_only_the_prompt(mt, seed):
    """At layer 0's post-block site (before any other edit can reach it), loreft_all shifts every
    position, completion included; loreft (f1+l1) leaves the completion positions untouched.
    Kills loreft_all_prompt_only."""
    cfg, params, tokens = mt
    T = tokens.shape[-1]
    assume(T >= 3)  # a prompt of 2 and a completion
    r = min(8, cfg.d_model)  # orthonormal rows need r <= d
    site = "blocks.0.hook_resid_post"
    prompt = max(2, T // 2)  # positions >= prompt are the completion
    mask = np.zeros(tokens.shape)
    mask[:, prompt:] = 1
    n = np.full(tokens.shape[0], prompt)
    _, before = run_with_cache(params, tokens, cfg, names=[site])
    for name, completion_moves in (("loreft_all", True), ("loreft", False)):
        adapter = randomize(A.build_method(name, cfg, params, seed=seed, r=r)["reft"], seed)
        _, after = run_with_cache(params, tokens, cfg, names=[site], hooks=A.adapter_hooks(adapter, n))
        moved = np.abs(after[site] - before[site]).max(axis=-1) > 1e-12  # [B, T]
        assert moved[:, prompt:].all() == completion_moves and moved[:, prompt:].any() == completion_moves
        assert moved[:, 0].all()  # both edit the first prompt token
    assert A.count_params(cfg, A.method_specs("loreft_all", r=r)) == A.count_params(cfg, A.method_specs("loreft", r=r))

# ---------------------------------------------------------------- LoFiT's K


@given(st.integers(1, 48), st.integers(1, 48))
def test_lofit_k_is_the_scripts_32_of_1024_heads_rounded_up(n_layers, n_heads):
    """K = ceil(L H / 32), at least 1: 32 on Llama2-7B (the three train_script_*.sh), 50 on 13B
    (the paper: 48), 14 on Gemma-7B (16). Kills lofit_k_ten_percent and lofit_k_floor."""
    cfg = Config.llama(vocab_size=8, d_model=2 * n_heads, n_heads=n_heads, n_kv_heads=n_heads,
                       d_mlp=8, n_layers=n_layers, n_ctx=4)
    assert default_k(cfg) == max(1, -(-n_layers * n_heads // 32))
    assert A.count_params(cfg, "lofit").trainable == default_k(cfg) * cfg.d_head


def test_lofit_k_on_the_published_models():
    llama = lambda L, H: Config.llama(vocab_size=8, d_model=2 * H, n_heads=H, n_kv_heads=H, d_mlp=8, n_layers=L,
                                      n_ctx=4)
    assert [default_k(llama(32, 32)), default_k(llama(40, 40)), default_k(llama(28, 16))] == [32, 50, 14]
    assert default_k(llama(4, 4)) == 1  # the shipped base: 16 heads, as under the old 10% (int(1.6) = 1)

# ---------------------------------------------------------------- official setups


def test_official_setups_are_the_authors_scripts():
    """The data against the scripts (read by hand, cited in recipes.py). Kills recipe_jola_no_warmup,
    recipe_joint_linear and recipe_reft_warmup."""
    expect = {"postblock_silu": ("linear", 9, 9e-4), "loreft": ("linear", 0, 5e-3),
              "loreft_all": ("linear", 0, 5e-3), "joint_orth_input": ("cosine", 18, 2e-4),
              "joint_naive": ("cosine", 18, 2e-4), "lofit": ("linear", 0, 1e-2), "jola": ("cosine", 50, 5e-3),
              "lora": ("linear", 9, None), "full": ("linear", 9, None)}
    for name, (schedule, warmup, lr) in expect.items():
        assert A.fit_settings(name, "official", 300) == dict(schedule=schedule, warmup=warmup), name
        assert A.official_setup(name).lr == lr, name
    assert A.fit_settings("jola", "official", 20)["warmup"] == 20  # never past the run
    assert {A.recipes.family(m) for m in A.METHODS} == set(A.OFFICIAL)
    with pytest.raises(ValueError, match="recipe="):
        A.fit_settings("jola", "mine")
    with pytest.raises(KeyError, match="valid"):
        A.fit_settings("nope")


@given(st.sampled_from(sorted(A.METHODS)), st.integers(1, 400))
def test_the_shared_recipe_is_what_train_method_does_by_default(name, steps):
    """fit_settings(shared) = train_method's defaults (linear, ceil(3% of steps)), for every method,
    so the headline runs are unchanged. Kills recipe_shared_warmup."""
    assert A.fit_settings(name, "shared", steps) == dict(schedule="linear", warmup=math.ceil(0.03 * steps))


def test_compare_trains_each_method_under_the_chosen_recipe(monkeypatch):
    """compare's run_one passes fit_settings(method, recipe) to train_method, and the recipe
    stays out of the signature, so runs logged before the option still resume (the recipe enters a
    run's key as its method's setup: tests/test_compare_runs.py). Kills compare_ignores_recipe and
    signature_counts_recipe."""
    from ministeer.experiments import compare
    seen = []

    def record(*args, **kwargs):
        seen.append(kwargs)
        raise RuntimeError("stop")
    monkeypatch.setattr(compare.A, "train_method", record)
    for recipe, expect in (("shared", ("linear", 1)), ("official", ("cosine", 4))):
        settings = compare.Settings(steps=4, n_train=20, n_test=4, recipe=recipe)
        with pytest.raises(RuntimeError, match="stop"):
            compare.run_one("jola", "listops", 0, 0.1, settings)
        assert (seen[-1]["schedule"], seen[-1]["warmup"]) == expect
    shared, official = compare.Settings(), compare.Settings(recipe="official")
    assert compare.signature(shared) == compare.signature(official)
    fields = [(f.name, f.type, dataclasses.field(default=f.default)) for f in dataclasses.fields(compare.Settings)
              if f.name != "recipe"]
    before = dataclasses.make_dataclass("SettingsWithoutRecipe", fields, frozen=True)()
    assert compare.signature(shared) == compare.signature(before)  # committed runs still resume

# ---------------------------------------------------------------- JoLA's lam_t counter


def test_jolas_lambda_counter_is_the_optimizer_step_and_evaluation_does_not_advance_it():
    """At fit's step i the objective carries the penalty at t = i, from 0; evaluation
    losses in between do not move it (the official code counts every loss call, from 1: see
    jola.py). The additive gates pinned open and the multiplicative ones shut, so the training
    loss minus the evaluation loss is the penalty, and the penalty depends on lam_t (with both
    pinned alike it would not). Kills jola_counter_from_one."""
    from ministeer.adapters.jola import l0_penalty
    cfg = Config.llama(vocab_size=16, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=16, n_layers=2, n_ctx=8)
    params = init_params(cfg, 0, std=0.3)
    adapter = randomize(A.jola(cfg, seed=0, gate_decay=0.5), 0)
    adapter = adapter.with_params({s: {**p, "log_g1": 0 * p["log_g1"] + 50, "log_g2": 0 * p["log_g2"] - 50}
                                   for s, p in adapter.params.items()})
    tokens = np.random.default_rng(0).integers(0, 16, (2, 8))
    mask = np.ones((2, 8))
    objective = A.objective(params, {"jola": adapter}, cfg)
    evaluation = A.adapted_loss(params, {"jola": adapter}, tokens, cfg, mask=mask)
    for step in range(3):
        train = objective(A.trainable_of({"jola": adapter}), {"tokens": tokens, "mask": mask}, step)
        A.adapted_loss(params, {"jola": adapter}, tokens, cfg, mask=mask)  # an evaluation: no count
        np.testing.assert_allclose(train - evaluation, l0_penalty(cfg, adapter.spec, adapter.params, step), **EXACT)
    assert not np.isclose(l0_penalty(cfg, adapter.spec, adapter.params, 0),
                          l0_penalty(cfg, adapter.spec, adapter.params, 1), rtol=1e-6)
