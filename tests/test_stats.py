"""The statistics of ``compare``'s tables (experiments/stats.py) and the verdict table that
report.render builds from them. Each test names the wrong implementation it rejects (and its
mutant in scripts/mutants.py)."""
import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from ministeer.experiments import compare, report, stats
from ministeer.experiments.pretrain import load_base


def run(seed, accuracy, task="gsm", method="a", n=500, correct=None, init_seed=None):
    r = dict(method=method, task=task, seed=seed, accuracy=accuracy, n_scored=n, lr=0.01, split="test")
    if correct is not None:
        r["correct"] = correct
    if init_seed is not None:
        r["init_seed"] = init_seed
    return r


@st.composite
def cells(draw, min_size=1):
    """One cell's runs: a few seeds, each with n test problems and k of them right."""
    n = draw(st.integers(1, 200))
    ks = draw(st.lists(st.integers(0, n), min_size=min_size, max_size=6))
    return [run(seed, k / n, n=n) for seed, k in enumerate(ks)]


@st.composite
def verdict_strings(draw, n_seeds):
    """Per-problem verdicts of one run per seed, as compare records them."""
    n = draw(st.integers(1, 60))
    return [draw(st.text("01", min_size=n, max_size=n)) for _ in range(n_seeds)]


@hsettings(max_examples=40, deadline=None)
@given(cells())
def test_a_cells_interval_holds_its_mean_and_its_median_and_counts_are_its_seeds(runs):
    """The bootstrap interval contains the mean; the median and the k of n that learned the format
    are those of the seeds' accuracies; the numbers do not depend on the records' order."""
    c = stats.cell(runs)
    accs = [100 * r["accuracy"] for r in runs]
    assert c["lo"] - 1e-9 <= c["mean"] <= c["hi"] + 1e-9
    assert c["mean"] == pytest.approx(np.mean(accs)) and c["median"] == pytest.approx(np.median(accs))
    assert c["learned"] == sum(a >= 50 for a in accs) and c["n"] == len(runs)
    assert sorted(c["points"]) == pytest.approx(sorted(accs))
    assert stats.cell(runs[::-1]) == c


def test_the_interval_holds_the_test_sampling_of_one_seed():
    """One seed at 50% of 100 problems: redrawing its problems spreads the mean over about
    ±1.96·5 points, so the interval is not one point. Rejects an interval over seeds alone
    (mutant ``interval_no_sampling``)."""
    c = stats.cell([run(0, 0.5, n=100)])
    assert 15 < c["hi"] - c["lo"] < 25 and c["lo"] < 50 < c["hi"]
    assert stats.cell([run(0, 0.5, n=100)]) == c  # deterministic


def test_learned_the_format_is_at_least_half_right():
    """The threshold is 50%, inclusive. Rejects a strict one (mutant ``learned_strict``)."""
    c = stats.cell([run(0, 0.0), run(1, 0.49), run(2, 0.5), run(3, 0.9), run(4, None)])
    assert (c["learned"], c["n"], c["median"]) == (2, 4, pytest.approx(49.5))
    assert stats.LEARNED == 0.5


@hsettings(max_examples=30, deadline=None)
@given(st.integers(1, 5).flatmap(verdict_strings))
def test_a_run_against_itself_differs_by_exactly_zero(strings):
    """Identical columns (the same per-problem verdicts on every seed) give a difference of exactly
    0 with a zero-width interval, and the verdict "level": the problems are redrawn as pairs.
    Rejects redrawing the two sides' problems independently where both carry their verdicts
    (mutant ``paired_problems_independent``)."""
    runs = [run(seed, s.count("1") / len(s), n=len(s), correct=s) for seed, s in enumerate(strings)]
    d = stats.paired(runs, runs, ("gsm",))
    assert (d["diff"], d["lo"], d["hi"], d["n"]) == (0.0, 0.0, 0.0, len(runs))
    assert stats.verdict(d["lo"], d["hi"]) == "level"


@hsettings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=5), st.randoms())
def test_relabelling_or_reordering_the_seeds_jointly_changes_nothing(pairs, rnd):
    """The same seeds under other numbers, in another order, on both sides: the same difference,
    interval and verdict."""
    a = [run(s, x / 50, n=50, method="a") for s, (x, _) in enumerate(pairs)]
    b = [run(s, y / 50, n=50, method="b") for s, (_, y) in enumerate(pairs)]
    labels = list(range(100, 100 + len(pairs)))
    rnd.shuffle(labels)
    a2, b2 = [{**r, "seed": labels[r["seed"]]} for r in a], [{**r, "seed": labels[r["seed"]]} for r in b]
    rnd.shuffle(a2)
    d, d2 = stats.paired(a, b, ("gsm",)), stats.paired(a2, b2[::-1], ("gsm",))
    assert (d["diff"], d["lo"], d["hi"]) == pytest.approx((d2["diff"], d2["lo"], d2["hi"]), abs=1e-12)


