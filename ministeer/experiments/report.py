"""Tables and figures for ``ministeer compare``: the paper's Table 1 shape, JSON, PNGs.

Accuracies are in percent. A cell reads ``mean [lo, hi] · med M · k/n``: the mean over its
seeds, the 95% bootstrap interval that resamples the seeds and, inside each, the test
problems, the median, and how many of its ``n`` seeds learned the format (test accuracy
≥ 50%). Runs either learn the boxed format or stall, so the median and ``k/n`` say what a mean
over few seeds hides. ``stats.py`` holds the statistics; docs/07-reproducing.md explains how
to read them.

The questions table answers each of the paper's comparisons ("post-block − LoRA r=1") by a
paired difference over the same seeds, per task and over all tasks, with its bootstrap
interval and a verdict: "holds" where the interval excludes 0 on the claimed side, "level"
where it holds 0, "does not hold" otherwise.

"Gap to FT" is the mean over tasks of (method - full FT), in points; "% of FT" is the
method's average as a share of full FT's. A run that diverged counts as missing and is
flagged. A learning rate chosen at the edge of its grid is marked ``†``. A cell with fewer
seeds than asked (an unfinished run, tabulated by ``--report-only``) says how many it has,
and a note above the table says that it is incomplete.
"""
import platform
from dataclasses import asdict
from pathlib import Path

from .. import adapters as A
from ..io import write_json_atomic, write_text_atomic
from . import stats
from .grids import grid_of
from .pretrain import load_base

BASE_LABEL = "Base model (no adaptation)"
REFERENCE = "postblock_silu"  # parameter ratios are relative to post-block r=8


def at_grid_edge(method, lr):
    """Is ``lr`` the smallest or largest value of ``method``'s grid? (Then the grid may be too narrow.)"""
    grid = grid_of(method)
    return lr in (min(grid), max(grid))


def summarize(records, base, settings, cfg):
    """``{method: {"label", "percent", "ratio", "tasks": {task: {...}}, "avg", "gap", "of_ft"}}``."""
    rows = {}
    ref = A.count_params(cfg, REFERENCE).trainable
    for method in settings.methods:
        tasks = {}
        for task in settings.tasks:
            runs = [r for r in records if r["method"] == method and r["task"] == task]
            n = runs[0].get("n_scored", settings.n_test) if runs else settings.n_test
            lr = runs[0]["lr"] if runs else None
            tasks[task] = dict(**stats.cell(runs, settings.n_test), n_runs=len(runs), n_test=n,
                               diverged=sum(r["accuracy"] is None for r in runs), lr=lr,
                               lr_at_edge=lr is not None and at_grid_edge(method, lr),
                               loss_first=_mean([r.get("loss_first") for r in runs]),
                               loss_last=_mean([r.get("loss_last") for r in runs]))
        means = [t["mean"] for t in tasks.values()]
        count = A.count_params(cfg, method)
        rows[method] = dict(label=A.METHODS[method].label, percent=count.percent, trainable=count.trainable,
                            ratio=count.trainable / ref, tasks=tasks,
                            avg=sum(means) / len(means) if None not in means else None)
    full = rows.get("full")
    for row in rows.values():
        ok = full is not None and row["avg"] is not None and full["avg"] is not None
        row["gap"] = row["avg"] - full["avg"] if ok else None
        row["of_ft"] = 100 * row["avg"] / full["avg"] if ok and full["avg"] > 0 else None
    base_avg = sum(base.values()) / len(base) * 100
    rows["base"] = dict(label=BASE_LABEL, percent=0.0, trainable=0, ratio=0.0, avg=base_avg,
                        gap=base_avg - full["avg"] if full and full["avg"] is not None else None, of_ft=None,
                        tasks={t: dict(mean=100 * a, lo=None, hi=None, median=None, learned=None, n=1, n_runs=1,
                                               points=[], diverged=0, lr=None, lr_at_edge=False)
                               for t, a in base.items()})
    return rows


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def units_per_cell(settings):
    """How many runs each method × task cell asks for: one per seed and init seed."""
    init_seeds = getattr(settings, "init_seeds", None)
    return len(settings.seeds) * (len(init_seeds) if init_seeds else 1)


