"""docs/results.md shows what the committed runs give.

``docs/data/`` holds the records of the runs that docs/results.md reports (``compare``'s and
``compare --all``'s ``results.json``, ``analyze``'s ``analysis.json``). These tests render the
tables again from those records, with today's report code and grids, and look for every
line in the page, and the other way round: every row of a table of the kinds the report
writes must come from those records. A table edited by hand, a page left stale after a
rerun, a row or table the report no longer writes, or a change to how intervals, ratios or
edge flags are computed fails here, without rerunning anything.
"""
import json
from pathlib import Path

import pytest

from ministeer.experiments import analyze, report
from ministeer.experiments.compare import Settings
from ministeer.experiments.pretrain import load_base

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGE = DOCS / "results.md"
# Header openings of the tables that report.render and analyze.markdown write (the page's
# other tables, such as the verdicts and the format-0 table, are written by hand).
REPORT_TABLES = ("| Method | Params |", "| question |", "| joint method, task |",
                 "| task | MLP share", "| task | base (no steer)")


def saved_settings(meta):
    return Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["settings"].items()})


def lines_missing_from_page(markdown):
    page = set(PAGE.read_text().splitlines())  # whole lines: a row must not match inside another
    return [line for line in markdown.splitlines() if line.strip() and line not in page]


def saved_run(name):
    return json.loads((DOCS / "data" / f"{name}.json").read_text())


def rendered_compare(name):
    saved = saved_run(name)
    settings = saved_settings(saved["meta"])
    base = {t: saved["summary"]["base"]["tasks"][t]["mean"] / 100 for t in settings.tasks}
    _, cfg = load_base()
    rows = report.summarize(saved["runs"], base, settings, cfg)
    return report.render(rows, saved["runs"], settings, cfg)


def rendered_analyses():
    return analyze.markdown(json.loads((DOCS / "data" / "analysis.json").read_text()))


def page_tables():
    """The page's markdown tables, each as its list of lines."""
    tables, current = [], []
    for line in PAGE.read_text().splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables, current = tables + [current], []
    return tables


@pytest.mark.parametrize("name", ["compare", "compare-all"])
def test_the_page_shows_the_tables_that_its_committed_runs_give(name):
    assert lines_missing_from_page(rendered_compare(name)) == []


def test_every_report_table_in_the_page_comes_from_the_committed_runs():
    rendered = set("\n".join([rendered_compare("compare"), rendered_compare("compare-all"),
                              rendered_analyses()]).splitlines())
    report_tables = [t for t in page_tables() if t[0].startswith(REPORT_TABLES)]
    assert len(report_tables) == 8  # per compare run: results, questions, joint modes; two analyses
    assert [line for table in report_tables for line in table if line not in rendered] == []


def test_the_committed_runs_are_complete():
    for name in ("compare", "compare-all"):
        saved = saved_run(name)
        settings = saved_settings(saved["meta"])
        done = {(r["method"], r["task"], r["seed"]) for r in saved["runs"] if r["accuracy"] is not None}
        expected = {(m, t, s) for m in settings.methods for t in settings.tasks for s in settings.seeds}
        assert expected <= done, f"{name}: {len(expected - done)} runs missing"


def test_the_page_shows_the_oracle_analyses_that_its_committed_run_gives():
    assert lines_missing_from_page(rendered_analyses()) == []
