"""The official code's answer extraction, adapted to the toy tasks: an evaluation option.

ministeer scores by exact match: the greedy completion must equal the reference and stop
(``evaluate.accuracy``). The paper's official code (https://github.com/SprocketLab/steerling,
``utils/dataloaders.py``, ``utils/utils.py``) decodes greedily for a per-task number of new
tokens and then *extracts* the answer with a regular expression, so text around a right
answer is forgiven. ``accuracy(..., match="official")`` scores that way; the rules, per task:

* ``boolq`` (official BoolQ): the word after ``answer:`` if it is true/false, else the first
  standalone ``true`` or ``false``.
* ``gsm`` (official GSM8K / MAWPS): the first number after the last ``answer:``, else the
  last number in the output, compared as floats within 1e-4. The reference is the final
  total (the last of ``12,9,18``). The official number pattern reads ``1,234`` as one
  number, so in our comma-separated format a total followed by a three-digit total
  (``9,180``) is read as 9180: kept as is, it is the official behaviour.
* ``listops``: the official ListOps reads ``<answer>k</answer>``; our format has no tags, so
  the numeric rule above is used (the last number).
* ``winogrande``: the official Winogrande looks for ``option 1`` / ``option 2`` after
  ``answer:``; our options are names, so the first known name in the output is the answer.

``OFFICIAL_MAX_NEW`` holds the official per-dataset ``max_new_tokens`` (BoolQ 10,
Winogrande 5, ListOps 10, GSM8K 100), capped by the context. Tests: tests/test_extract.py.
"""
import re

from .generators import NAMES
from .tokenizer import TOKENIZER

OFFICIAL_MAX_NEW = {"boolq": 10, "winogrande": 5, "listops": 10, "gsm": 100}
NUMBER = re.compile(r"[-+]?\d{1,3}(?:,\d{3})*(?:\.\d+)?|[-+]?\d+(?:\.\d+)?")  # the official pattern
_NAME = re.compile(r"\b(" + "|".join(NAMES) + r")\b")


def extract_number(text):
    """The official numeric rule: the first number after the last ``answer:``, else the last number."""
    after = list(re.finditer(r"(?i)answer\s*:\s*(.+)", text.strip()))
    if after:
        m = NUMBER.search(after[-1].group(1).strip())
        if m:
            return float(m.group(0).replace(",", ""))
    found = list(NUMBER.finditer(text.strip()))
    return float(found[-1].group(0).replace(",", "")) if found else None


def extract_bool(text):
    """The official BoolQ rule: ``answer: true|false``, else the first standalone true/false."""
    s = text.strip().lower()
    m = re.search(r"answer\s*:\s*(true|false)", s) or re.search(r"\b(true|false)\b", s)
    return m.group(1) if m else None


def extract_name(text):
    """The first known name in the output (the official rule takes the first option named)."""
    m = _NAME.search(text.strip().lower())
    return m.group(1) if m else None


def official_correct(task, output, reference):
    """Is ``output`` right under the official extraction rule of ``task``?

    A boxed reference (the benchmark style, ``[12,9]``) is compared by what is inside the
    brackets: the rules extract the answer wherever it stands, boxed or not."""
    if reference.startswith("[") and reference.endswith("]"):
        reference = reference[1:-1]
    if task in ("gsm", "listops"):
        pred, label = extract_number(output), float(reference.split(",")[-1])
        return pred is not None and abs(pred - label) < 1e-4
    if task == "boolq":
        return extract_bool(output) == extract_bool(reference)  # the verdict, not the restated fact
    if task == "winogrande":
        return extract_name(output) == reference
    raise KeyError(f"no official extraction rule for task {task!r}; valid: {sorted(OFFICIAL_MAX_NEW)}")


def official_max_new(examples, n_ctx=None, tokenizer=TOKENIZER):
    """The official ``max_new_tokens`` of the examples' task, capped so every prompt still fits in ``n_ctx``."""
    tasks = {e.task for e in examples}
    if len(tasks) != 1:
        raise ValueError(f"official extraction scores one task at a time, got {sorted(tasks)}")
    max_new = OFFICIAL_MAX_NEW[tasks.pop()]
    if n_ctx is not None:
        longest = max(len(tokenizer.encode(e.prompt)) for e in examples) + 2  # <bos> prompt <sep>
        max_new = min(max_new, n_ctx - longest)
    return max_new