def _cell(t, n_seeds):
    if t["n_runs"] == 0:
        return "not run"
    partial = f" ({t['n_runs']} of {n_seeds} seeds)" if t["n_runs"] < n_seeds else ""
    if t["mean"] is None:
        return "diverged" + partial
    flag = f" ({t['diverged']} div.)" if t["diverged"] else ""
    edge = " †" if t.get("lr_at_edge") else ""
    if t["lo"] is None:  # the base: one number
        return f"{t['mean']:.1f}"
    return (f"{t['mean']:.1f} [{t['lo']:.1f}, {t['hi']:.1f}] · med {t['median']:.1f} · {t['learned']}/{t['n']}"
            + edge + flag + partial)


def incomplete_note(rows, settings):
    """The lines above the table when some method × task cell has fewer seeds than asked (or none)."""
    cells = [t for m, r in rows.items() if m != "base" for t in r["tasks"].values()]
    asked = units_per_cell(settings)
    missing = sum(t["n_runs"] == 0 for t in cells)
    partial = sum(0 < t["n_runs"] < asked for t in cells)
    if not (missing or partial):
        return []
    what = ([f"{missing} method × task cells were not run"] if missing else []) + \
           ([f"{partial} have fewer than the {asked} seeds asked (marked 'k of "
             f"{asked} seeds'; their mean is over those k)"] if partial else [])
    return [f"**Incomplete: {'; '.join(what)}** (an interrupted run; `ministeer compare --resume` completes it).",
            ""]


def markdown_table(rows, settings, cfg):
    n_base = A.base_param_count(cfg)
    head = ["Method", "Params", "× PB r8", *settings.tasks, "Avg", "Gap to FT", "% of FT"]
    lines = []
    if settings.quick:
        lines += ["**SMOKE RUN (`--quick`): few steps and test items, one seed. These numbers check that "
                  "everything runs; they are not results.**", ""]
    lines += incomplete_note(rows, settings)
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, row in rows.items():
        pct = "100%" if method == "full" else "0" if method == "base" else f"{row['percent']:.2g}%"
        ratio = "–" if method == "base" else f"{row['ratio']:.3g}"
        cells = [_cell(row["tasks"][t], 1 if method == "base" else units_per_cell(settings)) for t in settings.tasks]
        avg = "–" if row["avg"] is None else f"{row['avg']:.1f}"
        gap = "–" if row["gap"] is None or method == "full" else f"{row['gap']:+.1f}"
        of_ft = "–" if row["of_ft"] is None or method in ("full", "base") else f"{row['of_ft']:.0f}%"
        lines.append("| " + " | ".join([row["label"], pct, ratio, *cells, avg, gap, of_ft]) + " |")
    lines.append("")
    edges = sum(t["lr_at_edge"] for m, r in rows.items() if m != "base" for t in r["tasks"].values())
    init_seeds = getattr(settings, "init_seeds", None)
    seeds = f"seeds {list(settings.seeds)}" + (f" × init seeds {list(init_seeds)}" if init_seeds else "")
    lines.append(f"Test accuracy (%), exact match of the greedy completion on the held-out benchmark pair, "
                 f"{seeds}, {settings.n_test} test items per seed and task: mean [95% bootstrap interval over "
                 f"seeds and test items] · median · k/n seeds that learned the format (≥ "
                 f"{100 * stats.LEARNED:.0f}%); {settings.steps} steps, batch "
                 f"{settings.batch_size}. Base model {cfg.n_layers} layers × d_model {cfg.d_model}, {n_base:,} "
                 "parameters. Params = trainable share of the base; × PB r8 = trainable count relative to "
                 f"post-block r=8. † = learning rate chosen at the edge of its grid ({edges} cells).")
    return "\n".join(lines)


