"""``ministeer compare``: every adaptation method on every task and seed, as in the paper's Table 1.

One *run* = adapt the shipped base model (``pretrain.py``) to one task's benchmark
format with one method and one seed, then score exact-match greedy accuracy on the
test split. Each method uses the learning rate chosen for it on the validation split
(``lrs.json`` beside this file; ``--sweep`` re-chooses it from a 5-point grid, as the
paper sweeps 5 values per method, NOTES §8). Everything else is held fixed across
methods: steps, batch, linear schedule with 3% warmup, no weight decay, gradient
clipping at 1.0 (the Hugging Face Trainer default the paper's code inherits).

Runs are independent, so they are spread over ``--jobs`` worker processes. Outputs in
``--out``: ``results.json`` (every run and the summary), ``table.md`` and
``figures/*.png`` (``report.py``). Numbers and discussion: docs/results.md.
"""
import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

from .. import adapters as A
from ..model import forward, loss_fn
from ..tasks import TASK_NAMES, accuracy, batch_sampler, encode, examples
from ..train import TrainingDiverged
from .pretrain import BASE_PATH, load_base

LR_PATH = Path(__file__).resolve().parent / "lrs.json"

METHODS = ("full", "lora", "loreft", "postblock_silu", "postblock_linear", "postblock_vector", "postblock_r1",
           "premlp_r8", "postmlp_r8", "joint_naive", "joint_orth_input", "joint_orth_output")
@dataclass(frozen=True)
class Settings:
    tasks: tuple = TASK_NAMES
    methods: tuple = METHODS
    seeds: tuple = (0, 1, 2)
    steps: int = 150
    batch_size: int = 16
    n_train: int = 2000
    n_val: int = 200
    n_test: int = 300
    data_seed: int = 0
    clip: float = 1.0


QUICK = dict(seeds=(0,), steps=25, batch_size=16, n_train=400, n_val=40, n_test=40)


# ---------------------------------------------------------------- one run (runs in a worker)


@lru_cache(maxsize=None)
def _base(path):
    return load_base(path)


@lru_cache(maxsize=None)
def _examples(task, split, n, seed):
    return examples(task, split, n, seed=seed, fmt=0)


