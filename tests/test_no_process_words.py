"""The code and docs describe the project as it is, not how its work was organised.

A reader of ``ministeer/``, ``docs/``, ``examples/`` or the README has no use for an
issue number, a pull request, a work session, a helper or agent that did the work, "a
prototype measured", or a benchmark version ("v3's base"): none of them can be looked up
from the repository, and each goes stale. This test fails on any of them.

Only prose is read, to avoid false positives from code: in .py files the comments and
string literals (docstrings included; an identifier such as ``v5``, a value tensor, is
code), in Markdown the text outside fenced code blocks and inline code spans. The
patterns, and why each is narrow:

* ``issue 5``, ``issue #12``, ``the issue's``: the word followed by a number, or "the
  issue" (a tracker item); "an issue with X" in the ordinary sense does not match.
* ``PR #3``, ``pull request``.
* ``session``: a work session ("no device was lent to this session").
* ``subagent``, ``agent``, and ``helper session/agent/worker`` (a plain "helper", as in
  "pytree helpers", is ordinary code vocabulary and is allowed).
* ``prototype``: an earlier implementation that the repository does not contain.
* ``v1`` .. ``v9`` as a word (``v4``, ``v3's``): benchmark or base versions.

It rejects the text as it stood before the cleanup (``experiments/__init__.py`` named its
issue, ``ops.py`` cited "a prototype", docs/results.md spoke of "v3's base").
"""
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATTERNS = {
    "an issue number": r"\bissues? #?\d+\b|\bthe issue\b",
    "a pull request": r"\bPR #?\d+\b|\bpull requests?\b",
    "a work session": r"\bsessions?\b",
    "who did the work": r"\bsub-?agents?\b|\bagents?\b|\bhelpers? (?:sessions?|agents?|workers?)\b",
    "a prototype": r"\bprototypes?\b",
    "a benchmark version": r"(?<![\w.-])v[1-9](?:'s)?(?![\w.-])",
}
PROCESS = re.compile("|".join(f"(?:{p})" for p in PATTERNS.values()), re.I)


def files():
    found = [ROOT / "README.md"]
    for folder in ("ministeer", "docs", "examples"):
        found += sorted(p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md"))
    return found


def python_prose(text):
    """``[(line number, text)]`` of the comments and string literals of a Python source."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [(tok.start[0], tok.string) for tok in tokens if tok.type in (tokenize.COMMENT, tokenize.STRING)]


def markdown_prose(text):
    """``[(line number, text)]`` of a Markdown page, without fenced code and inline code spans."""
    prose, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            prose.append((number, re.sub(r"`[^`]*`", "", line)))
    return prose


def prose_hits(text, suffix):
    """``[(line number, matched text)]`` for every process word in the prose of ``text``."""
    prose = python_prose(text) if suffix == ".py" else markdown_prose(text)
    return [(first_line + chunk.count("\n", 0, match.start()), match.group(0))
            for first_line, chunk in prose for match in PROCESS.finditer(chunk)]


def process_words(path):
    return [f"{path.relative_to(ROOT)}:{line}: {word!r}" for line, word in prose_hits(path.read_text("utf8"), path.suffix)]


@pytest.mark.parametrize("path", files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_process_words(path):
    assert process_words(path) == []


@pytest.mark.parametrize("text, hit", [
    ("see issue 5", "issue 5"), ("(issue #12)", "issue #12"), ("as the issue allows", "the issue"),
    ("PR #3", "PR #3"), ("no device was lent to this session", "session"), ("a subagent ran it", "subagent"),
    ("a prototype measured", "prototype"), ("on v3's base", "v3's"), ("the v4 benchmark", "v4"),
])
def test_the_patterns_catch_what_they_name(text, hit):
    assert [m.group(0) for m in PROCESS.finditer(text)] == [hit]


@pytest.mark.parametrize("text, suffix", [
    ("pytree helpers", ".md"), ("an issue with the cache", ".md"), ("the v_proj weight", ".md"), ("uv5 and v10", ".md"),
    ("the `v3` code span", ".md"), ("```\nv3 = 1\n```", ".md"), ("v5 = xp.reshape(v)  # values, per KV head", ".py"),
])
def test_ordinary_words_pass(text, suffix):
    assert prose_hits(text, suffix) == []
