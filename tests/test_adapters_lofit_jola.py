"""The paper's head-level baselines: LoFiT (two steps: scale + L1, then offsets on the top-K heads)
and JoLA (HardConcrete-gated scaling and offsets, L0 penalty), on ``attn.hook_z``."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from adapter_strategies import randomize
from strategies import configs, model_and_tokens, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.adapters.jola import jola as make_jola, l0_penalty
from ministeer.adapters.lofit import l1_penalty
from ministeer.model import Config, forward, init_params, run_with_cache
from ministeer.tree import tree_size

CFG = Config.llama(vocab_size=16, d_model=16, n_heads=4, n_kv_heads=2, d_mlp=32, n_layers=2, n_ctx=8)


def copy_task(seed=0, batch=8):
    rng = np.random.default_rng(seed)
    prompt = rng.integers(0, CFG.vocab_size, (batch, 3))
    mask = np.concatenate([np.zeros((batch, 3)), np.ones((batch, 3))], axis=1)
    return {"tokens": np.concatenate([prompt, prompt], axis=1), "mask": mask}


def z_of(params, tokens, cfg, hooks=None):
    names = [f"blocks.{l}.attn.hook_z" for l in range(cfg.n_layers)]
    # the activation *after* all hooks at the site: run_with_cache records what flows on
    return run_with_cache(params, tokens, cfg, names=names, hooks=hooks)[1]


# ---------------------------------------------------------------- LoFiT


@given(model_and_tokens(), seeds)
def test_lofit_steps_are_exact_no_ops_with_zero_init(mt, seed):
    """With ``init_std=0`` both steps start as the identity (the official N(0, 1e-3) init does not).
    Rejects a hook that adds z instead of A * z (scale) or one that ignores the head placement."""
    cfg, params, tokens = mt
    base = forward(params, tokens, cfg)
    scale = A.lofit_scale(cfg, init_std=0.0, seed=seed)
    offsets = A.lofit(cfg, heads=[[0, 0]], init_std=0.0, seed=seed)
    assert np.array_equal(A.adapted_forward(params, scale, tokens, cfg), base)
    assert np.array_equal(A.adapted_forward(params, offsets, tokens, cfg), base)


@given(model_and_tokens(), seeds)
def test_lofit_scale_is_one_plus_A_times_z(mt, seed):
    """z_{l,h} <- (1 + A_{l,h}) * z_{l,h}, every head of the layer. Rejects A * z (dropped 1) and
    A broadcast along the wrong axis (heads vs head dim)."""
    cfg, params, tokens = mt
    site = "blocks.0.attn.hook_z"
    scale = randomize(A.lofit_scale(cfg, layers=[0], seed=seed), seed)
    before, after = z_of(params, tokens, cfg)[site], z_of(params, tokens, cfg, A.adapter_hooks(scale))[site]
    np.testing.assert_allclose(after, (1.0 + scale.params[site]["A"]) * before, **EXACT)


@given(configs(), st.data())
def test_lofit_offsets_touch_only_the_selected_heads(cfg, data):
    """z_{l,h} <- z_{l,h} + v_{l,h} for (l, h) in heads; every other head bitwise unchanged (the hooks
    on a random z). Rejects placing offset i on head i (instead of on heads[i]) and adding to every head."""
    all_heads = [[l, h] for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
    heads = data.draw(st.lists(st.sampled_from(all_heads), min_size=1, max_size=len(all_heads), unique_by=tuple))
    seed = data.draw(seeds)
    offsets = randomize(A.lofit(cfg, heads=heads), seed)
    z = np.random.default_rng(seed).normal(size=(2, 3, cfg.n_heads, cfg.d_head))
    hooks = A.adapter_hooks(offsets)
    assert sorted(hooks) == sorted({f"blocks.{l}.attn.hook_z" for l, _ in heads})
    for site, (hook,) in hooks.items():
        here = [h for hl, h in heads if f"blocks.{hl}.attn.hook_z" == site]
        out = hook(z, site)
        for h in range(cfg.n_heads):
            if h in here:
                v = offsets.params[site]["v"][here.index(h)]
                np.testing.assert_allclose(out[:, :, h], z[:, :, h] + v, **EXACT)
            else:
                assert np.array_equal(out[:, :, h], z[:, :, h])


def test_select_heads_picks_the_largest_norms_largest_first():
    """Hand example: norms [[1, 5], [3, 4]] -> top 3 = (0,1), (1,1), (1,0). Rejects an ascending
    sort and a flat index decoded as (head, layer)."""
    norms = np.array([[1.0, 5.0], [3.0, 4.0]])
    assert A.select_heads(norms, 3) == [[0, 1], [1, 1], [1, 0]]
    assert A.select_heads(norms, 1, layers=[4, 7]) == [[4, 1]]
    with pytest.raises(ValueError, match="between 1 and 4"):
        A.select_heads(norms, 5)


@given(st.integers(1, 3), st.integers(1, 4), seeds, st.data())
def test_select_heads_keeps_exactly_the_k_largest(L, H, seed, data):
    """Every kept head's norm >= every dropped head's, and the order is non-increasing."""
    norms = np.random.default_rng(seed).random((L, H))
    k = data.draw(st.integers(1, L * H))
    chosen = A.select_heads(norms, k)
    kept = [norms[l, h] for l, h in chosen]
    dropped = [norms[l, h] for l in range(L) for h in range(H) if [l, h] not in chosen]
    assert len(chosen) == k and kept == sorted(kept, reverse=True)
    assert not dropped or min(kept) >= max(dropped)


def test_head_norms_are_the_l2_norms_of_the_learned_scales():
    scale = randomize(A.lofit_scale(CFG), 3)
    norms = A.head_norms(scale)
    for l in range(CFG.n_layers):
        for h in range(CFG.n_heads):
            assert norms[l, h] == pytest.approx(np.sqrt(np.sum(scale.params[f"blocks.{l}.attn.hook_z"]["A"][h] ** 2)))


def test_l1_penalty_is_lambda_times_the_sum_of_abs():
    """lambda * sum |A| over all heads and layers (a sum, as the official code; rejects a mean)."""
    scale = randomize(A.lofit_scale(CFG, l1=0.01), 4)
    hand = 0.01 * sum(np.abs(p["A"]).sum() for p in scale.params.values())
    np.testing.assert_allclose(l1_penalty(CFG, scale.spec, scale.params, 0), hand, **EXACT)


def test_train_lofit_runs_both_steps_and_keeps_the_top_heads_of_step_one():
    """train_method("lofit") = step 1 (scales + L1) -> select_heads on their norms -> step 2 (offsets).
    The kept heads are those select_heads picks from step 1's trained scales; loss falls in step 2."""
    params = init_params(CFG, 0, std=0.3)
    data = lambda step: copy_task(step % 2)
    trained, result = A.train_method("lofit", params, CFG, data, steps=12, lr=5e-2, seed=1, k=3)
    select = result.select
    assert len(select.losses) == 12 and len(result.losses) == 12
    scale = A.with_trainable({"scale": A.lofit_scale(CFG, seed=1)}, select.params)["scale"]
    assert trained["lofit"].spec["heads"] == A.select_heads(A.head_norms(scale), 3)
    assert tree_size(trained["lofit"].params) == 3 * CFG.d_head
    assert result.losses[-1] < result.losses[0] - 0.05, result.losses
    again, _ = A.train_method("lofit", params, CFG, data, steps=12, lr=5e-2, seed=1, k=3)
    assert again["lofit"].spec == trained["lofit"].spec  # same seed, same heads, same numbers
    for site, p in trained["lofit"].params.items():
        assert np.array_equal(p["v"], again["lofit"].params[site]["v"])


