"""Options of the official code (https://github.com/SprocketLab/steerling): ``--intervene-last`` with its
stepwise loss, and ``--submodules`` (an attention-side and an MLP-side adapter trained together)."""
import numpy as np
from hypothesis import given

from adapter_strategies import randomize
from strategies import model_and_tokens, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.model import Config, forward, init_params, run_with_cache

CFG = Config.llama(vocab_size=16, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32, n_layers=2, n_ctx=8)


@given(model_and_tokens(), seeds)
def test_intervene_last_changes_only_the_last_position(mt, seed):
    """positions="last" (``apply_to="last"``): at the post-block sites only position T-1 moves, and
    the logits of every earlier position are bitwise those of the base (causal attention). Rejects
    editing position 0 (a sign slip in the index) and editing every position."""
    cfg, params, tokens = mt
    steer = randomize(A.lowrank(cfg, positions="last", seed=seed), seed)
    names = steer.spec["sites"]
    base_logits, before = run_with_cache(params, tokens, cfg, names=names)
    logits, after = run_with_cache(params, tokens, cfg, names=names, hooks=A.adapter_hooks(steer))
    assert np.array_equal(logits[:, :-1], base_logits[:, :-1])
    assert np.array_equal(after[names[0]][:, :-1], before[names[0]][:, :-1])
    assert np.abs(after[names[0]][:, -1] - before[names[0]][:, -1]).max() > 0


def test_stepwise_loss_is_the_mean_over_prefix_forwards_by_hand():
    """The official StepwiseTrainer: the target at t+1 is scored from a forward pass over tokens[:, :t+1]
    alone, with the adapter on that pass's last position. Hand loop over t below. Rejects the
    one-pass teacher-forced loss (with positions="last" it would steer only the final position)."""
    params = init_params(CFG, 0, std=0.3)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 16, (3, 6))
    mask = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1]], float)
    steer = {"steer": randomize(A.lowrank(CFG, positions="last"), 1)}
    total, count = 0.0, 0
    for t in range(5):
        for b in range(3):
            if mask[b, t + 1]:
                logits = A.adapted_forward(params, steer, tokens[b:b + 1, :t + 1], CFG)[0, -1]
                logp = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
                total, count = total - logp[tokens[b, t + 1]], count + 1
    stepwise = A.stepwise_loss(params, steer, tokens, CFG, mask)
    np.testing.assert_allclose(stepwise, total / count, **EXACT)
    one_pass = A.adapted_loss(params, steer, tokens, CFG, mask=mask)
    assert abs(float(one_pass) - float(stepwise)) > 1e-6


def test_train_method_intervene_last_trains_a_last_position_adapter_with_the_stepwise_loss():
    params = init_params(CFG, 0, std=0.3)
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, 16, (8, 3))
    batch = {"tokens": np.concatenate([prompt, prompt], 1), "mask": np.concatenate([np.zeros((8, 3)), np.ones((8, 3))], 1)}
    trained, result = A.train_method("postblock_silu", params, CFG, [batch], steps=8, lr=3e-2, intervene_last=True)
    assert trained["steer"].spec["positions"] == "last"
    assert result.losses[-1] < result.losses[0] - 0.05, result.losses
    moved = {"steer": randomize(trained["steer"], 2)}  # the objective train_method uses is the stepwise loss
    objective = A.objective(params, moved, CFG, stepwise=True)
    assert objective(A.trainable_of(moved), batch, 0) == A.stepwise_loss(params, moved, batch["tokens"], CFG, batch["mask"])


@given(model_and_tokens(), seeds)
def test_submodules_is_a_pre_mlp_and_a_post_mlp_adapter_together(mt, seed):
    """``--submodules``: one adapter on the post-attention-norm output (pre-MLP) and one on the MLP
    output of every layer, trained as one method; its forward equals the two adapters applied together."""
    cfg, params, tokens = mt
    both = randomize(A.build_method("submodules_r8", cfg, seed=seed)["steer"], seed)
    pre_sites = [f"blocks.{l}.ln2.hook_normalized" for l in range(cfg.n_layers)]
    post_sites = [f"blocks.{l}.hook_mlp_out" for l in range(cfg.n_layers)]
    assert both.spec["sites"] == pre_sites + post_sites
    part = lambda sites: A.Adapter({**both.spec, "sites": sites}, {s: both.params[s] for s in sites})
    pre, post = part(pre_sites), part(post_sites)
    np.testing.assert_allclose(A.adapted_forward(params, both, tokens, cfg),
                               A.adapted_forward(params, {"pre": pre, "post": post}, tokens, cfg), **EXACT)
    assert A.count_params(cfg, "submodules_r8").trainable == 2 * 2 * 8 * cfg.d_model * cfg.n_layers
    assert not np.array_equal(A.adapted_forward(params, both, tokens, cfg), forward(params, tokens, cfg))
