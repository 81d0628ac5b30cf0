"""Learning rates: how a sweep chooses one per method and task, and the file that ships them.

A sweep trains every point of a method's grid (``grids.grid_of``) on the validation split, on
``SWEEP_SEEDS`` seeds, and keeps the rate with the best mean validation accuracy, then the lower
mean validation loss, then the smaller rate. ``compare --sweep`` runs it; ``--write-lrs`` merges
the choice into ``lrs.json`` beside this file, which records per method and task the sweep that
chose each rate. Tests: tests/test_compare_runs.py.
"""
import json
from pathlib import Path

from .grids import grid_of

LR_PATH = Path(__file__).resolve().parent / "lrs.json"


def sweep_jobs(settings, base_path):
    """The sweep's runs (``compare.run_one`` keyword arguments): every method, task, grid point
    and sweep seed of ``settings``, scored on the validation split."""
    return [dict(method=m, task=t, seed=seed, lr=lr, settings=settings, split="val", base_path=base_path)
            for m in settings.methods for t in settings.tasks for lr in grid_of(m) for seed in sweep_seeds(settings)]


SWEEP_SEEDS = 2  # every grid point is scored on this many seeds and chosen by their mean


def sweep_seeds(settings):
    """The seeds a sweep scores each rate on: the settings' first ``SWEEP_SEEDS``, padded with the
    next integers when fewer are given (``--quick`` has one)."""
    seeds = list(settings.seeds[:SWEEP_SEEDS])
    while len(seeds) < SWEEP_SEEDS:
        seeds.append(max(seeds) + 1)
    return tuple(seeds)


def sweep_scores(records):
    """``{method: {task: {lr: score}}}``: each grid point's seeds (accuracy and validation loss
    per seed) and their means. A point where any seed diverged has mean accuracy None."""
    points = {}
    for r in sorted(records, key=lambda r: (r["lr"], r["seed"])):
        point = points.setdefault(r["method"], {}).setdefault(r["task"], {}).setdefault(r["lr"], {"seeds": {}})
        point["seeds"][r["seed"]] = dict(accuracy=r["accuracy"], val_loss=r.get("val_loss"))
    for by_task in points.values():
        for by_lr in by_task.values():
            for point in by_lr.values():
                runs = list(point["seeds"].values())
                ok = all(x["accuracy"] is not None for x in runs)
                point["accuracy"] = sum(x["accuracy"] for x in runs) / len(runs) if ok else None
                point["val_loss"] = sum(x["val_loss"] for x in runs) / len(runs) if ok else None
    return points


def choose_lrs(records):
    """Per method and task, the lr with the best mean validation accuracy over its seeds, then the
    lower mean loss; a point where a seed diverged never wins."""
    score = lambda p: (-1.0, -float("inf")) if p["accuracy"] is None else (p["accuracy"], -p["val_loss"])
    chosen = {}
    for method, by_task in sweep_scores(records).items():
        for task, by_lr in by_task.items():
            best = None
            for lr in sorted(by_lr):  # ties go to the smaller lr, whatever the finishing order
                if best is None or score(by_lr[lr]) > score(by_lr[best]):
                    best = lr
            chosen.setdefault(method, {})[task] = best
    return chosen


def merged_lrs_file(lrs, settings, path=LR_PATH, signature=None):
    """The shipped lrs.json after a sweep of ``settings`` chose ``lrs``: the new rates over the
    stored ones and, per method and task, what its rate was scored on (``swept``: the seeds,
    steps, validation size, recipe and the runs' ``signature``, which covers every other
    setting and the base checkpoint's bytes), so that a file built by several sweeps says
    which sweep chose each rate."""
    stored = json.loads(Path(path).read_text()) if Path(path).exists() else {}
    scored_on = dict(seeds=list(sweep_seeds(settings)), steps=settings.steps, n_val=settings.n_val,
                     recipe=settings.recipe, signature=signature)
    merged, swept = {}, {}
    for method in dict.fromkeys([*stored.get("lrs", {}), *lrs]):
        merged[method] = {**stored.get("lrs", {}).get(method, {}), **lrs.get(method, {})}
        swept[method] = {**stored.get("swept", {}).get(method, {}), **{t: scored_on for t in lrs.get(method, {})}}
    return {"lrs": merged, "grids": {m: grid_of(m) for m in merged}, "swept": swept}


def load_lrs(path=LR_PATH):
    return json.loads(Path(path).read_text())["lrs"]


def lookup_lr(lrs, method, task):
    try:
        return lrs[method][task]
    except KeyError:
        raise KeyError(f"no stored learning rate for {method}/{task} in {LR_PATH.name}; "
                       "run `ministeer compare --sweep` (with --methods/--all for that method)") from None
