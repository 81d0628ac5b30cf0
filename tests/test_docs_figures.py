"""One source for each figure the README, the docs and ``--help`` quote.

docs/results.md's "Runtimes" table holds the measured wall times, and its base-model table
the pretraining stages. Everything else that states a duration or a count must agree with
them, and so must ``ministeer verify``'s row count with what the README says it prints.
"""
import re
from pathlib import Path

import pytest

from ministeer.experiments import compare
from ministeer.theory.claims import CLAIMS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = (ROOT / "docs" / "results.md").read_text("utf8")
README = (ROOT / "README.md").read_text("utf8")
REPRODUCING = (ROOT / "docs" / "07-reproducing.md").read_text("utf8")
WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def runtime(job):
    """The wall-time cell of the Runtimes table's row for ``job`` (its first cell, exactly)."""
    table = RESULTS.split("## Runtimes", 1)[1]
    [cell] = [line.split(" | ")[2] for line in table.splitlines() if line.startswith(f"| {job} |")]
    return cell


def headline_minutes():
    seconds = int(re.search(r"\*\*(\d+) s\*\*, idle", runtime("`ministeer compare` (headline)")).group(1))
    return round(seconds / 60)


def all_minutes():
    return int(re.search(r"about (\d+) min with the headline's runs included", runtime("`ministeer compare --all`"))
               .group(1))


def compare_help(capsys):
    with pytest.raises(SystemExit):
        compare.main(["--help"])
    return " ".join(capsys.readouterr().out.split())


def minutes_said_near(text, anchor):
    """Every "about N min" / "~N min" in the sentence-sized stretch after each ``anchor``."""
    found = []
    text = " ".join(text.split())  # line breaks in the Markdown source do not matter
    for match in re.finditer(re.escape(anchor), text):
        stretch = re.split(r"(?<=[.;])\s", text[match.end():match.end() + 200], maxsplit=1)[0]
        found += [int(n) for n in re.findall(r"(?:about |~)(\d+) min", stretch)]
    return found


def command_comment(text, command):
    """The minutes quoted on the code-block line that runs exactly ``command`` (then a comment)."""
    lines = [line for line in text.splitlines() if re.match(rf"{re.escape(command)} +#", line)]
    assert lines, f"no line runs {command!r}"
    return [int(n) for line in lines for n in re.findall(r"(?:about |~)(\d+) min", line)]


def test_the_quick_start_says_how_long_its_first_command_takes():
    """The README's first command, `ministeer compare`, carries the headline's measured time
    (rejects a Quick start with no time, or one that disagrees with the Runtimes table)."""
    quick_start = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    first = next(line for line in quick_start.splitlines() if "ministeer compare" in line)
    assert f"about {headline_minutes()} min" in first
    assert minutes_said_near(README, "`ministeer compare` takes") == [headline_minutes()]
    assert command_comment(REPRODUCING, "ministeer compare") == [headline_minutes()]


def test_compare_all_takes_one_time_everywhere(capsys):
    """README, docs/07, results.md's text and `compare --help` quote the Runtimes table's
    `--all` figure (rejects the "35 / ~40 / 45 min" they once gave)."""
    n = all_minutes()
    assert minutes_said_near(README, "`ministeer compare --all`") == [n]
    assert command_comment(REPRODUCING, "ministeer compare --all") == [n]
    assert minutes_said_near(compare_help(capsys), "--all every registered method") == [n]
    prose = " ".join(RESULTS.split("## Runtimes", 1)[1].split("\n\n", 2)[2].split())  # the text below the table
    assert set(int(m) for m in re.findall(r"`--all`[^.]*?about (\d+) min", prose)) == {n}


def test_the_pretraining_stages_are_counted_once():
    """The stage table in results.md has as many rows as README and docs/07 say stages
    (rejects docs/07's "five" beside the README's "eight")."""
    table = RESULTS.split("| stage | steps |", 1)[1].split("\n\n", 1)[0]
    stages = len(re.findall(r"^\| \d+ \|", table, re.M))
    assert stages == 8
    word = WORDS[stages]
    assert f"{word} pretraining stages" in README and f"Pretrained in {word} stages" in RESULTS
    assert f"{word} `ministeer pretrain` stages" in REPRODUCING
    for text in (README, REPRODUCING, RESULTS):
        said = re.findall(r"\b(\w+) (?:pretraining|`ministeer pretrain`) stages", text)
        assert set(said) <= {word}, said


def test_verify_prints_as_many_rows_as_the_readme_says():
    """One row per claim and model: two per model-dependent claim, one per claim on random
    matrices (rejects "one row per claim", which is 15, not the 28 it prints)."""
    rows = sum(2 if claim.needs_model else 1 for claim in CLAIMS.values())
    single = sum(not claim.needs_model for claim in CLAIMS.values())
    readme = " ".join(README.split())
    assert (f"one row per claim and model ({rows} rows: {len(CLAIMS) - single} claims on a Llama-style and a "
            f"GPT-2-style model, {single} on random matrices)") in readme
    assert "row per claim." not in readme
