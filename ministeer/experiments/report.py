"""Tables and figures for ``ministeer compare``: the paper's Table 1 shape, JSON, PNGs.

Accuracies are reported in percent as mean ± sample standard deviation over seeds.
"Gap to FT" is the mean over tasks of (method - full FT), in accuracy points. A run that
diverged counts as missing and is flagged in the table.
"""
import json
import math
import platform
from dataclasses import asdict
from pathlib import Path

from .. import adapters as A
from .pretrain import load_base

BASE_LABEL = "Base model (no adaptation)"


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def summarize(records, base, settings, cfg):
    """``{method: {"percent", "tasks": {task: {"mean", "std", "n", "diverged"}}, "avg", "gap"}}``."""
    rows = {}
    for method in settings.methods:
        tasks = {}
        for task in settings.tasks:
            runs = [r for r in records if r["method"] == method and r["task"] == task]
            mean, std = _mean_std([100 * r["accuracy"] if r["accuracy"] is not None else None for r in runs])
            tasks[task] = dict(mean=mean, std=std, n=len(runs), diverged=sum(r["accuracy"] is None for r in runs),
                               lr=runs[0]["lr"] if runs else None,
                               loss_first=_mean_std([r.get("loss_first") for r in runs])[0],
                               loss_last=_mean_std([r.get("loss_last") for r in runs])[0])
        means = [t["mean"] for t in tasks.values()]
        avg = sum(means) / len(means) if None not in means else None
        rows[method] = dict(label=A.METHODS[method].label, percent=A.count_params(cfg, method).percent,
                            trainable=A.count_params(cfg, method).trainable, tasks=tasks, avg=avg)
    full = rows.get("full")
    for row in rows.values():
        ok = full is not None and row["avg"] is not None and full["avg"] is not None
        row["gap"] = row["avg"] - full["avg"] if ok else None
    base_avg = sum(base.values()) / len(base) * 100
    rows["base"] = dict(label=BASE_LABEL, percent=0.0, trainable=0, avg=base_avg,
                        gap=base_avg - full["avg"] if full and full["avg"] is not None else None,
                        tasks={t: dict(mean=100 * a, std=0.0, n=1, diverged=0, lr=None) for t, a in base.items()})
    return rows


def _cell(t):
    if t["mean"] is None:
        return "diverged"
    flag = f" ({t['diverged']} div.)" if t["diverged"] else ""
    return f"{t['mean']:.1f} ± {t['std']:.1f}{flag}"


def markdown_table(rows, settings, cfg):
    n_base = A.base_param_count(cfg)
    head = ["Method", "Params", *settings.tasks, "Avg", "Gap to FT"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, row in rows.items():
        pct = "100%" if method == "full" else "0" if method == "base" else f"{row['percent']:.2g}%"
        cells = [_cell(row["tasks"][t]) for t in settings.tasks]
        avg = "–" if row["avg"] is None else f"{row['avg']:.1f}"
        gap = "–" if row["gap"] is None or method == "full" else f"{row['gap']:+.1f}"
        lines.append("| " + " | ".join([row["label"], pct, *cells, avg, gap]) + " |")
    lines.append("")
    lines.append(f"Test accuracy (%), exact match of the greedy completion, mean ± std over seeds "
                 f"{list(settings.seeds)}; {settings.n_test} test examples per task; base model "
                 f"{cfg.n_layers} layers × d_model {cfg.d_model}, {n_base:,} parameters. "
                 "Params = trainable share of the base model's parameter count.")
    return "\n".join(lines)


def write_all(out, records, base, settings, elapsed, figures=True, base_path=None):
    """Write ``results.json``, ``table.md`` and the figures to ``out``; return the table."""
    out = Path(out)
    _, cfg = load_base() if base_path is None else load_base(base_path)
    rows = summarize(records, base, settings, cfg)
    table = markdown_table(rows, settings, cfg)
    meta = dict(settings=asdict(settings), elapsed_seconds=round(elapsed, 1), machine=platform.platform(),
                processor=platform.processor() or platform.machine(), python=platform.python_version())
    (out / "results.json").write_text(json.dumps(dict(meta=meta, summary=rows, runs=records), indent=1) + "\n")
    (out / "table.md").write_text(table + "\n")
    if figures:
        from .figures import compare_figures
        compare_figures(rows, settings, out / "figures")
    return table
