"""docs/results.md shows what the committed runs give.

``docs/data/`` holds the records of the runs that docs/results.md reports (``compare``'s and
``compare --all``'s ``results.json``, ``analyze``'s ``analysis.json``, and the init-only run's
``results.json`` as ``init-sensitivity.json``). These tests render the
tables again from those records, with today's report code and grids, and look for every
line in the page, and the other way round: every row of a table of the kinds the report
writes must come from those records. A table edited by hand, a page left stale after a
rerun, a row or table the report no longer writes, or a change to how intervals, ratios or
edge flags are computed fails here, without rerunning anything.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from ministeer import adapters as A
from ministeer.experiments import analyze, report, stats
from ministeer.experiments.compare import Settings
from ministeer.experiments.pretrain import load_base

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGE = DOCS / "results.md"
# Header openings of the tables that report.render and analyze.markdown write (the page's
# other tables, such as the verdicts and the format-0 table, are written by hand).
COMPARE_RUNS = ("compare", "compare-all", "loreft-all", "compare-official")  # compare's results.json files in docs/data
REPORT_TABLES = ("| Method | Params |", "| question |", "| joint method, task |", "| method (its authors' setup) |",
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
    return report.render(rows, saved["runs"], settings, cfg, saved.get("shared_runs"))


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


@pytest.mark.parametrize("name", COMPARE_RUNS)
def test_the_page_shows_the_tables_that_its_committed_runs_give(name):
    assert lines_missing_from_page(rendered_compare(name)) == []


def test_every_report_table_in_the_page_comes_from_the_committed_runs():
    rendered = set("\n".join([rendered_compare(name) for name in COMPARE_RUNS] + [rendered_analyses()]).splitlines())
    report_tables = [t for t in page_tables() if t[0].startswith(REPORT_TABLES)]
    # results and questions per compare run, joint modes for three of them, the recipe table; two analyses
    assert len(report_tables) == 2 * len(COMPARE_RUNS) + 3 + 1 + 2
    assert [line for table in report_tables for line in table if line not in rendered] == []


def test_the_committed_runs_are_complete():
    for name in COMPARE_RUNS:
        saved = saved_run(name)
        settings = saved_settings(saved["meta"])
        done = {(r["method"], r["task"], r["seed"]) for r in saved["runs"] if r["accuracy"] is not None}
        expected = {(m, t, s) for m in settings.methods for t in settings.tasks for s in settings.seeds}
        assert expected <= done, f"{name}: {len(expected - done)} runs missing"


def test_the_page_shows_the_oracle_analyses_that_its_committed_run_gives():
    assert lines_missing_from_page(rendered_analyses()) == []


# The page's init-sensitivity table: per method and task, the spread of the runs when only the
# adapter's initial draw varies (``compare --seeds 0 --init-seeds 0 1 2 3 4``, records in
# docs/data/init-sensitivity.json) beside the spread over the headline's seeds, where the draw,
# the problems and the batch order all vary. Written here, from stats.cell, and checked below.
INIT_HEADER = "| method | task | initial draw only: k/n · range · mean [95% interval] · sd | every seed: k/n · range · mean [95% interval] · sd |"


def _spread(runs):
    c = stats.cell(runs)
    sd = float(np.std(c["points"]))  # over the units, as they are (no correction: a description)
    return (f"{c['learned']}/{c['n']} · {min(c['points']):.1f}–{max(c['points']):.1f} · "
            f"{c['mean']:.1f} [{c['lo']:.1f}, {c['hi']:.1f}] · sd {sd:.1f}")


def init_sensitivity_table(init_saved, headline_saved):
    """The init-sensitivity table's lines, from the two runs' records."""
    settings = saved_settings(init_saved["meta"])
    lines = [INIT_HEADER, "|---|---|---|---|"]
    for method in settings.methods:
        for task in settings.tasks:
            mine = [r for r in init_saved["runs"] if (r["method"], r["task"]) == (method, task)]
            every = [r for r in headline_saved["runs"] if (r["method"], r["task"]) == (method, task)]
            lines.append(f"| {A.METHODS[method].label} | {task} | {_spread(mine)} | {_spread(every)} |")
    return lines


def test_the_init_sensitivity_table_comes_from_its_committed_runs():
    """The page's init-sensitivity table is, line for line, what the records give (rejects a
    table typed by hand, one left stale after a rerun, or one that reads the headline's seeds
    as the init-only runs: ListOps' LoRA r=8 then reads 0/5 · 0.0–34.8 on both sides)."""
    init_saved = saved_run("init-sensitivity")
    settings = saved_settings(init_saved["meta"])
    assert list(settings.seeds) == [0] and len(settings.init_seeds) >= 5  # the data fixed, the draw varied
    expected = init_sensitivity_table(init_saved, saved_run("compare"))
    [table] = [t for t in page_tables() if t[0] == INIT_HEADER]
    assert table == expected


