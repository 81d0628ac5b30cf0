"""Greedy generation: each token is the argmax of a full forward pass, hooks included."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from ministeer.generate import generate
from ministeer.model import Config, forward, init_params
from strategies import model_and_tokens, random_params, seeds


def _argmax_last(params, tokens, cfg, hooks=None):
    return np.argmax(forward(params, tokens, cfg, hooks)[:, -1], axis=-1)


@given(model_and_tokens(), st.data())
def test_each_token_is_the_argmax_of_the_forward_pass(case, data):
    cfg, params, prompt = case
    T = prompt.shape[1]
    assume(T < cfg.n_ctx)
    n = data.draw(st.integers(1, cfg.n_ctx - T))
    out = generate(params, prompt, cfg, n)
    assert out.shape == (prompt.shape[0], T + n) and out.dtype.kind == "i"
    assert np.array_equal(out[:, :T], prompt)
    for i in range(n):
        assert np.array_equal(out[:, T + i], _argmax_last(params, out[:, :T + i], cfg))


@given(model_and_tokens(), st.data())
def test_hooks_stay_active_at_every_step(case, data):
    cfg, params, prompt = case
    T = prompt.shape[1]
    assume(T <= cfg.n_ctx - 3)
    vector = 3.0 * np.random.default_rng(data.draw(seeds)).normal(size=cfg.d_model)
    hooks = {"blocks.*.hook_resid_post": lambda x, name: x + vector}
    out = generate(params, prompt, cfg, 3, hooks=hooks)
    for i in range(3):
        assert np.array_equal(out[:, T + i], _argmax_last(params, out[:, :T + i], cfg, hooks))


def _steer_last_position_towards(token, params, cfg, strength=100.0):
    """A hook that adds ``strength`` times token's unembedding row at the last position only."""
    unembed = params["model"]["embed_tokens"]["weight"] if cfg.tied else params["lm_head"]["weight"]
    def hook(x, name):
        at_last = np.zeros(x.shape[1])
        at_last[-1] = 1.0
        return x + strength * at_last[None, :, None] * unembed[token]
    return {"ln_final.hook_normalized": hook}


@pytest.mark.parametrize("preset", ["llama", "gpt2"])
@given(seed=seeds, target=st.integers(0, 9))
def test_a_last_position_hook_steers_every_new_token(preset, seed, target):
    cfg = getattr(Config, preset)(vocab_size=10, n_ctx=12, n_layers=1)
    params = random_params(cfg, seed)
    prompt = np.random.default_rng(seed).integers(0, 10, (2, 4))
    hooks = _steer_last_position_towards(target, params, cfg)
    out = generate(params, prompt, cfg, 5, hooks=hooks)
    assert np.all(out[:, 4:] == target)
    # it touches only the last position: the logits of the prompt positions are unsteered
    np.testing.assert_array_equal(forward(params, out, cfg, hooks)[:, :-1], forward(params, out, cfg)[:, :-1])


def test_one_prompt_in_one_sequence_out_and_lists_accepted():
    cfg = Config.llama(n_layers=1)
    params = init_params(cfg, 0)
    single = generate(params, [3, 1, 4], cfg, 4)
    assert single.shape == (7,)
    np.testing.assert_array_equal(generate(params, np.array([[3, 1, 4]]), cfg, 4)[0], single)
    np.testing.assert_array_equal(generate(params, [3, 1, 4], cfg, 0), [3, 1, 4])


def test_stop_token_pads_finished_rows_and_ends_early():
    cfg = Config.llama(vocab_size=10, n_ctx=16, n_layers=1)
    params = random_params(cfg, 5)
    prompt = np.random.default_rng(5).integers(0, 10, (3, 2))
    free = generate(params, prompt, cfg, 12)
    stop = int(free[0, 2])  # row 0 emits it first thing
    out = generate(params, prompt, cfg, 12, stop_token=stop)
    for row in range(3):
        hits = np.flatnonzero(free[row, 2:] == stop)
        end = 2 + (hits[0] + 1 if hits.size else 12)
        np.testing.assert_array_equal(out[row, :end], free[row, :end])  # same until it stops
        assert np.all(out[row, end:] == stop)  # then padded
    # stops as soon as every row has emitted it
    last_stop = max(2 + (np.flatnonzero(free[r, 2:] == stop)[0] + 1 if np.any(free[r, 2:] == stop) else 12)
                    for r in range(3))
    assert out.shape[1] == last_stop


def test_errors():
    cfg = Config.llama(n_ctx=8, n_layers=1)
    params = init_params(cfg, 0)
    with pytest.raises(ValueError, match=r"prompt length 6 \+ max_new_tokens 3 exceeds .*n_ctx=8"):
        generate(params, np.zeros((1, 6), dtype=int), cfg, 3)
    assert generate(params, np.zeros((1, 6), dtype=int), cfg, 2).shape == (1, 8)  # exactly n_ctx is fine
    with pytest.raises(ValueError, match="non-negative int"):
        generate(params, [1, 2], cfg, -1)
    with pytest.raises(ValueError, match="stop_token"):
        generate(params, [1, 2], cfg, 2, stop_token=cfg.vocab_size)
    with pytest.raises(TypeError, match="integers"):
        generate(params, np.array([1.0, 2.0]), cfg, 2)
    with pytest.raises(ValueError, match=r"\[batch, pos\]"):  # ragged prompts are not a batch
        generate(params, np.zeros((1, 2, 2), dtype=int), cfg, 2)
