"""One training loop for every method: a short run lowers the loss; only adapter leaves change."""
import numpy as np
import pytest

from ministeer import adapters as A
from ministeer.model import Config, init_params
from ministeer.tree import named_leaves, tree_map

CFG = Config.llama(vocab_size=16, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32, n_layers=2, n_ctx=8)
LR = {"full": 1e-2, "lora": 1e-2, "joint_naive": 1e-2, "joint_orth_input": 1e-2, "joint_orth_output": 1e-2,
      "joint_orth_official": 1e-2}


def copy_task(seed=0, batch=8):
    """Prompt: 3 random tokens; completion: the same 3 again (mask 1 on the completion only)."""
    rng = np.random.default_rng(seed)
    prompt = rng.integers(0, CFG.vocab_size, (batch, 3))
    mask = np.concatenate([np.zeros((batch, 3)), np.ones((batch, 3))], axis=1)
    return {"tokens": np.concatenate([prompt, prompt], axis=1), "mask": mask}


@pytest.mark.parametrize("name", sorted(set(A.METHODS) - {"lofit"}))  # two steps, its spec gains the heads:
def test_a_short_run_lowers_the_loss_and_leaves_the_base_untouched(name):  # tests/test_adapters_lofit_jola.py
    params = init_params(CFG, 0, std=0.3)
    frozen = tree_map(np.copy, params)
    start = A.build_method(name, CFG, params, seed=1)
    trained, result = A.train_method(name, params, CFG, lambda step: copy_task(step % 2), steps=8,
                                     lr=LR.get(name, 3e-2), adapters=start)
    assert len(result.losses) == 8 and result.losses[-1] < result.losses[0] - 0.05, result.losses
    for (path, a), (_, b) in zip(named_leaves(params), named_leaves(frozen)):
        assert np.array_equal(a, b), f"{path} of the frozen base changed"
    assert set(trained) == set(start) and all(t.spec == start[n].spec for n, t in trained.items())
    moved = [p for n in start for p, a in named_leaves(start[n].params)
             if not np.array_equal(a, dict(named_leaves(trained[n].params))[p])]
    assert moved, "no adapter array changed"
    loss = A.adapted_loss(params, trained, copy_task(0)["tokens"], CFG, mask=copy_task(0)["mask"])
    assert float(loss) < result.losses[0]


def test_overrides_reach_the_adapters_and_bad_ones_raise():
    params = init_params(CFG, 0)
    built = A.build_method("joint_naive", CFG, params, r=2, steer={"activation": "relu"})
    assert built["lora"].spec["r"] == 2 and built["steer"].spec["r"] == 2
    assert built["steer"].spec["activation"] == "relu"
    with pytest.raises(TypeError, match="no adapter field"):
        A.build_method("postblock_silu", CFG, params, rank=4)
    with pytest.raises(KeyError, match="valid"):
        A.train_method("prefix_tuning", params, CFG, [copy_task()], steps=1)


def test_same_seed_same_numbers():
    params = init_params(CFG, 0, std=0.3)
    runs = [A.train_method("postblock_silu", params, CFG, [copy_task()], steps=3, lr=1e-2, seed=5)
            for _ in range(2)]
    assert runs[0][1].losses == runs[1][1].losses
