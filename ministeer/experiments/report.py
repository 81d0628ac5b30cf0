"""Tables and figures for ``ministeer compare``: the paper's Table 1 shape, JSON, PNGs.

Accuracies are in percent: the mean over seeds and a 95% interval,

    mean ± 1.96 · sqrt(s² / S + p(1 - p) / (S · n))

with ``s`` the sample standard deviation over the ``S`` seeds (init, batch order and the
draw of problems) and ``p(1 - p) / n`` the binomial variance of one seed's ``n`` test
items. The seeds' spread already holds part of the sampling error, so the interval errs
wide; with 2 seeds, the sampling term keeps it from collapsing when two runs agree.

"Gap to FT" is the mean over tasks of (method - full FT), in points; "% of FT" is the
method's average as a share of full FT's. A run that diverged counts as missing and is
flagged. A learning rate chosen at the edge of its grid is marked ``†``. A cell with fewer
seeds than asked (an unfinished run, tabulated by ``--report-only``) says how many it has,
and a note above the table says that it is incomplete.
"""
import math
import platform
from dataclasses import asdict
from pathlib import Path

from .. import adapters as A
from ..io import write_json_atomic, write_text_atomic
from .grids import grid_of
from .pretrain import load_base

BASE_LABEL = "Base model (no adaptation)"
REFERENCE = "postblock_silu"  # parameter ratios are relative to post-block r=8


def at_grid_edge(method, lr):
    """Is ``lr`` the smallest or largest value of ``method``'s grid? (Then the grid may be too narrow.)"""
    grid = grid_of(method)
    return lr in (min(grid), max(grid))


def interval(accs, n):
    """``(mean, half-width of the 95% interval, std)`` in percent of accuracies in [0, 1]."""
    accs = [a for a in accs if a is not None]
    if not accs:
        return None, None, None
    S = len(accs)
    mean = sum(accs) / S
    var = sum((a - mean) ** 2 for a in accs) / (S - 1) if S > 1 else 0.0
    half = 1.96 * math.sqrt(var / S + mean * (1 - mean) / (S * n))
    return 100 * mean, 100 * half, 100 * math.sqrt(var)


def summarize(records, base, settings, cfg):
    """``{method: {"label", "percent", "ratio", "tasks": {task: {...}}, "avg", "gap", "of_ft"}}``."""
    rows = {}
    ref = A.count_params(cfg, REFERENCE).trainable
    for method in settings.methods:
        tasks = {}
        for task in settings.tasks:
            runs = [r for r in records if r["method"] == method and r["task"] == task]
            n = runs[0].get("n_scored", settings.n_test) if runs else settings.n_test
            mean, half, std = interval([r["accuracy"] for r in runs], n)
            lr = runs[0]["lr"] if runs else None
            tasks[task] = dict(mean=mean, ci95=half, std=std, n=len(runs), n_test=n,
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
                        tasks={t: dict(mean=100 * a, ci95=None, std=None, n=1, diverged=0, lr=None, lr_at_edge=False)
                               for t, a in base.items()})
    return rows


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _cell(t, n_seeds):
    if t["n"] == 0:
        return "not run"
    partial = f" ({t['n']} of {n_seeds} seeds)" if t["n"] < n_seeds else ""
    if t["mean"] is None:
        return "diverged" + partial
    flag = f" ({t['diverged']} div.)" if t["diverged"] else ""
    edge = " †" if t.get("lr_at_edge") else ""
    return f"{t['mean']:.1f}" + (f" ± {t['ci95']:.1f}" if t["ci95"] is not None else "") + edge + flag + partial