def _clear(seed_accs_a, seed_accs_b, **kw):
    return ([run(s, x, method="a", **kw) for s, x in enumerate(seed_accs_a)],
            [run(s, y, method="b", **kw) for s, y in enumerate(seed_accs_b)])


def test_the_verdict_follows_the_paired_interval():
    """A clear win (every seed 10 points up, though the seeds range from 10% to 90%) holds; the
    same columns with one side's seeds shuffled are level (the pairing carries the verdict); a
    clear loss does not hold, and holds for the claim on the other side. Rejects unpaired
    differences (mutant ``paired_unpaired``), a verdict blind to the claimed side
    (``verdict_wrong_side``), and one without "level" (``verdict_no_level``)."""
    a, b = _clear([0.9, 0.1, 0.5, 0.7, 0.3], [0.8, 0.0, 0.4, 0.6, 0.2])
    win = stats.paired(a, b, ("gsm",))
    assert win["diff"] == pytest.approx(10.0) and 0 < win["lo"] < 10 < win["hi"]
    assert stats.verdict(win["lo"], win["hi"]) == "holds"
    assert stats.verdict(win["lo"], win["hi"], side=-1) == "does not hold"
    shuffled = [{**r, "seed": (r["seed"] + 1) % 5} for r in b]  # one column permuted alone
    straddle = stats.paired(a, shuffled, ("gsm",))
    assert straddle["diff"] == pytest.approx(10.0) and straddle["lo"] < 0 < straddle["hi"]
    assert stats.verdict(straddle["lo"], straddle["hi"]) == "level"
    loss = stats.paired(b, a, ("gsm",))
    assert loss["hi"] < 0 and stats.verdict(loss["lo"], loss["hi"]) == "does not hold"
    assert stats.verdict(loss["lo"], loss["hi"], side=-1) == "holds"
    assert stats.verdict(None, None) == "–"


def test_a_paired_difference_pairs_seed_and_init_seed_and_needs_every_task():
    """Units are (seed, init seed): a run of init seed 1 is not paired with one of init seed 0,
    and a unit missing on one task is left out of the comparison over all tasks."""
    a = [run(0, 0.9, init_seed=0, method="a"), run(0, 0.5, init_seed=1, method="a"),
         run(0, 0.9, task="boolq", init_seed=0, method="a")]
    b = [run(0, 0.8, init_seed=0, method="b"), run(0, 0.1, init_seed=2, method="b"),
         run(0, 0.7, task="boolq", init_seed=0, method="b")]
    assert stats.paired(a, b, ("gsm",))["units"] == [[0, 0]]
    both = stats.paired(a, b, ("gsm", "boolq"))
    assert both["n"] == 1 and both["diff"] == pytest.approx(15.0)
    assert stats.paired(a, [], ("gsm",))["diff"] is None


# ---------------------------------------------------------------- the verdict table in report.render

S = replace(compare.Settings(), methods=("full", "postblock_silu", "lora_r1", "loreft"), tasks=("gsm", "boolq"),
            seeds=(0, 1, 2, 3, 4), n_test=500)


def _records(acc, correct=False):
    rng = random.Random(0)
    out = []
    for m in S.methods:
        for t in S.tasks:
            for s in S.seeds:
                a = acc(m, t, s)
                r = run(s, a, task=t, method=m)
                if correct:
                    k = round(a * 500)
                    bits = ["1"] * k + ["0"] * (500 - k)
                    rng.shuffle(bits)
                    r = {**r, "correct": "".join(bits), "accuracy": k / 500}
                out.append(r)
    return out


def _table_cells(table, question):
    line = next(line for line in table.splitlines() if line.startswith(f"| {question} (points)"))
    return [c.strip() for c in line.strip("|").split("|")[1:]]


def _recomputed(records, a, b, tasks):
    """The paired point estimate, computed here without stats.py: per seed, mean over tasks of A − B."""
    acc = {(r["method"], r["task"], r["seed"]): r["accuracy"] for r in records}
    seeds = sorted({r["seed"] for r in records})
    return 100 * np.mean([np.mean([acc[a, t, s] - acc[b, t, s] for t in tasks]) for s in seeds])


