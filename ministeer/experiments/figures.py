"""PNG figures for ``compare`` and ``analyze`` (matplotlib, imported only here).

If matplotlib is missing, every function prints one line and returns ``[]``.
"""
from pathlib import Path

import numpy as np  # host side: plotting data

from ..io import atomic_write
from .stats import LEARNED

SITE_ABLATION = ("premlp_r8", "postmlp_r8", "attnout_r8", "postblock_silu")
RANK_SWEEP = ("postblock_r1", "postblock_r2", "postblock_r4", "postblock_silu")
MARKERS = "osD^v<>PX*hp"
JOINT = ("lora", "postblock_silu", "joint_naive", "joint_orth_input", "joint_orth_output")


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("matplotlib is not installed: skipping figures (pip install matplotlib)")
        return None


def _save(plt, fig, path):
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def compare_figures(rows, settings, folder):
    plt = _pyplot()
    if plt is None:
        return []
    folder = Path(folder)
    paths = [accuracy_vs_params(plt, rows, folder / "accuracy_vs_params.png"),
             every_seed(plt, rows, settings.tasks, folder / "every_seed.png")]
    for name, methods in (("site_ablation", SITE_ABLATION), ("joint_vs_single", JOINT), ("rank_sweep", RANK_SWEEP)):
        present = [m for m in methods if m in rows]
        if len(present) > 1:
            paths.append(grouped_bars(plt, rows, present, settings.tasks, folder / f"{name}.png",
                                      title=name.replace("_", " ")))
    return paths


def interval_errors(cells):
    """``[[below], [above]]`` error bars from each cell's mean to its interval's ends (both within 0-100%)."""
    return [[c["mean"] - c["lo"] for c in cells], [c["hi"] - c["mean"] for c in cells]]


def accuracy_vs_params(plt, rows, path):
    """Average accuracy over tasks against the trainable fraction (log x); the bars run from the
    mean over tasks of the intervals' lower ends to that of their upper ends."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colors = plt.get_cmap("tab20").colors
    for i, (method, row) in enumerate(rows.items()):
        if method == "base" or row["avg"] is None:
            continue
        cells = [t for t in row["tasks"].values() if t["lo"] is not None]
        lo, hi = (sum(c[k] for c in cells) / len(cells) for k in ("lo", "hi"))
        ax.errorbar(row["percent"], row["avg"], yerr=[[row["avg"] - lo], [hi - row["avg"]]],
                    fmt=MARKERS[i % len(MARKERS)], color=colors[i % 20], capsize=3, label=row["label"])
    if "base" in rows:
        ax.axhline(rows["base"]["avg"], color="gray", ls="--", lw=1, label=rows["base"]["label"])
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of base model, log scale)")
    ax.set_ylabel("test accuracy, mean over tasks (%)")
    # outside the axes: with every method listed, a legend inside hides the smallest ones
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(plt, fig, path)


def _offset(i, n):
    """Where the i-th of n side-by-side columns sits within its task's group."""
    return (i - (n - 1) / 2) * 0.8 / max(1, n)


def seed_points(rows, tasks):
    """``[(x, accuracy, method)]``: every seed's test accuracy, one column per method within each
    task's group (x = task index + the method's offset), the base left out."""
    methods = [m for m in rows if m != "base"]
    return [(j + _offset(i, len(methods)), point, m)
            for j, task in enumerate(tasks) for i, m in enumerate(methods)
            for point in rows[m]["tasks"][task]["points"]]


def every_seed(plt, rows, tasks, path):
    """Every seed's accuracy per method and task (dots), beside the mean and its interval: a
    cell whose seeds split between learning the format and stalling shows as two clusters."""
    fig, ax = plt.subplots(figsize=(10, 4.6))
    colors = plt.get_cmap("tab20").colors
    methods = [m for m in rows if m != "base"]
    points = seed_points(rows, tasks)
    for i, method in enumerate(methods):
        mine = [(x, y) for x, y, m in points if m == method]
        ax.scatter([x for x, _ in mine], [y for _, y in mine], s=10, color=colors[i % 20], alpha=0.7,
                   label=rows[method]["label"])
        ran = [(j + _offset(i, len(methods)), rows[method]["tasks"][t]) for j, t in enumerate(tasks)
               if rows[method]["tasks"][t]["mean"] is not None]
        if ran:
            ax.errorbar([x for x, _ in ran], [c["mean"] for _, c in ran], yerr=interval_errors([c for _, c in ran]),
                        fmt="_", color="black", capsize=2, lw=0.8)
    ax.axhline(100 * LEARNED, color="gray", ls=":", lw=1)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("test accuracy (%), one dot per seed")
    ax.set_title("every seed (dots), mean and 95% interval (black); dotted: learned the format")
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(plt, fig, path)


def grouped_bars(plt, rows, methods, tasks, path, title):
    """Per-task bars (mean and its 95% interval) for a few methods side by side."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        cells = [rows[method]["tasks"][t] for t in tasks]
        xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(tasks))]
        ran = [c if c["mean"] is not None else dict(mean=0.0, lo=0.0, hi=0.0) for c in cells]
        ax.bar(xs, [c["mean"] for c in ran], width, yerr=interval_errors(ran), capsize=2, label=rows[method]["label"])
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    return _save(plt, fig, path)


def analysis_figures(results, folder):
    plt = _pyplot()
    if plt is None:
        return []
    folder = Path(folder)
    return [mlp_share(plt, results, folder / "mlp_share.png"),
            oracle_spectra(plt, results, folder / "oracle_spectrum.png"),
            kl_bars(plt, results, folder / "oracle_fit_kl.png")]


def mlp_share(plt, results, path):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    n_layers = len(results[0]["mlp_share"])
    width = 0.8 / n_layers
    for layer in range(n_layers):
        xs = [j + (layer - (n_layers - 1) / 2) * width for j in range(len(results))]
        ax.bar(xs, [100 * r["mlp_share"][layer] for r in results], width, label=f"layer {layer}")
    ax.axhspan(40, 70, color="gray", alpha=0.15, label="paper's range (40-70%)")
    ax.set_xticks(range(len(results)), [r["task"] for r in results])
    ax.set_ylabel("||Δ MLP out|| / ||Δ block out|| (%)")
    ax.set_title("share of the fine-tuning change carried by the MLP output")
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def oracle_spectra(plt, results, path):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in results:
        for layer, spec in r["spectrum"].items():
            s = np.asarray(spec["singular_values"])
            ax.semilogy(range(1, len(s) + 1), s / s[0], marker=".", label=f"{r['task']} L{layer}")
    ax.axvline(8, color="gray", ls=":", lw=1)
    ax.set_xlabel("singular value index (dotted: rank 8)")
    ax.set_ylabel("σ_i / σ_1")
    ax.set_title("oracle post-block shifts: singular value spectra")
    ax.legend(fontsize=6, ncol=2)
    return _save(plt, fig, path)


def kl_bars(plt, results, path):
    names = [k for k in results[0]["kl"] if not k.startswith("oracle")]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(results))]
        ax.bar(xs, [r["kl"][name] for r in results], width, label=name)
    ax.set_xticks(range(len(results)), [r["task"] for r in results])
    ax.set_yscale("log")
    ax.set_ylabel("KL(FT || steered base), nats per answer token")
    ax.legend(fontsize=7)
    return _save(plt, fig, path)