def test_a_callback_counts_steps_across_both_lofit_steps():
    """Rejects a count that restarts at 0 in step 2, which a progress log or a stop rule keyed on
    the step number would read as going back in time."""
    seen = []
    A.train_lofit(init_params(CFG, 0), CFG, lambda step: copy_task(step % 2), steps=3, lr=1e-2, select_steps=2,
                  callback=lambda step, loss, trainable: seen.append(step))
    assert seen == list(range(5))  # 2 selection steps, then 3: rejects an offset of `steps`, not 2


# ---------------------------------------------------------------- JoLA


def test_gates_by_hand():
    """Eval: clip(sigmoid(a) * 1.2 - 0.1, 0, 1); training: the noisy HardConcrete sample. Hand
    values at a = 0 (0.5), a = 10 (clipped to 1), a = -10 (clipped to 0), and u = 0.5 (no noise)."""
    spec = A.make_spec(CFG, "jola")
    a = np.array([0.0, 10.0, -10.0])
    np.testing.assert_allclose(A.gates(spec, a), [0.5, 1.0, 0.0], **EXACT)
    s = 1 / (1 + np.exp(-(np.log(0.25 / 0.75) + 1.0) / 0.33))
    np.testing.assert_allclose(A.gates(spec, np.array([1.0]), np.array([0.25])), [1.2 * s - 0.1], **EXACT)