@pytest.mark.parametrize("correct", [False, True])
def test_the_rendered_verdicts_are_the_paired_differences_of_the_records(correct):
    """Every verdict cell of report.render's questions table is the paired difference of the records
    (point estimate recomputed here), its interval (stats.paired) and the verdict that interval
    gives. A clear win renders "holds", a straddle "level", a clear loss "does not hold". Rejects a
    table that applies the claimed side backwards (mutant ``comparison_wrong_side``) or unpaired
    differences (``paired_unpaired``)."""
    def acc(m, t, s):
        pb = [0.9, 0.1, 0.5, 0.7, 0.3][s]
        return {"full": 0.95, "postblock_silu": pb, "lora_r1": pb - 0.1 if t == "gsm" else [0.3, 0.9, 0.1, 0.5, 0.7][s],
                "loreft": pb + 0.1}[m]
    records = _records(acc, correct)
    _, cfg = load_base()
    rows = report.summarize(records, {t: 0.0 for t in S.tasks}, S, cfg)
    table = report.render(rows, records, S, cfg)
    for question, a, b in (("Post-block r=8 − LoRA r=1", "postblock_silu", "lora_r1"),
                           ("Post-block r=8 − LoReFT r=8", "postblock_silu", "loreft")):
        cells = _table_cells(table, question)
        for col, tasks in zip(cells, [("gsm",), ("boolq",), S.tasks]):
            runs = {m: [r for r in records if r["method"] == m] for m in (a, b)}
            d = stats.paired(runs[a], runs[b], tasks)
            assert d["diff"] == pytest.approx(_recomputed(records, a, b, tasks))
            assert col == f"{d['diff']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}] {stats.verdict(d['lo'], d['hi'])}"
    assert _table_cells(table, "Post-block r=8 − LoRA r=1")[0].endswith("] holds")
    assert _table_cells(table, "Post-block r=8 − LoRA r=1")[1].endswith("] level")
    assert _table_cells(table, "Post-block r=8 − LoReFT r=8")[2].endswith("] does not hold")


def test_a_cell_of_init_seeds_counts_one_run_per_seed_and_init_seed():
    """``--seeds 0 --init-seeds 0 1 2``: a cell asks for three runs; one with two of them says so,
    and the footnote names the init seeds. Rejects a count that ignores the init seeds (mutant
    ``cell_ignores_init_seeds``)."""
    s = replace(S, methods=("postblock_silu",), tasks=("gsm",), seeds=(0,), init_seeds=(0, 1, 2))
    records = [run(0, x, method="postblock_silu", init_seed=i) for i, x in enumerate([0.9, 0.0, 0.8])]
    _, cfg = load_base()
    rows = report.summarize(records, {"gsm": 0.0}, s, cfg)
    cell = rows["postblock_silu"]["tasks"]["gsm"]
    assert (cell["n"], cell["learned"]) == (3, 2)
    table = report.markdown_table(rows, s, cfg)
    assert "Incomplete" not in table and "seeds [0] × init seeds [0, 1, 2]" in table
    rows = report.summarize(records[:2], {"gsm": 0.0}, s, cfg)
    assert "(2 of 3 seeds)" in report.markdown_table(rows, s, cfg)


def test_the_recipe_table_is_official_minus_shared_for_the_methods_whose_setup_differs():
    """Under the official recipe JoLA gains 20 points on GSM and 10 on BoolQ on every seed, LoReFT
    loses 30 on GSM and nothing on BoolQ; the vector's setup is the shared one, so it ran the same
    runs and gets no row. Rejects the difference taken the other way (mutant
    ``recipe_effects_backwards``), a row for a method whose two recipes are one run
    (``recipe_effects_lists_shared``), a method paired with another's shared runs, columns in
    the wrong order, and a loss read as a gain."""
    tasks = ("gsm", "boolq")
    level = {"jola": 0.1, "loreft": 0.5, "postblock_vector": 0.3}
    shared = [dict(method=m, task=t, seed=s, accuracy=level[m] + [0.0, 0.05, 0.02][s], n_scored=500, setup=None)
              for m in level for t in tasks for s in range(3)]
    setups = {"jola": ["cosine", 50], "loreft": ["linear", 0], "postblock_vector": None}
    change = {("jola", "gsm"): 0.2, ("jola", "boolq"): 0.1, ("loreft", "gsm"): -0.3}
    official = [dict(r, setup=setups[r["method"]], accuracy=r["accuracy"] + change.get((r["method"], r["task"]), 0.0))
                for r in shared]
    lines = report.recipe_effects(shared, official, tasks).splitlines()
    rows = {line.split(" | ")[0]: line.split(" | ")[1:] for line in lines if "warmup steps)" in line}
    assert set(rows) == {"| JoLA (cosine, 50 warmup steps)", "| LoReFT r=8 (linear, 0 warmup steps)"}
    jola, loreft = rows["| JoLA (cosine, 50 warmup steps)"], rows["| LoReFT r=8 (linear, 0 warmup steps)"]
    assert [c.split(" [")[0] for c in jola] == ["+20.0", "+10.0", "+15.0"]
    assert all(c.strip(" |").endswith("official higher") for c in jola)
    assert [c.split(" [")[0] for c in loreft] == ["-30.0", "+0.0", "-15.0"]
    assert [c.strip(" |").rsplit("] ", 1)[1] for c in loreft] == ["official lower", "level", "official lower"]