def incomplete_note(rows, settings):
    """The lines above the table when some method × task cell has fewer seeds than asked (or none)."""
    cells = [t for m, r in rows.items() if m != "base" for t in r["tasks"].values()]
    missing = sum(t["n"] == 0 for t in cells)
    partial = sum(0 < t["n"] < len(settings.seeds) for t in cells)
    if not (missing or partial):
        return []
    what = ([f"{missing} method × task cells were not run"] if missing else []) + \
           ([f"{partial} have fewer than the {len(settings.seeds)} seeds asked (marked 'k of "
             f"{len(settings.seeds)} seeds'; their mean is over those k)"] if partial else [])
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
        cells = [_cell(row["tasks"][t], 1 if method == "base" else len(settings.seeds)) for t in settings.tasks]
        avg = "–" if row["avg"] is None else f"{row['avg']:.1f}"
        gap = "–" if row["gap"] is None or method == "full" else f"{row['gap']:+.1f}"
        of_ft = "–" if row["of_ft"] is None or method in ("full", "base") else f"{row['of_ft']:.0f}%"
        lines.append("| " + " | ".join([row["label"], pct, ratio, *cells, avg, gap, of_ft]) + " |")
    lines.append("")
    edges = sum(t["lr_at_edge"] for m, r in rows.items() if m != "base" for t in r["tasks"].values())
    lines.append(f"Test accuracy (%), exact match of the greedy completion on the held-out benchmark pair: "
                 f"mean over seeds {list(settings.seeds)} ± 95% interval (seed spread and test sampling, "
                 f"{settings.n_test} test items per seed and task); {settings.steps} steps, batch "
                 f"{settings.batch_size}. Base model {cfg.n_layers} layers × d_model {cfg.d_model}, {n_base:,} "
                 "parameters. Params = trainable share of the base; × PB r8 = trainable count relative to "
                 f"post-block r=8. † = learning rate chosen at the edge of its grid ({edges} cells).")
    return "\n".join(lines)


def questions(rows, settings):
    """The paper's questions, answered per task from the rows that are present (markdown)."""
    def acc(method, task):
        row = rows.get(method)
        return None if row is None else row["tasks"][task]["mean"]

    def diff(a, b, task):
        x, y = acc(a, task), acc(b, task)
        return "–" if x is None or y is None else f"{x - y:+.1f}"

    pairs = [("Post-block r=8 − LoReFT r=8", REFERENCE, "loreft"),
             ("Post-block r=8 − LoRA r=1", REFERENCE, "lora_r1"),
             ("Post-block r=8 − pre-MLP r=8", REFERENCE, "premlp_r8"),
             ("Post-block r=8 − post-MLP r=8", REFERENCE, "postmlp_r8"),
             ("Post-block r=8 − attn-out r=8", REFERENCE, "attnout_r8"),
             ("Joint orth. (input) − LoRA r=8", "joint_orth_input", "lora"),
             ("Joint orth. (input) − post-block r=8", "joint_orth_input", REFERENCE),
             ("Joint naive − LoRA r=8", "joint_naive", "lora")]
    lines = ["| question | " + " | ".join(settings.tasks) + " |", "|---|" + "---|" * len(settings.tasks)]
    full = [acc("full", t) for t in settings.tasks]
    pb = [acc(REFERENCE, t) for t in settings.tasks]
    lines.append("| Post-block r=8 as % of full FT | " + " | ".join(
        "–" if f is None or p is None or f == 0 else f"{100 * p / f:.0f}%" for f, p in zip(full, pb)) + " |")
    for text, a, b in pairs:
        if a in rows and b in rows:
            lines.append(f"| {text} (points) | " + " | ".join(diff(a, b, t) for t in settings.tasks) + " |")
    return "\n".join(lines)


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


def render(rows, records, settings, cfg):
    """The markdown that ``table.md`` holds: the table, the paper's questions, the joint modes."""
    table = markdown_table(rows, settings, cfg) + "\n\n" + questions(rows, settings)
    modes = joint_modes(records, settings)
    if modes:
        table += "\n\nJoint methods by inference mode (the official code's ablation):\n\n" + modes
    return table


def write_all(out, records, base, settings, elapsed, figures=True, base_path=None):
    """Write ``results.json``, ``table.md`` and the figures to ``out``; return the table."""
    out = Path(out)
    _, cfg = load_base() if base_path is None else load_base(base_path)
    rows = summarize(records, base, settings, cfg)
    table = render(rows, records, settings, cfg)
    meta = dict(settings=asdict(settings), elapsed_seconds=round(elapsed, 1), machine=platform.platform(),
                processor=platform.processor() or platform.machine(), python=platform.python_version())
    write_json_atomic(out / "results.json", dict(meta=meta, summary=rows, runs=records), indent=1)
    write_text_atomic(out / "table.md", table + "\n")
    if figures:
        from .figures import compare_figures
        compare_figures(rows, settings, out / "figures")
    return table
