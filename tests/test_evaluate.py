"""Exact match without decoding: ``accuracy(..., forced=True)`` must give, example by example,
the verdict of greedy decoding (``tasks/evaluate.py``, ``forced_exact_match``)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from adapter_strategies import randomize
from ministeer import adapters as A
from ministeer.experiments.pretrain import load_base
from ministeer.model import forward
from ministeer.tasks import TASK_NAMES, TOKENIZER, accuracy, examples, forced_exact_match, greedy_complete

KINDS = ("right", "wrong token", "stops early", "runs on")


def script(completion, kind, where):
    """What a scripted model writes instead of ``completion``: the reference itself, or a
    near miss at character ``where`` (another character, an early stop, no stop)."""
    if kind == "right":
        return completion
    i = where % len(completion)
    if kind == "wrong token":
        return completion[:i] + ("x" if completion[i] != "x" else "y") + completion[i + 1:]
    if kind == "stops early":
        return completion[:i]
    return completion + "0"


def prefix_model(scripts):
    """A causal fake model: after ``<bos> prompt <sep>`` it spells ``scripts[prompt]`` and then
    ``<eos>``, as long as what it was fed agrees with that script; off script it writes "z"
    forever. Its next token depends on every token before it, as a real model's does."""
    def logits_fn(tokens, prompt_lengths):
        B, T = tokens.shape
        logits = np.zeros((B, T, TOKENIZER.vocab_size))
        for b in range(B):
            n = int(prompt_lengths[b])
            target = TOKENIZER.encode(scripts[TOKENIZER.decode(tokens[b, 1:n - 1])]) + [TOKENIZER.eos_id]
            for t in range(n - 1, T):
                fed = list(tokens[b, n:t + 1])
                on_script = fed == target[:len(fed)] and len(fed) < len(target)
                logits[b, t, target[len(fed)] if on_script else TOKENIZER.encode("z")[0]] = 1.0
        return logits
    return logits_fn


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(TASK_NAMES), st.integers(0, 10_000),
       st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 20)), min_size=1, max_size=8))
def test_forced_verdicts_are_greedy_decodings_verdicts(task, seed, plans):
    """Rejects a forced check that is off by one position, that ignores the closing <eos> (an
    answer that runs on), or that accepts an early stop; each near miss is scored wrong by both."""
    exs = examples(task, "test", len(plans), seed=seed)
    scripts = {e.prompt: script(e.completion, kind, where) for e, (kind, where) in zip(exs, plans)}
    fn = prefix_model(scripts)
    greedy = [p == e.completion for p, e in zip(greedy_complete(fn, [e.prompt for e in exs],
                                                                max(len(e.completion) for e in exs) + 1), exs)]
    assert forced_exact_match(fn, exs) == greedy == [scripts[e.prompt] == e.completion for e in exs]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_forced_and_greedy_agree_on_the_shipped_base_with_a_prompt_position_adapter(task):
    """Real numerics, float32: the base in a pretrained format (most answers right, some wrong),
    alone and with a random LoReFT adapter at the first and last prompt positions, which reads
    ``prompt_lengths``. Rejects passing the wrong prompt lengths or scoring the padded tail."""
    params, cfg = load_base()
    exs = examples(task, "test", 60, seed=11, fmt=4)
    steer = {"reft": randomize(A.loreft(cfg, r=4, positions="f1+l1"), 0, scale=0.05)}
    for fn in (lambda t, n: forward(params, t, cfg), lambda t, n: A.adapted_forward(params, steer, t, cfg,
                                                                                     prompt_lengths=n)):
        preds = greedy_complete(fn, [e.prompt for e in exs], max(len(e.completion) for e in exs) + 1,
                                n_ctx=cfg.n_ctx)
        greedy = [p == e.completion for p, e in zip(preds, exs)]
        assert 0 < sum(greedy) and forced_exact_match(fn, exs, n_ctx=cfg.n_ctx, batch_size=25) == greedy


def test_forced_scoring_refuses_what_it_cannot_do():
    exs = examples("gsm", "test", 3)
    fn = prefix_model({e.prompt: e.completion for e in exs})
    assert accuracy(fn, exs, forced=True) == accuracy(fn, exs) == 1.0
    for bad in (dict(return_predictions=True), dict(match="official")):
        with pytest.raises(ValueError, match="forced=True"):
            accuracy(fn, exs, forced=True, **bad)
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        accuracy(fn, exs, forced=True, n_ctx=8)


def test_same_length_batches_decode_a_last_position_adapter_as_one_prompt_at_a_time():
    """An adapter with positions="last" (intervene_last) edits the input's last position. In a
    batch of prompts of several lengths that is not every row's newest token, so plain batched
    decoding gives other completions than decoding each prompt alone; batches of one prompt
    length give the same. Rejects plain batching (the last assert shows it differs here) and
    returning the completions in the grouped order instead of the prompts' order."""
    params, cfg = load_base()
    exs = examples("gsm", "test", 40, seed=3, fmt=4)
    prompts = [e.prompt for e in exs]
    assert len({len(TOKENIZER.encode(p)) for p in prompts}) > 1  # ragged, or the test shows nothing
    steer = {"steer": randomize(A.lowrank(cfg, positions="last"), 0, scale=0.5)}
    fn = lambda t, n: A.adapted_forward(params, steer, t, cfg)
    alone = [greedy_complete(fn, [p], 8, n_ctx=cfg.n_ctx)[0] for p in prompts]
    assert greedy_complete(fn, prompts, 8, n_ctx=cfg.n_ctx, same_length_batches=True) == alone
    assert greedy_complete(fn, prompts, 8, n_ctx=cfg.n_ctx) != alone
    with pytest.raises(ValueError, match="positions='last'"):
        accuracy(fn, exs, forced=True, same_length_batches=True)
