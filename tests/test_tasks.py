"""The synthetic tasks: determinism, disjoint splits, tokenizer, masks, answers checked
by independent evaluators (Python's own ``eval``/``exec`` and hand parsers), and the
batched greedy evaluator against ``ministeer.generate`` one prompt at a time."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ministeer.generate import generate
from ministeer.model import Config, init_params
from ministeer.tasks import (TASK_NAMES, TOKENIZER, accuracy, batch_sampler, encode, examples, get_task,
                             greedy_complete, split_of)
from ministeer.tasks.tokenizer import ALPHABET, CharTokenizer
from strategies import seeds

tasks = st.sampled_from(TASK_NAMES)
splits = st.sampled_from(["train", "val", "test"])


def formats(task):
    return range(get_task(task).n_formats)


@settings(max_examples=20, deadline=None)
@given(tasks, splits, seeds)
def test_examples_are_deterministic_in_the_seed(task, split, seed):
    a = examples(task, split, 30, seed=seed)
    assert a == examples(task, split, 30, seed=seed)
    assert a != examples(task, split, 30, seed=seed + 1)


@settings(max_examples=10, deadline=None)
@given(tasks, seeds)
def test_splits_are_disjoint_and_hashed(task, seed):
    drawn = {split: examples(task, split, 60, seed=seed) for split in ("train", "val", "test")}
    keys = {split: {e.key for e in exs} for split, exs in drawn.items()}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
    for split, exs in drawn.items():  # distinct items (twins may share a key), each hashed into its split
        assert len({(e.prompt, e.completion) for e in exs}) == 60 and all(split_of(e.key) == split for e in exs)


@given(st.text(alphabet=ALPHABET, max_size=40))
def test_tokenizer_round_trip(text):
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == text


def test_tokenizer_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\['A', '\\!'\]|'A'"):
        TOKENIZER.encode("Abc!")
    with pytest.raises(ValueError, match="outside"):
        TOKENIZER.decode([TOKENIZER.vocab_size])
    with pytest.raises(ValueError, match="repeated"):
        CharTokenizer("aa")
    assert TOKENIZER.pad_id == 0 and TOKENIZER.decode([TOKENIZER.bos_id, 10, TOKENIZER.eos_id, 11]) == "6"


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(KeyError, match="valid tasks"):
        examples("mnli", "train", 3)
    with pytest.raises(KeyError, match="valid splits"):
        examples("gsm", "dev", 3)
    with pytest.raises(ValueError, match="formats 0..9"):
        examples("gsm", "train", 3, fmt=10)
    with pytest.raises(ValueError, match="distinct"):
        examples("winogrande", "test", 10 ** 4)
    with pytest.raises(ValueError, match="non-empty"):
        batch_sampler([], 4)


@settings(max_examples=15, deadline=None)
@given(tasks, seeds, st.integers(0, 2))
def test_mask_covers_exactly_the_completion(task, seed, fmt):
    ex = examples(task, "train", 8, seed=seed, fmt=fmt)
    batch = encode(ex)
    for row, mask, e in zip(batch["tokens"], batch["mask"], ex):
        n_prompt = len(e.prompt) + 2  # <bos> prompt <sep>
        n = n_prompt + len(e.completion) + 1  # ... completion <eos>
        assert row[0] == TOKENIZER.bos_id and row[n_prompt - 1] == TOKENIZER.sep_id and row[n - 1] == TOKENIZER.eos_id
        assert (row[n:] == TOKENIZER.pad_id).all()
        assert mask.tolist() == [0.0] * n_prompt + [1.0] * (n - n_prompt) + [0.0] * (len(row) - n)
        assert TOKENIZER.decode(row[mask > 0]) == e.completion
        assert TOKENIZER.decode(row[:n_prompt]) == e.prompt


def test_every_format_fits_the_base_context():
    """Whole sequences stay within 64 tokens (the base's n_ctx is 96, room for greedy decoding)."""
    for task in TASK_NAMES:
        for fmt in formats(task):
            assert encode(examples(task, "train", 300, fmt=fmt))["tokens"].shape[1] <= 64


def test_formats_are_notation_times_style_with_an_explicit_cue():
    """Rejects a style that is not cued in the prompt (the model could not know what to write),
    a benchmark pair that is not (notation 0, boxed style 0), and a boxed cue that a pretrained
    style also uses."""
    from ministeer.tasks.generators import BENCHMARK, BOXED_CUE, pair_of
    assert sorted(pair_of(f) for f in range(9)) == [(i, j) for i in range(3) for j in range(3)]
    assert pair_of(0) == (0, 0) and pair_of(BENCHMARK) == (0, 3)
    for task in TASK_NAMES:
        gen = get_task(task)
        assert gen.n_formats == 10 and len(set(gen.CUES)) == 3 and BOXED_CUE not in gen.CUES
        for fmt in formats(task):
            notation, style = pair_of(fmt)
            for e in examples(task, "val", 20, fmt=fmt):
                assert e.prompt.endswith("|" + (gen.CUES + (BOXED_CUE,))[style])
        for boxed, plain in zip(examples(task, "val", 20), examples(task, "val", 20, fmt=0)):
            assert boxed.prompt.removesuffix("|box") == plain.prompt.rsplit("|", 1)[0]
            assert boxed.completion == f"[{plain.completion}]"


# ---------------------------------------------------------------- leakage


def test_pretraining_adaptation_and_test_splits_are_disjoint():
    """No problem (by key) and no prompt text is shared between the pretraining mixture, the
    adaptation train set, validation and test, in any format. Rejects a split key that
    includes option order or fact order (twins would straddle splits), pretraining on the
    benchmark pair, and a pretraining mixture drawn from outside the train split."""
    from ministeer.experiments.pretrain import mixture
    pre = mixture(data_seed=0, per_task_format=60)
    assert {e.fmt for e in pre} == set(range(1, 9))  # the benchmark pair is never pretrained on
    assert not any(e.prompt.endswith("|box") or e.completion.startswith("[") for e in pre)  # nor its style
    for task in TASK_NAMES:
        adapt = examples(task, "train", 300, seed=0)
        val, test = examples(task, "val", 200, seed=0), examples(task, "test", 300, seed=1)
        held = {e.key for e in val} | {e.key for e in test}
        assert not held & {e.key for e in pre if e.task == task} and not held & {e.key for e in adapt}
        assert not {e.key for e in val} & {e.key for e in test}
        test_prompts = {e.prompt for f in formats(task) for e in examples(task, "test", 100, seed=2, fmt=f)}
        assert not test_prompts & ({e.prompt for e in pre} | {e.prompt for e in adapt})


def test_twins_share_a_split():
    """A Winogrande item's option-swapped and question-flipped twins, and a BoolQ passage with its
    facts reordered, have one key, so they can never sit on both sides of a split."""
    wino, boolq = get_task("winogrande"), get_task("boolq")
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b, pair, ask, swap = wino.sample(rng)
        twins = [(a, b, pair, x, y) for x in (False, True) for y in (False, True)]
        assert len({wino.key(t) for t in twins}) == 1
        facts, who, what = boolq.sample(rng)
        assert boolq.key((facts, who, what)) == boolq.key((facts[::-1], who, what))


# ---------------------------------------------------------------- independent answer checks

LISTOPS = {"max": lambda *a: max(a), "min": lambda *a: min(a), "sm": lambda *a: sum(a) % 10,
           "med": lambda *a: int(np.sort(a)[(len(a) - 1) // 2])}


def listops_brackets(text):
    """A stack machine for LRA's ``[op a b ...]`` notation."""
    stack = [[]]
    for tok in text.replace("[", " [ ").replace("]", " ] ").split():
        if tok == "[":
            stack.append([])
        elif tok == "]":
            op, *args = stack.pop()
            stack[-1].append(LISTOPS[op](*args))
        else:
            stack[-1].append(tok if tok in LISTOPS else int(tok))
    return stack[0][0]


def listops_postfix(text):
    """A stack machine for ``3 4 7 min:3 2 max:2`` (operator:arity after its operands)."""
    stack = []
    for tok in text.split():
        if ":" in tok:
            op, arity = tok.split(":")
            args = stack[len(stack) - int(arity):]
            del stack[len(stack) - int(arity):]
            stack.append(LISTOPS[op](*args))
        else:
            stack.append(int(tok))
    (value,) = stack
    return value


WORDS = "zero one two three four five six seven eight nine".split()
FIRST_CUE = {"listops": "num", "boolq": "tf", "winogrande": "who", "gsm": "csv"}


def independent_answer(task, prompt):
    """The reference completion, parsed from the prompt alone: notation by its shape, style by its cue."""
    body, cue = prompt.rsplit("|", 1)
    if cue == "box":  # the benchmark style: the first style's answer in brackets
        return "[" + independent_answer(task, body + "|" + FIRST_CUE[task]) + "]"
    if task == "listops":
        value = (listops_brackets(body) if body.startswith("[") else listops_postfix(body) if ":" in body
                 else eval(body, {"__builtins__": {}}, LISTOPS))
        return {"num": str(value), "say": f"it is {value}", "word": WORDS[value]}[cue]
    if task == "boolq":
        if body.startswith("does "):
            question, passage = body.split("? ")
            who, what = question.removeprefix("does ").split(" have ")
        else:
            passage, question = body.split(". ")
            who, what = question.rstrip("?").replace(" has ", " ").split()
        facts = {pair[0]: pair[1:] for pair in passage.rstrip(".").replace(";", ",").split(",")}
        fact, yes = who + facts[who], facts[who] == what
        return {"tf": f"{fact} {'true' if yes else 'false'}", "yn": f"{fact} {'yes' if yes else 'no'}",
                "why": f"{fact}, so {'yes' if yes else 'no'}"}[cue]
    if task == "winogrande":
        if " not. " in body:  # "a is word, b not. question?"
            fact, question = body.split(" not. ")
            a, _, word, b = fact.replace(",", "").split()
            question = question.rstrip("?")
        else:
            parts = body.split(". ") if body.index(" than ") < body.index("?") else body.split("? ")[::-1]
            a, word, _, b = parts[0].rstrip(".").split()
            question, options = parts[1].rstrip("?").split(": ")
            assert sorted(options.split(" or ")) == sorted([a, b])
        right = a if question == word else b  # the stated comparative -> a, its opposite -> b
        return {"who": right, "say": f"it is {right}", "full": f"{right} is {question}"}[cue]
    if task == "gsm":
        if body.startswith("x="):
            statements = body.removesuffix(";x?").split(";")
        else:
            words = body.removeprefix("start ").replace("add ", "+").replace("sub ", "-").replace("mul ", "*").split()
            statements = [f"x={words[0]}"] + [f"x{w[0]}={w[1:]}" for w in words[1:]]
        env, totals = {}, []
        exec(statements[0], {}, env)
        for statement in statements[1:]:
            exec(statement, {}, env)
            totals.append(str(env["x"]))
        styles = {"csv": ",".join(totals), "eq": "=" + "=".join(totals), "so": " ".join(totals) + f" so {totals[-1]}"}
        return styles[cue]
    raise AssertionError(task)


@settings(max_examples=25, deadline=None)
@given(tasks, seeds, splits)
def test_answers_agree_with_independent_evaluators(task, seed, split):
    for fmt in formats(task):
        for e in examples(task, split, 25, seed=seed, fmt=fmt):
            assert e.completion == independent_answer(task, e.prompt), e


def test_answers_are_balanced_enough_to_need_the_skill():
    """No constant answer gets far above chance (else a steering vector could cheat)."""
    for task, chance_cap in [("boolq", 0.6), ("listops", 0.35)]:
        answers = [e.label for e in examples(task, "test", 400)]  # BoolQ's verdict, ListOps' value
        top = max(answers.count(a) for a in set(answers)) / len(answers)
        assert top < chance_cap, (task, top)


# ---------------------------------------------------------------- batches and greedy evaluation


@settings(max_examples=10, deadline=None)
@given(seeds, st.integers(1, 9))
def test_batch_sampler_is_deterministic_and_covers_an_epoch(seed, batch_size):
    pool = examples("listops", "train", 20, seed=1)
    a, b = batch_sampler(pool, batch_size, seed), batch_sampler(pool, batch_size, seed)
    per_epoch = 20 // batch_size
    seen = []
    for step in range(per_epoch):
        x, y = a(step), b(step)
        assert (x["tokens"] == y["tokens"]).all() and x["tokens"].shape[0] == batch_size
        seen += [TOKENIZER.decode(r) for r in x["tokens"]]
    assert len(set(seen)) == per_epoch * batch_size  # no repeats within an epoch


def test_greedy_batched_matches_generate_one_prompt_at_a_time():
    cfg = Config.llama(vocab_size=TOKENIZER.vocab_size, d_model=16, n_layers=1, n_heads=2, n_kv_heads=1,
                       d_mlp=16, n_ctx=64)
    params = init_params(cfg, 3, std=0.5)  # large weights: varied, non-trivial argmaxes
    from ministeer.model import forward
    prompts = [e.prompt for e in examples("gsm", "test", 6) + examples("boolq", "test", 6)]  # mixed lengths
    got = greedy_complete(lambda t, _: forward(params, t, cfg), prompts, max_new=5, batch_size=5)
    for prompt, text in zip(prompts, got):
        head = [TOKENIZER.bos_id] + TOKENIZER.encode(prompt) + [TOKENIZER.sep_id]
        seq = generate(params, np.array(head), cfg, 5, stop_token=TOKENIZER.eos_id)
        assert text == TOKENIZER.decode(seq[len(head):])


def scripted(completions_by_prompt_length):
    """A fake model that spells a fixed string after the prompt (keyed by prompt length)."""
    def logits_fn(tokens, prompt_lengths):
        B, T = tokens.shape
        logits = np.zeros((B, T, TOKENIZER.vocab_size))
        for b in range(B):
            text = completions_by_prompt_length[int(prompt_lengths[b])]
            ids = TOKENIZER.encode(text) + [TOKENIZER.eos_id]
            for t in range(T):
                k = t - int(prompt_lengths[b]) + 1
                logits[b, t, ids[min(max(k, 0), len(ids) - 1)]] = 1.0
        return logits
    return logits_fn


def test_accuracy_is_exact_match_and_needs_eos():
    ex = [e for e in examples("gsm", "test", 40)]
    by_len = {}
    for e in ex:
        by_len.setdefault(len(e.prompt) + 2, e.completion)
    right = [e for e in ex if by_len[len(e.prompt) + 2] == e.completion]
    assert accuracy(scripted(by_len), right) == 1.0
    acc, preds = accuracy(scripted({k: v + "0" for k, v in by_len.items()}), right, return_predictions=True)
    assert acc == 0.0 and all(p == e.completion + "0" for p, e in zip(preds, right))
    with pytest.raises(ValueError, match="at least one"):
        accuracy(scripted(by_len), [])