@given(model_and_tokens(), seeds)
def test_jola_edit_is_gated_scale_plus_gated_offset(mt, seed):
    """z <- (1 + g2 A) z + g1 v with eval-mode gates. Rejects swapping g1 and g2 and ungated edits."""
    cfg, params, tokens = mt
    adapter = randomize(make_jola(cfg, layers=[0], seed=seed), seed, scale=1.0)
    site = "blocks.0.attn.hook_z"
    p = adapter.params[site]
    g1, g2 = A.gates(adapter.spec, p["log_g1"])[:, None], A.gates(adapter.spec, p["log_g2"])[:, None]
    before, after = z_of(params, tokens, cfg)[site], z_of(params, tokens, cfg, A.adapter_hooks(adapter))[site]
    np.testing.assert_allclose(after, (1 + g2 * p["A"]) * before + g1 * p["v"], **EXACT)


@given(model_and_tokens(), seeds)
def test_jola_is_a_no_op_with_zero_vectors_whatever_the_gates(mt, seed):
    """A = v = 0 (``init_std=0``) is the identity for any gate values (the official init is N(0, 1e-3))."""
    cfg, params, tokens = mt
    adapter = make_jola(cfg, init_std=0.0, seed=seed)
    assert np.array_equal(A.adapted_forward(params, adapter, tokens, cfg), forward(params, tokens, cfg))


def test_jola_gates_are_deterministic_at_eval_and_seeded_in_training():
    """Evaluation (no draws): two calls agree bitwise. Training: the objective's noise is fixed by
    (seed, step) -- same seed, same losses; another seed or another step, other noise."""
    params = init_params(CFG, 0, std=0.3)
    adapter = {"jola": randomize(make_jola(CFG, seed=0), 0, scale=1.0)}
    batch = copy_task(0)
    one = A.adapted_loss(params, adapter, batch["tokens"], CFG, mask=batch["mask"])
    assert one == A.adapted_loss(params, adapter, batch["tokens"], CFG, mask=batch["mask"])
    trainable = A.trainable_of(adapter)
    objectives = [A.objective(params, adapter, CFG, seed) for seed in (5, 5, 6)]
    runs = [[f(trainable, batch, step) for step in range(3)] for f in objectives]  # three steps each
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3 and runs[0] != runs[2]  # each step draws new noise


def test_l0_penalty_by_hand():
    """lam_t * sum_l mean_h P1 / (L H) + (1 - lam_t) sum_l mean_h P2 / (L H), lam_t = 0.1 e^{-0.01 t},
    P = clip(sigmoid(a - 0.33 log(0.1 / 1.1)), eps, 1 - eps). Rejects equal weights on g1 and g2
    and a missing schedule."""
    adapter = randomize(make_jola(CFG, seed=0), 0, scale=1.0)
    P = lambda a: np.clip(1 / (1 + np.exp(-(a - 0.33 * np.log(0.1 / 1.1)))), 1e-6, 1 - 1e-6)
    lam = 0.1 * np.exp(-0.01 * 7)
    p1 = sum(P(p["log_g1"]).mean() for p in adapter.params.values())
    p2 = sum(P(p["log_g2"]).mean() for p in adapter.params.values())
    hand = (lam * p1 + (1 - lam) * p2) / (CFG.n_layers * CFG.n_heads)
    np.testing.assert_allclose(l0_penalty(CFG, adapter.spec, adapter.params, 7), hand, **EXACT)