# The paper's comparisons "A − B": each claims that A beats B (the claimed side, +1).
COMPARISONS = (("Post-block r=8 − LoReFT r=8", REFERENCE, "loreft", +1),
               ("Post-block r=8 − LoReFT r=8 at every position", REFERENCE, "loreft_all", +1),
               ("Post-block r=8 − LoRA r=1", REFERENCE, "lora_r1", +1),
               ("Post-block r=8 − pre-MLP r=8", REFERENCE, "premlp_r8", +1),
               ("Post-block r=8 − post-MLP r=8", REFERENCE, "postmlp_r8", +1),
               ("Post-block r=8 − attn-out r=8", REFERENCE, "attnout_r8", +1),
               ("Joint orth. (input) − LoRA r=8", "joint_orth_input", "lora", +1),
               ("Joint orth. (input) − post-block r=8", "joint_orth_input", REFERENCE, +1),
               ("Joint naive − LoRA r=8", "joint_naive", "lora", +1))
ALL_TASKS = "all tasks"


def comparisons(records, settings):
    """Every comparison whose two methods ran: per task and over all tasks, the paired difference
    (``stats.paired``, points) and its verdict on the claimed side."""
    out = []
    for text, a, b, side in COMPARISONS:
        if a not in settings.methods or b not in settings.methods:
            continue
        runs = {m: [r for r in records if r["method"] == m and r.get("split", "test") == "test"] for m in (a, b)}
        cells = {t: stats.paired(runs[a], runs[b], (t,)) for t in settings.tasks}
        cells[ALL_TASKS] = stats.paired(runs[a], runs[b], tuple(settings.tasks))
        for c in cells.values():
            c["verdict"] = stats.verdict(c["lo"], c["hi"], side)
        out.append(dict(question=text, a=a, b=b, side=side, cells=cells))
    return out


def _difference(c):
    if c["diff"] is None:
        return "–"
    return f"{c['diff']:+.1f} [{c['lo']:+.1f}, {c['hi']:+.1f}] {c['verdict']}"


