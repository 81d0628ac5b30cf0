"""The official code's regex answer extraction (https://github.com/SprocketLab/steerling), as an
evaluation option next to ministeer's exact match."""
import numpy as np
import pytest

from ministeer.tasks import TOKENIZER, accuracy, examples
from ministeer.tasks.extract import OFFICIAL_MAX_NEW, extract_bool, extract_name, extract_number, official_correct


def test_numeric_rule_by_hand():
    """First number after the last "answer:", else the last number; the official pattern reads
    1,234 as one number (so our "9,180" is 9180 -- the official behaviour, kept)."""
    assert extract_number("12,9,18") == 18.0
    assert extract_number("answer: 7 then 9") == 7.0
    assert extract_number("answer: 1\nanswer: 5, later 8") == 5.0   # the last "answer:" line
    assert extract_number("answer: 1 answer: 5") == 1.0             # (.+) is greedy: one match per line
    assert extract_number("x -3") == -3.0
    assert extract_number("12,9,180") == 9180.0
    assert extract_number("none") is None


def test_bool_and_name_rules_by_hand():
    assert extract_bool("answer: false, true") == "false"
    assert extract_bool("it is true") == "true" and extract_bool("truth") is None
    assert extract_name("ann or tom") == "ann" and extract_name("xyz") is None


@pytest.mark.parametrize("task, output, reference, ok", [
    ("gsm", "12,9,18", "12,9,18", True),
    ("gsm", "12,9,18 so 18", "12,9,18", True),      # exact match would reject the trailing text
    ("gsm", "12,9,17", "12,9,18", False),
    ("listops", "3", "3", True), ("listops", "3 3", "3", True), ("listops", "4", "3", False),
    ("boolq", "false.", "false", True), ("boolq", "true", "false", False),
    ("winogrande", "tom!", "tom", True), ("winogrande", "ann tom", "tom", False),
    # boxed references (the benchmark style) are read inside their brackets, boxed answers too
    ("gsm", "12,9,18", "[12,9,18]", True), ("listops", "[3]", "[3]", True), ("listops", "[4]", "[3]", False),
    ("boolq", "false", "[false]", True), ("boolq", "true", "[false]", False),
    ("winogrande", "[tom]", "[tom]", True),
    ("boolq", "b4 false", "[f0 false]", True), ("boolq", "f0 true", "[f0 false]", False),  # the verdict decides
])
def test_official_correct(task, output, reference, ok):
    assert official_correct(task, output, reference) is ok


def test_official_accuracy_forgives_text_after_the_answer_exact_match_does_not():
    """A model that writes the right answer and then runs on: exact match 0, official extraction 1.
    It also generates the task's official max_new_tokens (capped by the context)."""
    ex = examples("boolq", "val", 4, seed=0)
    seen = []

    def logits_fn(tokens, n):  # row b at position t writes character t + 1 - n[b] of "<answer> xxxx..."
        B, T = tokens.shape
        seen.append(T - int(np.min(n)))
        logits = np.zeros((B, T, TOKENIZER.vocab_size))
        for b, e in enumerate(ex):
            text = e.completion + " " + "x" * 200
            for t in range(int(n[b]) - 1, T):
                logits[b, t, TOKENIZER.encode(text[t + 1 - int(n[b])])[0]] = 1.0
        return logits

    assert accuracy(logits_fn, ex) == 0.0
    seen.clear()
    assert accuracy(logits_fn, ex, match="official") == 1.0
    assert len(seen) == OFFICIAL_MAX_NEW["boolq"]  # no <eos>: it runs for all 10 new tokens
    with pytest.raises(ValueError, match="exact"):
        accuracy(logits_fn, ex, match="regex")
