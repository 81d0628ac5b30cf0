"""Scoring without a model: scripted ``logits_fn``s that write a chosen continuation, so each rule
of ``tasks/evaluate.py`` is checked on its own -- an answer must stop (``<eos>``) to count, in
greedy decoding and in forced scoring alike; each row is read at its own end; the prompt lengths
an adapter sees stay the prompt's; ``same_length_batches`` decodes one prompt length per call.
Each test names the wrong implementation it rejects (and its mutant in scripts/mutants.py)."""
import numpy as np
import pytest

from ministeer.tasks import accuracy, examples
from ministeer.tasks.evaluate import greedy_complete
from ministeer.tasks.tokenizer import TOKENIZER

V = TOKENIZER.vocab_size


def scripted(continuation, calls=None):
    """``logits_fn`` whose argmax after ``<sep>`` writes ``continuation(prompt ids)`` (a token list),
    then ``<pad>`` forever; before ``<sep>``, ``<pad>``. Records (rows, prompt_lengths) per call."""
    def fn(tokens, prompt_lengths):
        tokens = np.asarray(tokens)
        if calls is not None:
            calls.append((tokens.shape[0], np.array(prompt_lengths)))
        logits = np.zeros(tokens.shape + (V,))
        logits[..., TOKENIZER.pad_id] = 1.0
        for b, row in enumerate(tokens):
            sep = int(np.nonzero(row == TOKENIZER.sep_id)[0][0])
            wanted = continuation(list(row[1:sep]))
            for t in range(sep, tokens.shape[1]):
                if t - sep < len(wanted):
                    logits[b, t] = 0.0
                    logits[b, t, wanted[t - sep]] = 1.0
        return logits
    return fn


EXS = examples("gsm", "test", 6, seed=5, fmt=4)
MAX_NEW = max(len(e.completion) for e in EXS) + 1
ANSWER = {tuple(TOKENIZER.encode(e.prompt)): TOKENIZER.encode(e.completion) for e in EXS}


def answer(prompt_ids):
    return ANSWER[tuple(int(i) for i in prompt_ids)]


@pytest.mark.parametrize("forced", [False, True], ids=["greedy", "forced"])
def test_an_answer_counts_only_if_it_stops(forced):
    """The reference then ``<eos>``: right. The reference running on, or cut short then stopped:
    wrong, in greedy decoding and in forced scoring. Rejects decoding only as many tokens as the
    longest reference (mutant ``exact_no_room_for_eos``: an answer that runs on would count)."""
    stops = scripted(lambda p: answer(p) + [TOKENIZER.eos_id])
    runs_on = scripted(lambda p: answer(p) + answer(p))
    cut = scripted(lambda p: answer(p)[:-1] + [TOKENIZER.eos_id])
    assert accuracy(stops, EXS, forced=forced) == 1.0
    assert accuracy(runs_on, EXS, forced=forced) == 0.0
    assert accuracy(cut, EXS, forced=forced) == 0.0


def test_each_row_is_read_at_its_own_end_and_sees_its_prompt_length():
    """Ragged prompts in one batch: every row's next token is read at its own last token, not at the
    batch's padded end, and every call gives the adapter the prompt lengths ``<bos> prompt <sep>``,
    unchanged while the answer grows. Rejects reading every row at the last column (mutant
    ``greedy_reads_last_column``) and prompt lengths that grow with the answer (mutant
    ``greedy_lengths_grow``: an adapter at ``l1`` would move onto the answer)."""
    calls = []
    stops = scripted(lambda p: answer(p) + [TOKENIZER.eos_id], calls)
    prompts = [e.prompt for e in EXS]
    assert len({len(p) for p in prompts}) > 1
    assert greedy_complete(stops, prompts, MAX_NEW) == [e.completion for e in EXS]
    heads = np.array([len(TOKENIZER.encode(p)) + 2 for p in prompts])
    assert len(calls) > 1 and all(np.array_equal(n, heads) for _, n in calls)


def test_same_length_batches_decode_one_prompt_length_per_call_in_the_prompts_order():
    """With ``same_length_batches`` every call holds prompts of one token length (so "last" is each
    row's newest token), and the completions come back in the prompts' order. Rejects one batch
    for all lengths (mutant ``same_length_one_group``)."""
    calls = []
    prompts = [e.prompt for e in EXS]
    out = greedy_complete(scripted(lambda p: answer(p) + [TOKENIZER.eos_id], calls), prompts, MAX_NEW,
                          same_length_batches=True)
    assert out == [e.completion for e in EXS]
    assert all(len(set(n.tolist())) == 1 for _, n in calls)
    assert {int(n[0]) for _, n in calls} == {len(TOKENIZER.encode(p)) + 2 for p in prompts}


def test_batches_of_any_size_decode_the_same():
    """``batch_size`` only splits the work: batches of 1, 4 and all give the same completions, and
    no call holds more rows than asked. Rejects a chunking that drops or repeats rows."""
    prompts = [e.prompt for e in EXS]
    for size in (1, 4, 512):
        calls = []
        fn = scripted(lambda p: answer(p) + [TOKENIZER.eos_id], calls)
        assert greedy_complete(fn, prompts, MAX_NEW, batch_size=size) == [e.completion for e in EXS]
        assert max(rows for rows, _ in calls) <= size


def test_official_scoring_gives_the_answer_the_tasks_room():
    """``match="official"`` decodes the task's own ``max_new_tokens`` (GSM: 100), not the
    reference's length: a model that writes 30 tokens of working before its boxed answer is right
    under the official rule and wrong under exact match. Rejects official scoring cut at the
    reference length plus one (mutant ``official_cut_at_reference``)."""
    from ministeer.tasks import BENCHMARK
    exs = examples("gsm", "test", 4, seed=2, fmt=BENCHMARK)
    answers = {tuple(TOKENIZER.encode(e.prompt)): TOKENIZER.encode(e.completion) for e in exs}
    working = TOKENIZER.encode("=" * 30)
    fn = scripted(lambda p: working + answers[tuple(int(i) for i in p)] + [TOKENIZER.eos_id])
    assert accuracy(fn, exs, match="official") == 1.0
    assert accuracy(fn, exs) == 0.0