def test_the_penalty_enters_the_training_loss_and_not_the_evaluation_loss():
    """objective = SFT loss (with training gates) + penalty; adapted_loss has no penalty. With the
    gates pinned open (log_alpha = 50: the sample is 1 whatever the noise) the difference is exactly
    the penalty."""
    params = init_params(CFG, 0, std=0.3)
    adapter = randomize(make_jola(CFG, seed=0), 0)
    adapter = adapter.with_params({s: {**p, "log_g1": 0 * p["log_g1"] + 50, "log_g2": 0 * p["log_g2"] + 50}
                                   for s, p in adapter.params.items()})
    batch = copy_task(0)
    train = A.objective(params, {"jola": adapter}, CFG)(A.trainable_of({"jola": adapter}), batch, 0)
    evaluation = A.adapted_loss(params, {"jola": adapter}, batch["tokens"], CFG, mask=batch["mask"])
    np.testing.assert_allclose(train - evaluation, l0_penalty(CFG, adapter.spec, adapter.params, 0), **EXACT)


def test_jola_init_follows_the_official_distributions():
    """A, v ~ N(0, 1e-3); log_alpha ~ U(-sqrt(6 / (H + 1)), +) (xavier-uniform of [H, 1])."""
    cfg = Config.llama(vocab_size=16, d_model=256, n_heads=32, n_kv_heads=8, d_mlp=32, n_layers=4, n_ctx=8)
    adapter = make_jola(cfg, seed=0)
    A_all = np.concatenate([p["A"].ravel() for p in adapter.params.values()])
    g_all = np.concatenate([p["log_g1"] for p in adapter.params.values()])
    assert 0.9e-3 < A_all.std() < 1.1e-3
    bound = np.sqrt(6 / 33)
    assert np.abs(g_all).max() <= bound and np.abs(g_all).max() > 0.8 * bound


# ---------------------------------------------------------------- counts and training


@given(configs())
def test_counts_equal_the_closed_forms_and_the_built_adapters(cfg):
    """LoFiT keeps K d_head (K = ceil(L H / 32), at least 1); JoLA has 2 H (d_head + 1) per layer."""
    K = max(1, -(-cfg.n_layers * cfg.n_heads // 32))
    assert A.count_params(cfg, "lofit").trainable == K * cfg.d_head
    assert A.count_params(cfg, "jola").trainable == cfg.n_layers * 2 * cfg.n_heads * (cfg.d_head + 1)
    assert A.count_params(cfg, {"kind": "lofit", "heads": [[0, 0]]}).trainable == cfg.d_head
    assert A.count_params(cfg, {"kind": "lofit_scale"}).trainable == cfg.n_layers * cfg.n_heads * cfg.d_head
    built = A.lofit(cfg, heads=[[cfg.n_layers - 1, h] for h in range(cfg.n_heads)])
    assert A.count_params(cfg, built).trainable == tree_size(built.params) == cfg.n_heads * cfg.d_head


@pytest.mark.parametrize("name, lr", [("jola", 3e-2)])
def test_a_short_jola_run_lowers_the_loss(name, lr):
    params = init_params(CFG, 0, std=0.3)
    _, result = A.train_method(name, params, CFG, lambda step: copy_task(step % 2), steps=12, lr=lr, seed=2)
    assert result.losses[-1] < result.losses[0] - 0.05, result.losses


def test_head_level_adapters_save_load_and_refuse_to_fold(tmp_path):
    """A LoFiT (chosen heads in the spec) and a JoLA adapter round-trip through save/load bitwise;
    fold refuses them with a FoldError naming the kind (no o_proj folding rule for head edits)."""
    params = init_params(CFG, 0, std=0.3)
    ads = {"lofit": randomize(A.lofit(CFG, heads=[[1, 2], [0, 3]]), 0), "jola": randomize(make_jola(CFG), 1)}
    A.save_adapters(tmp_path / "heads.npz", ads)
    back = A.load_adapters(tmp_path / "heads.npz")
    tokens = np.random.default_rng(0).integers(0, 16, (2, 5))
    assert np.array_equal(A.adapted_forward(params, ads, tokens, CFG), A.adapted_forward(params, back, tokens, CFG))
    for name in ads:
        with pytest.raises(A.FoldError, match=name):
            A.fold(params, {name: ads[name]}, CFG)
