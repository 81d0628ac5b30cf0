"""Initialization statistics and the completion-only loss with default targets, by hand."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from strategies import model_and_tokens
from tolerances import EXACT
from ministeer.model import Config, forward, init_params, loss_fn
from ministeer.tree import named_leaves


@pytest.mark.parametrize("preset", ["llama", "gpt2"])
def test_init_statistics(preset):
    """Weights ~ N(0, std); the writes into the residual stream (o_proj, down_proj) ~ N(0, std / sqrt(2 L));
    norm gains 1, biases 0. With L = 8 the two stds differ by 4x; each matrix has >= 4096 entries,
    so its sample std is within ~3% (5 sigma) of the truth. Rejects an unscaled residual write."""
    L, std = 8, 0.02
    cfg = Config.llama(d_model=64, n_layers=L, n_heads=4, n_kv_heads=2, d_mlp=64, vocab_size=64) if preset == "llama" \
        else Config.gpt2(d_model=64, n_layers=L, n_heads=4, d_mlp=64, vocab_size=64)
    for name, leaf in named_leaves(init_params(cfg, seed=1, std=std)):
        if name.endswith("bias"):
            assert np.all(leaf == 0), name
        elif leaf.ndim == 1:
            assert np.all(leaf == 1), name
        elif name.endswith("embed_positions.weight"):
            assert np.std(leaf) == pytest.approx(0.01, rel=0.1)
        else:
            want = std / np.sqrt(2 * L) if name.endswith(("o_proj.weight", "down_proj.weight")) else std
            assert np.std(leaf) == pytest.approx(want, rel=0.05), name
            assert abs(np.mean(leaf)) < 5 * want / np.sqrt(leaf.size), name


@given(model_and_tokens(), st.data())
def test_completion_only_loss_with_default_targets_by_hand(mt, data):
    """targets=None, mask over the *tokens*: position t predicts token t+1 and counts iff
    mask[t+1] (the predicted token is a completion token). Rejects mask[:, :-1] (the mask of
    the token that is read, one position early)."""
    cfg, params, tokens = mt
    T = tokens.shape[1]
    if T < 3:
        tokens = np.concatenate([tokens, tokens[:, :1], tokens[:, :1]], axis=1)[:, :max(3, T)]
        T = tokens.shape[1]
    start = data.draw(st.integers(1, T - 1))  # prompt = tokens[:start], completion = the rest
    mask = np.zeros(tokens.shape)
    mask[:, start:] = 1.0
    if len(tokens) > 1:
        mask[0, -1] = 0.0  # make the mask's left and right shifts differ in count as well as place
    logits = forward(params, tokens, cfg)
    logp = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    terms = [-logp[b, t, tokens[b, t + 1]] for b in range(len(tokens)) for t in range(T - 1) if mask[b, t + 1]]
    assert terms, "the completion has at least one token after position 0"
    np.testing.assert_allclose(loss_fn(params, tokens, cfg, mask=mask), np.mean(terms), **EXACT)
