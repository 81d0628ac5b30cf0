"""An outside reference: one cell of the comparison trained by ministeer and by a short PyTorch
port of its recipe (tests/torch_reference.py), in float64, from the same base, data and batches.

Skipped where torch is not installed (the suite never needs it). The cells have a
deterministic start -- full fine-tuning starts at the base, the post-block vector at zero -- so
no random draw has to be shared. The two runs must agree to ~1e-9:

* every per-step loss and the final weights to rtol 1e-10: both are float64, the differences are
  rounding in another order of the same operations (matmul blocking, sums, AdamW's algebra:
  ``lr / c1 * m / (sqrt(v) / sqrt(c2) + eps)`` in torch, ``lr * (m / c1) / (sqrt(v / c2) + eps)``
  here), ~1e-16 per operation; measured after 20 steps: about 5e-15;
* the accuracy exactly: the same verdict on every test example (full FT: 87% after 20 steps,
  from 0%; the vector may still be at 0% then, so there the losses and the vector decide).
Hugging Face's warmup (``lr s / warmup``: step 0 at rate 0) in the port instead of ministeer's
``lr (s + 1) / warmup`` fails it.
"""
import numpy as np
import pytest

from ministeer import adapters as A
from ministeer.experiments.pretrain import BASE_PATH, load_base
from ministeer.tasks import BENCHMARK, TOKENIZER, accuracy, batch_sampler, examples
from ministeer.tree import named_leaves, tree_map

STEPS, BATCH, CLIP = 20, 8, 1.0
CELLS = [("full", 2e-3), ("postblock_vector", 1.0)]  # (method, lr): their ListOps rates in lrs.json


def _float64_base():
    params, cfg = load_base(BASE_PATH)
    return tree_map(lambda a: np.asarray(a, np.float64), params), cfg.replace(dtype="float64")


@pytest.mark.parametrize("method, lr", CELLS)
def test_a_torch_port_of_the_recipe_reproduces_ministeer(method, lr):
    torch = pytest.importorskip("torch")
    import torch_reference as ref  # imports torch: only here, after the skip
    torch.set_num_threads(1)  # float64 on a tiny model: threads only contend

    params, cfg = _float64_base()
    train = examples("listops", "train", 200, seed=0, fmt=BENCHMARK)
    test = examples("listops", "test", 60, seed=0, fmt=BENCHMARK)
    data = batch_sampler(train, BATCH, seed=0)
    warmup = A.fit_settings(method, "shared", STEPS)["warmup"]

    adapters, result = A.train_method(method, params, cfg, data, steps=STEPS, lr=lr, seed=0, clip=CLIP)
    ours = accuracy(lambda tokens, n: A.adapted_forward(params, adapters, tokens, cfg, prompt_lengths=n), test,
                    n_ctx=cfg.n_ctx, forced=True)

    base = {name: torch.as_tensor(a) for name, a in named_leaves(params)}
    w, vector, losses = ref.train(base, cfg, [data(step) for step in range(STEPS)], lr=lr, warmup=warmup,
                                  clip=CLIP, method="full" if method == "full" else "vector")
    heads = [[TOKENIZER.bos_id] + TOKENIZER.encode(e.prompt) + [TOKENIZER.sep_id] for e in test]
    answers = [TOKENIZER.encode(e.completion) + [TOKENIZER.eos_id] for e in test]
    theirs = float(np.mean(ref.exact_match(w, cfg, vector if method != "full" else None, heads, answers,
                                           TOKENIZER.pad_id)))

    np.testing.assert_allclose(result.losses, losses, rtol=1e-10, atol=0)
    assert result.losses[-1] < result.losses[0] - 0.1  # it trained: the comparison is not of two no-ops
    assert ours == theirs
    assert method != "full" or ours > 0.5  # full FT has learned the format: the verdicts are not all "wrong"
    if method == "full":
        for name, a in named_leaves(adapters["full"].params):
            np.testing.assert_allclose(a, w[name].detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=name)
    else:
        got = np.stack([adapters["steer"].params[s]["vector"] for s in adapters["steer"].spec["sites"]])
        np.testing.assert_allclose(got, vector.detach().numpy(), rtol=1e-10, atol=1e-13)
