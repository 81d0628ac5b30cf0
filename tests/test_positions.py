"""Which positions an activation adapter edits (``adapters/positions.py``), against a reference
written from pyreft's definitions: ``f<k>`` = the first k prompt tokens, ``l<k>`` = the last k,
both clamped to the prompt; ``"last"`` = the input's last position; int lists index from either
end. Each test names the wrong implementation it rejects (and its mutant in scripts/mutants.py)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ministeer import adapters as A
from ministeer.adapters.positions import position_mask, prompt_lengths_from_mask
from ministeer.model import Config, init_params


def reference_mask(first, last, prompt_lengths, n_pos):
    """pyreft's ``f<first>+l<last>`` by loops: in each row, the first ``first`` and the last ``last``
    tokens of the prompt (whose length is cut to the input), never a token after the prompt."""
    out = np.zeros((len(prompt_lengths), n_pos))
    for b, P in enumerate(prompt_lengths):
        P = min(P, n_pos)
        for t in range(n_pos):
            out[b, t] = float(t < P and (t < first or t >= P - last))
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 9), st.integers(0, 9), st.integers(1, 10), st.data())
def test_first_and_last_k_are_clamped_to_the_prompt(first, last, n_pos, data):
    """``f<k>+l<k>`` with prompt lengths per row (some longer than the input, as in ``loss_fn``,
    which feeds T - 1 tokens): exactly the reference's positions. Rejects ``f7`` editing completion
    tokens on a prompt shorter than 7 (mutant ``first_unclamped``), a prompt length not cut to the
    input (``l<k>`` then edits nothing), and ``l<k>`` counted off by one."""
    if first == last == 0:
        return  # refused by check_positions (test below)
    lengths = data.draw(st.lists(st.integers(0, n_pos + 2), min_size=1, max_size=3))
    text = "+".join(([f"f{first}"] if first else []) + ([f"l{last}"] if last else []))
    got = np.asarray(position_mask(text, len(lengths), n_pos, np.array(lengths)))
    np.testing.assert_array_equal(got, reference_mask(first, last, lengths, n_pos))


def test_f7_on_a_three_token_prompt_edits_only_the_prompt():
    """The issue in one line: a prompt of 3 tokens, 5 completion tokens. ``f7`` edits tokens 0-2 and
    no completion token (pyreft clamps first-k to the prompt)."""
    got = np.asarray(position_mask("f7", 1, 8, np.array([3])))
    np.testing.assert_array_equal(got, [[1, 1, 1, 0, 0, 0, 0, 0]])


def test_without_prompt_lengths_first_and_last_count_from_the_sequence():
    """No prompt lengths: the whole input is the prompt. Rejects counting from a default prompt
    length of 0 (nothing edited)."""
    np.testing.assert_array_equal(np.asarray(position_mask("f1+l2", 2, 5)), [[1, 0, 0, 1, 1]] * 2)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.data())
def test_int_positions_index_from_either_end(n_pos, data):
    """A list of ints edits exactly those positions, negatives counted from the end as Python does;
    an index past either end is refused. Rejects negative indices that edit nothing (no
    wrap-around) and an index T silently read as 0."""
    chosen = data.draw(st.lists(st.integers(-n_pos, n_pos - 1), min_size=1, max_size=n_pos))
    expected = np.zeros(n_pos)
    expected[np.array(chosen) % n_pos] = 1.0
    np.testing.assert_array_equal(np.asarray(position_mask(chosen, 2, n_pos)), [expected] * 2)
    for outside in (n_pos, -n_pos - 1):  # not wrapped around: refused (mutant ``positions_range_off_by_one``)
        with pytest.raises(ValueError, match="out of range"):
            position_mask(chosen + [outside], 2, n_pos)


def test_last_is_the_inputs_last_position_and_masks_are_cut_not_padded():
    """"last" edits position T - 1 of every row; a bool mask longer than the input is cut, a shorter
    one is refused. Rejects "last" as the first position and a silently padded mask."""
    np.testing.assert_array_equal(np.asarray(position_mask("last", 2, 4)), [[0, 0, 0, 1]] * 2)
    np.testing.assert_array_equal(np.asarray(position_mask(np.array([True, False, True, True]), 1, 3)), [[1, 0, 1]])
    with pytest.raises(ValueError, match="position mask has shape"):
        position_mask(np.array([True, False]), 1, 3)


def test_prompt_lengths_are_the_first_supervised_index_and_T_without_one():
    """The prompt ends where the completion mask starts; a row with nothing supervised is all prompt
    (length T). Rejects a length of 0 for such a row (its ``l<k>`` would edit nothing) and the index
    of the last supervised token."""
    mask = np.array([[0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(prompt_lengths_from_mask(mask)), [2, 4, 5])


def test_a_reft_adapter_in_the_loss_edits_no_completion_token_with_f7():
    """End to end: LoReFT with ``f7`` on 3-token prompts, in ``adapted_loss`` (the mask fixes the
    prompt length). The loss depends on the adapter only through prompt positions, so zeroing the
    edit at every completion position changes nothing. Rejects an unclamped ``f<k>`` (mutant
    ``first_unclamped``), which edits completion tokens 3-6 too."""
    cfg = Config.llama(vocab_size=16, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=16, n_layers=1, n_ctx=16)
    params = init_params(cfg, 0, std=0.3)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 16, (2, 10))
    mask = np.concatenate([np.zeros((2, 3)), np.ones((2, 7))], axis=1)
    reft = A.loreft(cfg, r=2, positions="f7", seed=1)
    site = reft.spec["sites"][0]
    reft = reft.with_params({site: {**reft.params[site], "b": np.ones(2)}})  # a nonzero edit
    prompt_only = A.loreft(cfg, r=2, positions=np.arange(10) < 3, seed=1).with_params(reft.params)
    loss = lambda ads: A.adapted_loss(params, ads, tokens, cfg, mask=mask)
    assert loss(reft) == loss(prompt_only)
    assert loss(reft) != A.adapted_loss(params, [], tokens, cfg, mask=mask)


@pytest.mark.parametrize("text, message", [("f0", "selects no position"), ("l0", "selects no position"),
                                           ("f0+l0", "selects no position"), ("x1", "pyreft notation"),
                                           ("f", "pyreft notation"), ("l-1", "pyreft notation")])
def test_positions_that_edit_nothing_or_do_not_parse_are_refused_when_built(text, message):
    """An adapter that could never edit anything is refused when it is built, not trained as a silent
    no-op. Rejects accepting ``f0``/``l0`` (mutant ``positions_empty_accepted``) and reading a
    malformed spec as something else."""
    from ministeer.adapters.positions import check_positions
    with pytest.raises(ValueError, match=message):
        check_positions(text)
    assert check_positions("f1+l1") == "f1+l1" and check_positions(None) is None