def init_share_of_spread(init_saved, headline_saved):
    """``(var_init, var_seeds, cells_wider, n_cells)``: the mean over cells of the runs' variance
    (points²) with only the initial draw varied and with every seed varied, and in how many
    cells the draw alone spreads them at least as far; LoReFT (0% on every draw) left out."""
    settings = saved_settings(init_saved["meta"])
    var_init, var_seeds = [], []
    for method in settings.methods:
        if method == "loreft":
            continue
        for task in settings.tasks:
            var_init.append(np.var([100 * r["accuracy"] for r in init_saved["runs"]
                                    if (r["method"], r["task"]) == (method, task)]))
            var_seeds.append(np.var([100 * r["accuracy"] for r in headline_saved["runs"]
                                     if (r["method"], r["task"]) == (method, task)]))
    wider = sum(np.sqrt(a) >= np.sqrt(b) for a, b in zip(var_init, var_seeds))
    return float(np.mean(var_init)), float(np.mean(var_seeds)), int(wider), len(var_init)


def test_the_init_sensitivity_summary_comes_from_its_committed_runs():
    """The sentence that says how much of the spread is initialization quotes the records
    (rejects a summary typed by hand, or one computed over the init-only runs on both sides)."""
    var_init, var_seeds, wider, n = init_share_of_spread(saved_run("init-sensitivity"), saved_run("compare"))
    text = " ".join(PAGE.read_text().split())
    assert (f"Over the {n} cells where some method learns something (LoReFT left out), the variance across the "
            f"5 initial draws with the data fixed averages {var_init:.0f} points², against {var_seeds:.0f} across "
            f"the 5 seeds where everything varies; in {wider} of the {n} cells") in text


QUOTED = re.compile(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]")  # "+47.6 [+31.4, +63.2]"


@pytest.mark.parametrize("name, header", [("compare", "| paper's claim | paired difference (5 seeds)"),
                                          ("compare-all", "| paper's claim | paired difference (3 seeds)")])
def test_the_claims_tables_quote_the_generated_paired_differences(name, header):
    """The hand-written claims tables quote their verdicts' differences from the generated
    questions table of the same records (rejects a difference typed by hand, one quoted from
    the other run's table, or one left stale after a rerun)."""
    [table] = [t for t in page_tables() if t[0].startswith(header)]
    quoted = QUOTED.findall("\n".join(table))
    assert len(quoted) >= 8
    rendered = rendered_compare(name)
    assert [q for q in quoted if q not in rendered] == []


# The headline's every-seed table: each seed's accuracy for the cells whose seeds span more
# than SPREAD points (the figure shows all of them). Written here and checked below.
SEEDS_HEADER = "| method | task | seeds 0, 1, 2, 3, 4 | learned |"
SPREAD = 5.0


def every_seed_table(saved):
    settings = saved_settings(saved["meta"])
    lines = [SEEDS_HEADER, "|---|---|---|---|"]
    for method in settings.methods:
        for task in settings.tasks:
            runs = sorted((r for r in saved["runs"] if (r["method"], r["task"]) == (method, task)),
                          key=lambda r: r["seed"])
            points = [100 * r["accuracy"] for r in runs]
            if max(points) - min(points) > SPREAD:
                c = stats.cell(runs)
                lines.append(f"| {A.METHODS[method].label} | {task} | {', '.join(f'{p:.1f}' for p in points)} | "
                             f"{c['learned']}/{c['n']} |")
    return lines


def test_the_every_seed_table_comes_from_the_headline_runs():
    """The headline's per-seed table lists, in seed order, every cell whose seeds span more
    than 5 points, and no other (rejects a row typed by hand, seeds out of order, or a cell
    left out, such as joint-orth on ListOps, 84.6–93.4)."""
    saved = saved_run("compare")
    assert list(saved_settings(saved["meta"]).seeds) == [0, 1, 2, 3, 4]
    [table] = [t for t in page_tables() if t[0] == SEEDS_HEADER]
    assert table == every_seed_table(saved)