def questions(rows, records, settings):
    """The paper's questions, answered per task and over all tasks by paired differences (markdown)."""
    columns = (*settings.tasks, ALL_TASKS)
    lines = ["| question | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]

    def share(task):  # post-block's mean as a share of full FT's
        f, p = ([None if rows.get(m) is None else
                 rows[m]["avg"] if task == ALL_TASKS else rows[m]["tasks"][task]["mean"] for m in ("full", REFERENCE)])
        return "–" if f is None or p is None or f == 0 else f"{100 * p / f:.0f}%"
    lines.append("| Post-block r=8 as % of full FT | " + " | ".join(share(t) for t in columns) + " |")
    for c in comparisons(records, settings):
        lines.append(f"| {c['question']} (points) | " + " | ".join(_difference(c["cells"][t]) for t in columns) + " |")
    lines += ["", "Each difference: mean over the same seeds of (first − second), points, [95% bootstrap interval "
              "over seeds and test items], and the verdict on the claim that the first beats the second: holds "
              "where the interval lies above 0, level where it holds 0, does not hold where it lies below."]
    return "\n".join(lines)


def in_short(rows, records, settings):
    """The table in a few generated lines (markdown bullets), for summaries to quote: each method's
    average over tasks, its share of full FT and how many of its runs learned the format; each
    comparison's paired difference over all tasks, and on how many tasks it holds."""
    lines = []
    for method in settings.methods:
        row = rows[method]
        if row["avg"] is None:
            continue
        cells = row["tasks"].values()
        learned, runs = sum(c["learned"] for c in cells), sum(c["n_runs"] for c in cells)  # diverged runs count
        share = "" if row["of_ft"] is None else f" ({row['of_ft']:.0f}% of full FT)"
        per_task = ", ".join(f"{t} {c['learned']}/{c['n']}" for t, c in row["tasks"].items())
        lines.append(f"- {row['label']}: average {row['avg']:.1f}{share}, learned the format on {learned} of "
                     f"{runs} runs ({per_task})")
    for c in comparisons(records, settings):
        overall = c["cells"][ALL_TASKS]
        if overall["diff"] is None:
            continue
        holds = [t for t in settings.tasks if c["cells"][t]["verdict"] == "holds"]
        lines.append(f"- {c['question']}: {_difference(overall)} over all tasks; holds on {len(holds)} of "
                     f"{len(settings.tasks)} tasks" + (f" ({', '.join(holds)})" if holds else ""))
    return "\n".join(lines)


RECIPE_HEADER = "| method (its authors' setup) |"


def recipe_effects(shared, official, tasks):
    """What each method's own training setup changes (markdown): per method whose authors' setup
    differs from the shared recipe, the paired difference official − shared over the same seeds
    (points), per task and over all tasks, and which way its interval points. A method whose
    setup is the shared one ran the same runs under both recipes and has no row."""
    columns = (*tasks, ALL_TASKS)
    lines = [RECIPE_HEADER + " " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for method in dict.fromkeys(r["method"] for r in official):
        mine = [r for r in official if r["method"] == method]
        setup = mine[0].get("setup")
        if setup is None:
            continue
        theirs = [r for r in shared if r["method"] == method]
        cells = [stats.paired(mine, theirs, (t,)) for t in tasks] + [stats.paired(mine, theirs, tuple(tasks))]
        label = f"{A.METHODS[method].label} ({setup[0]}, {setup[1]} warmup steps)"
        lines.append(f"| {label} | " + " | ".join(_recipe_difference(c) for c in cells) + " |")
    lines += ["", "Each cell: mean over the same seeds of (official − shared), points, [95% bootstrap interval over "
              "seeds and test items]: official higher where the interval lies above 0, level where it holds 0, "
              "official lower where it lies below."]
    return "\n".join(lines)


def _recipe_difference(c):
    if c["diff"] is None:
        return "–"
    word = {"holds": "official higher", "level": "level", "does not hold": "official lower"}[
        stats.verdict(c["lo"], c["hi"], +1)]
    return f"{c['diff']:+.1f} [{c['lo']:+.1f}, {c['hi']:+.1f}] {word}"


def joint_modes(records, settings):
    """Joint methods evaluated with only the LoRA, only the steering adapter, or both (markdown).

    The official code's inference modes ``lora_only``, ``adapter_only`` and ``all``; mean test
    accuracy (%) over seeds. Empty when no joint run recorded them.
    """
    runs = [r for r in records if r.get("modes")]
    if not runs:
        return ""
    modes = sorted({m for r in runs for m in r["modes"]})
    lines = ["| joint method, task | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for method in dict.fromkeys(r["method"] for r in runs):
        for task in settings.tasks:
            cell = [r["modes"] for r in runs if r["method"] == method and r["task"] == task]
            if cell:
                means = [100 * sum(c[m] for c in cell) / len(cell) for m in modes]
                lines.append(f"| {A.METHODS[method].label}, {task} | " + " | ".join(f"{x:.1f}" for x in means) + " |")
    return "\n".join(lines)


def render(rows, records, settings, cfg, shared=None):
    """The markdown that ``table.md`` holds: the table, the paper's questions, the joint modes
    and, for an official-recipe run whose folder also holds the ``shared`` recipe's runs, what
    each method's own setup changes."""
    table = markdown_table(rows, settings, cfg) + "\n\n" + questions(rows, records, settings)
    modes = joint_modes(records, settings)
    if modes:
        table += "\n\nJoint methods by inference mode (the official code's ablation):\n\n" + modes
    if shared:
        table += ("\n\nEach method under its authors' setup, against the shared recipe (paired):\n\n"
                  + recipe_effects(shared, records, settings.tasks))
    return table


def write_all(out, records, base, settings, elapsed, figures=True, base_path=None, shared=None):
    """Write ``results.json``, ``table.md`` and the figures to ``out``; return the table.
    ``shared``: for an official-recipe run, the shared recipe's runs of the methods whose setup
    differs (kept in ``results.json`` as ``shared_runs``)."""
    out = Path(out)
    _, cfg = load_base() if base_path is None else load_base(base_path)
    rows = summarize(records, base, settings, cfg)
    table = render(rows, records, settings, cfg, shared)
    meta = dict(settings=asdict(settings), elapsed_seconds=round(elapsed, 1), machine=platform.platform(),
                processor=platform.processor() or platform.machine(), python=platform.python_version())
    extra = {"shared_runs": shared} if shared else {}
    write_json_atomic(out / "results.json", dict(meta=meta, summary=rows, verdicts=comparisons(records, settings),
                                                    runs=records, **extra), indent=1)
    write_text_atomic(out / "table.md", table + "\n\nIn short:\n\n" + in_short(rows, records, settings) + "\n")
    if figures:
        from .figures import compare_figures
        compare_figures(rows, settings, out / "figures")
    return table