def run_one(method, task, seed, lr, settings, split="test", base_path=str(BASE_PATH)):
    """Adapt the base to ``task`` with ``method``; return a JSON-able record with the accuracy."""
    params, cfg = _base(base_path)
    s = settings
    train = _examples(task, "train", s.n_train, s.data_seed)
    scored = _examples(task, split, s.n_val if split == "val" else s.n_test, s.data_seed)
    record = dict(method=method, task=task, seed=seed, lr=lr, split=split)
    start = time.perf_counter()
    try:
        adapters, result = A.train_method(method, params, cfg, batch_sampler(train, s.batch_size, seed=seed),
                                          steps=s.steps, lr=lr, seed=seed, clip=s.clip)
    except TrainingDiverged as err:
        return {**record, "accuracy": None, "diverged_at": err.step, "seconds": time.perf_counter() - start}
    logits_fn = lambda tokens, n: A.adapted_forward(params, adapters, tokens, cfg, prompt_lengths=n)
    record["accuracy"] = accuracy(logits_fn, scored, n_ctx=cfg.n_ctx)
    if split == "val":  # tie-breaker for the sweep
        batch = encode(scored)
        record["val_loss"] = float(A.adapted_loss(params, adapters, batch["tokens"], cfg, mask=batch["mask"]))
    # did it train? the loss on a fixed training batch before (every adapter starts as a no-op) and after
    fixed = encode(train[:64])
    k = max(1, min(10, len(result.losses) // 5))
    record.update(loss_before=float(loss_fn(params, fixed["tokens"], cfg, mask=fixed["mask"])),
                  loss_after=float(A.adapted_loss(params, adapters, fixed["tokens"], cfg, mask=fixed["mask"])),
                  loss_first=sum(result.losses[:k]) / k, loss_last=sum(result.losses[-k:]) / k,
                  seconds=time.perf_counter() - start)
    return record


def base_accuracy(task, settings, base_path=str(BASE_PATH)):
    params, cfg = _base(base_path)
    scored = _examples(task, "test", settings.n_test, settings.data_seed)
    return accuracy(lambda tokens, _: forward(params, tokens, cfg), scored, n_ctx=cfg.n_ctx)


def _run_job(job):
    return run_one(**job)


# ---------------------------------------------------------------- many runs


def run_jobs(jobs, n_workers, desc):
    """Run ``jobs`` (kwargs of ``run_one``) in ``n_workers`` processes with a progress bar."""
    bar = _bar(len(jobs), desc)
    records = []
    if n_workers <= 1:
        for job in jobs:
            records.append(_run_job(job))
            _tick(bar, records[-1])
        return _close(bar, records)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per worker; read when a worker imports numpy
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
        for future in as_completed([pool.submit(_run_job, job) for job in jobs]):
            records.append(future.result())
            _tick(bar, records[-1])
    return _close(bar, records)


def _bar(total, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print(f"{desc}: {total} runs (install tqdm for a progress bar)")
        return None
    quiet_log = not sys.stderr.isatty()  # a log file or CI: redraw every 15 s, not every run
    return tqdm(total=total, desc=desc, dynamic_ncols=True, mininterval=15.0 if quiet_log else 0.1)


def _tick(bar, record):
    if bar is not None:
        acc = record["accuracy"]
        bar.set_postfix_str(f"{record['method']}/{record['task']}/s{record['seed']}: "
                            + ("diverged" if acc is None else f"{100 * acc:.1f}%"), refresh=False)
        bar.update(1)  # redraws at most every mininterval


def _close(bar, records):
    if bar is not None:
        bar.close()
    return records


def sweep(settings, n_workers, base_path):
    """``{method: {task: lr}}``: the grid point with the best validation accuracy (then loss), seed 0."""
    jobs = [dict(method=m, task=t, seed=settings.seeds[0], lr=lr, settings=settings, split="val",
                 base_path=base_path) for m in settings.methods for t in settings.tasks for lr in A.METHODS[m].lr_grid]
    records = run_jobs(jobs, n_workers, "lr sweep")
    score = lambda r: (-1.0, -math.inf) if r["accuracy"] is None else (r["accuracy"], -r["val_loss"])
    chosen = {}
    for r in records:
        best = chosen.setdefault(r["method"], {}).get(r["task"])
        if best is None or score(r) > score(best):
            chosen[r["method"]][r["task"]] = r
    return {m: {t: r["lr"] for t, r in by_task.items()} for m, by_task in chosen.items()}, records


def load_lrs(path=LR_PATH):
    return json.loads(Path(path).read_text())["lrs"]


def lookup_lr(lrs, method, task):
    try:
        return lrs[method][task]
    except KeyError:
        raise KeyError(f"no stored learning rate for {method}/{task} in {LR_PATH.name}; "
                       "run `ministeer compare --sweep`") from None


def compare(settings, n_workers=2, lrs=None, base_path=str(BASE_PATH)):
    """All runs of ``settings``; returns ``(records, base accuracies)``."""
    lrs = load_lrs() if lrs is None else lrs
    jobs = [dict(method=m, task=t, seed=seed, lr=lookup_lr(lrs, m, t), settings=settings, base_path=base_path)
            for seed in settings.seeds for m in settings.methods for t in settings.tasks]
    records = run_jobs(jobs, n_workers, "compare")
    base = {t: base_accuracy(t, settings, base_path) for t in settings.tasks}
    return records, base


# ---------------------------------------------------------------- command line


def main(argv=()):
    from . import report
    parser = argparse.ArgumentParser(prog="ministeer compare", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/compare", help="output folder (default: runs/compare)")
    parser.add_argument("--quick", action="store_true", help="a ~1-minute smoke test: 1 seed, few steps")
    parser.add_argument("--sweep", action="store_true", help="re-choose each method's lr on validation first")
    parser.add_argument("--write-lrs", action="store_true", help="with --sweep: also overwrite the shipped lrs.json")
    parser.add_argument("--sweep-only", action="store_true", help="with --sweep: stop after the sweep")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the seeds (default 0 1 2)")
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES, help="override the tasks")
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="override the methods")
    parser.add_argument("--steps", type=int, help="override the training steps per run")
    parser.add_argument("--base", default=str(BASE_PATH), help="base checkpoint (default: the shipped one)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings(**QUICK) if args.quick else Settings()
    overrides = dict(seeds=args.seeds and tuple(args.seeds), tasks=args.tasks and tuple(args.tasks),
                     methods=args.methods and tuple(args.methods), steps=args.steps)
    settings = replace(settings, **{k: v for k, v in overrides.items() if v})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    lrs = None
    if args.sweep:
        lrs, sweep_records = sweep(settings, args.jobs, args.base)
        grids = {m: A.METHODS[m].lr_grid for m in settings.methods}
        payload = {"lrs": lrs, "grids": grids, "settings": asdict(settings), "runs": sweep_records}
        (out / "lrs.json").write_text(json.dumps(payload, indent=1) + "\n")
        if args.write_lrs:
            stored = {k: payload[k] for k in ("lrs", "grids", "settings")}
            LR_PATH.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"chosen learning rates written to {out / 'lrs.json'} after {time.perf_counter() - start:.0f} s")
        if args.sweep_only:
            return
    records, base = compare(settings, args.jobs, lrs, args.base)
    elapsed = time.perf_counter() - start
    summary = report.write_all(out, records, base, settings, elapsed, figures=not args.no_figures)
    print(summary)
    print(f"\nelapsed {elapsed:.0f} s with {args.jobs} worker(s); outputs in {out}/")