# The page's status paragraph and the README's paragraph on the toy benchmark summarize the
# records in prose. They quote numbers only in the forms the records generate: a method's
# "label: average N (P% of full FT)" from report.in_short, a paired difference with its interval
# from a questions table; besides those, only the thresholds below and the base model's own
# figures (its last stage's row on the page). A rerun that moves a number then leaves no summary quoting the
# old one, and a number typed by hand has nowhere to hide.
NUMBER = re.compile(r"(?<![\w.])[+-]?\d+\.\d+|(?<![\w.])\d+%")
THRESHOLDS = {"1%", "50%"}  # the paper's "within 1% of FT" and the learned-the-format line: not results
AVERAGE = re.compile(r"^- (.+?: average \d+\.\d(?: \(\d+% of full FT\))?),", re.M)


def status_paragraph():
    return PAGE.read_text().split("**Status, in one paragraph.**", 1)[1].split("\n\n", 1)[0]


def readme_benchmark_paragraph():
    readme = (DOCS.parent / "README.md").read_text()
    return readme.split("- **What the toy benchmark can and cannot say.**", 1)[1].split("\n- **", 1)[0]


def in_short(name):
    saved = saved_run(name)
    settings = saved_settings(saved["meta"])
    base = {t: saved["summary"]["base"]["tasks"][t]["mean"] / 100 for t in settings.tasks}
    _, cfg = load_base()
    return report.in_short(report.summarize(saved["runs"], base, settings, cfg), saved["runs"], settings)


def test_the_page_opens_with_the_headline_in_short():
    """The status section shows the headline's generated summary, line for line."""
    assert lines_missing_from_page(in_short("compare")) == []


COUNT = re.compile(r"\b\d+ of \d+ (?:runs|seeds)\b|\b\d+/\d+\b|\d+(?:\.\d+)?–\d+(?:\.\d+)?%?")


def numbers_not_from_the_records(text):
    """The numbers of ``text`` that are none of: a generated average phrase, a paired difference
    that a questions table gives, a count of learned runs that a generated line gives, a
    threshold, the shipped base's seen-pair scores."""
    text = " ".join(text.replace("−", "-").split())  # the prose's minus sign is the tables' hyphen
    generated = "\n".join(in_short(name) for name in COMPARE_RUNS)
    for phrase in AVERAGE.findall(generated):
        text = text.replace(phrase, " ")
    counts = [c for c in COUNT.findall(text) if c not in generated and c != "95–99.6%"]  # the base's skills
    rendered = "\n".join(rendered_compare(name) for name in COMPARE_RUNS)
    wrong = [q for q in QUOTED.findall(text) if q not in rendered]
    text = QUOTED.sub(" ", text)
    [shipped] = [line for line in PAGE.read_text().splitlines() if line.startswith("| 8 | 2,000 |")]
    base = set(NUMBER.findall(shipped))  # the shipped base's seen pairs, after its last stage
    text = COUNT.sub(" ", text)
    return wrong + counts + [n for n in NUMBER.findall(text) if n not in THRESHOLDS | base]


@pytest.mark.parametrize("summary", [status_paragraph, readme_benchmark_paragraph])
def test_the_summaries_quote_only_numbers_the_records_give(summary):
    """Rejects a summary left stale after a rerun (an old "average 82.2 (85% of full FT)", an old
    "+47.6 [+31.4, +63.2]", an old "18 of 20 runs"), a number typed by hand ("one seed stalls at
    0.4", "the others 87–94"), and a paired difference with an interval no table gives."""
    assert NUMBER.findall(summary()), "no numbers found: the paragraph moved"
    assert numbers_not_from_the_records(summary()) == []


def test_the_number_check_catches_a_stale_or_typed_number():
    """The check above, on summaries it must reject, built from today's records."""
    good = AVERAGE.findall(in_short("compare"))[0]  # "Full FT: average 96.7 (100% of full FT)"
    assert numbers_not_from_the_records(good + ", within 1%") == []
    average = re.search(r"average (\d+\.\d)", good).group(1)
    stale = f"{float(average) + 0.1:.1f}"
    assert stale in numbers_not_from_the_records(good.replace(average, stale))
    assert numbers_not_from_the_records("one seed stalls at 0.4") == ["0.4"]
    assert numbers_not_from_the_records("the others 87–94") == ["87–94"]
    assert numbers_not_from_the_records("+47.6 [+31.4, +63.3]") == ["+47.6 [+31.4, +63.3]"]
    assert numbers_not_from_the_records("learned on 17 of 19 runs") == ["17 of 19 runs"]
