"""``ministeer compare``: adaptation methods × tasks × seeds, as in the paper's Table 1.

One *run* = adapt the shipped base model (``pretrain.py``) to one task's benchmark
pair (format 9: an answer style held out of pretraining) with one method and one seed, then score
exact-match greedy accuracy on the test split.

What a seed sets (``run_one``, the one place): a run's ``seed`` draws its training problems
and its test problems (``examples(..., seed=data_seed + seed)``) and its batch order
(``batch_sampler(..., seed=seed)``); its ``init_seed`` draws the adapter's initial weights
(and any training noise the method samples, e.g. JoLA's gates). ``init_seed`` defaults to
the seed, so the spread over seeds includes init, data and test sampling; ``--init-seeds``
varies the initial draw alone (``--seeds 0 --init-seeds 0 1 2``: one draw of data, three
inits). Each method uses the learning rate chosen for it on the validation split
(``rates.py``: ``lrs.json``; ``--sweep`` re-chooses it from the method's grid,
``grids.grid_of``, scoring each rate on 2 seeds). Everything else is held fixed across methods:
steps, batch, linear schedule with 3% warmup, no weight decay, gradient clipping at 1.0
(the Hugging Face Trainer default the paper's code inherits); ``--recipe official`` gives
each method its authors' schedule and warmup instead (``adapters/recipes.py``).

Two tiers: the default is the headline table (``HEADLINE`` methods, 5 seeds); ``--all`` runs
every registered method (rank sweep, site ablation, joint modes) with 3 seeds. ``--quick`` is a smoke run in its own folder.

Every finished run is appended at once to ``runs.jsonl`` in the output folder; after an
interruption, ``--resume`` reuses the runs already there. A log that holds runs is never
emptied: without ``--resume`` the command refuses to start, and ``--fresh`` moves the old log
aside (``runs.<time>.jsonl``) first. Every argument is checked before the folder is touched,
and the folder is locked while the command runs. Outputs: ``results.json``, ``table.md`` and
``figures/*.png`` (``report.py``), each written atomically. Numbers and discussion: docs/results.md.
"""
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np  # host side: per-problem verdicts

from .. import adapters as A
from ..io import CheckpointError, write_json_atomic
from ..model import forward, loss_fn
from ..tasks import BENCHMARK, TASK_NAMES, accuracy, batch_sampler, encode, examples, forced_exact_match
from ..train import TrainingDiverged
from ..usage import (Parser, UsageError, close, existing_file, folder_lock, non_negative_int, positive_int,
                     progress_bar, tick, writable_folder)
from .grids import grid_of
from .rates import LR_PATH, choose_lrs, load_lrs, lookup_lr, merged_lrs_file, sweep_jobs, sweep_scores, sweep_seeds
from .pretrain import BASE_PATH, load_base
from .pool import for_each_result
from .runlog import append_record, check_log, move_aside

# the headline table: full FT, the weight-space baselines (LoRA r=8, the size-matched LoRA r=1),
# the activation-space baseline (LoReFT), the paper's method in three forms, and joint-orth
HEADLINE = ("full", "lora", "lora_r1", "loreft", "postblock_silu", "postblock_linear", "postblock_vector",
            "joint_orth_input")
EVERYTHING = tuple(A.METHODS)  # --all: every registered method


@dataclass(frozen=True)
class Settings:
    tasks: tuple = TASK_NAMES
    methods: tuple = HEADLINE
    seeds: tuple = (0, 1, 2, 3, 4)
    init_seeds: tuple = None  # None: each run's adapter init follows its seed
    steps: int = 300
    batch_size: int = 16
    n_train: int = 2000
    n_val: int = 200
    n_test: int = 500
    data_seed: int = 0  # added to each run's seed for its draw of problems
    clip: float = 1.0
    quick: bool = False
    recipe: str = "shared"  # or "official": each method's own schedule and warmup (adapters.recipes)


QUICK = dict(seeds=(0,), steps=25, batch_size=16, n_train=400, n_val=40, n_test=40, quick=True)
ALL = dict(methods=EVERYTHING, seeds=(0, 1, 2))


def signature(settings, base_path=str(BASE_PATH)):
    """A short hash of what makes runs comparable: the settings (not which methods, tasks,
    seeds, init seeds or recipe: a run's own key holds those, the recipe as the setup it gives
    the run's method, ``setup_key``) and the bytes of the base checkpoint, so that a resume
    never reuses runs of another base."""
    core = {k: v for k, v in asdict(settings).items() if k not in ("methods", "tasks", "seeds", "init_seeds", "recipe")}
    if not Path(base_path).is_file():  # the error load_base would give, before a log is read
        raise CheckpointError(f"no checkpoint file at {str(base_path)!r}")
    stat = Path(base_path).stat()
    core["base_sha256"] = _file_digest(str(base_path), stat.st_mtime_ns, stat.st_size)
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:12]


@lru_cache(maxsize=None)
def _file_digest(path, mtime_ns, size):  # read once per version of the file, not once per run
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

# ---------------------------------------------------------------- one run (runs in a worker)


@lru_cache(maxsize=None)
def _base(path):
    return load_base(path)


@lru_cache(maxsize=None)
def _examples(task, split, n, seed):
    return examples(task, split, n, seed=seed, fmt=BENCHMARK)


def problems(task, split, seed, settings):
    """A run's problems of ``split``: its training and test draws follow its seed; validation
    is one draw for every seed, so that a sweep compares rates on the same problems."""
    n = {"train": settings.n_train, "val": settings.n_val, "test": settings.n_test}[split]
    return _examples(task, split, n, settings.data_seed + (0 if split == "val" else seed))


def adapt(method, task, seed, lr, settings, base_path=str(BASE_PATH), *, init_seed):
    """Train the adapters of one run (the ones ``run_one`` scores): ``(adapters, FitResult)``.
    ``init_seed`` is the adapter's initial draw (``run_one``'s default: the seed)."""
    params, cfg = _base(base_path)
    train = problems(task, "train", seed, settings)
    return A.train_method(method, params, cfg, batch_sampler(train, settings.batch_size, seed=seed),
                          steps=settings.steps, lr=lr, seed=init_seed, clip=settings.clip,
                          **A.fit_settings(method, settings.recipe, settings.steps))


def run_one(method, task, seed, lr, settings, split="test", base_path=str(BASE_PATH), init_seed=None):
    """Adapt the base to ``task`` with ``method``; return a JSON-able record with the accuracy and,
    on the test split, each test problem's verdict (``correct``: "1" right, "0" wrong, in order).

    ``seed`` draws the training and test problems and the batch order; ``init_seed`` (default:
    ``seed``) the adapter's initial draw and training noise."""
    params, cfg = _base(base_path)
    s = settings
    init_seed = seed if init_seed is None else init_seed
    train, scored = problems(task, "train", seed, s), problems(task, split, seed, s)
    record = dict(method=method, task=task, seed=seed, init_seed=init_seed, lr=lr, split=split, n_scored=len(scored),
                  signature=signature(s, base_path), setup=setup_key(method, s))
    start = time.perf_counter()
    try:
        adapters, result = adapt(method, task, seed, lr, s, base_path, init_seed=init_seed)
    except TrainingDiverged as err:
        return {**record, "accuracy": None, "diverged_at": err.step, "seconds": time.perf_counter() - start}
    logits_fn = lambda tokens, n: A.adapted_forward(params, adapters, tokens, cfg, prompt_lengths=n)
    record["fused"] = A.fused_layers(cfg, adapters)  # layers trained as one node; the rest hooked
    correct = forced_exact_match(logits_fn, scored, n_ctx=cfg.n_ctx)  # greedy's verdicts, one per problem
    record["accuracy"] = float(np.mean(correct))
    if split == "test":  # for the paired bootstrap (stats.paired): the same problems, redrawn together
        record["correct"] = "".join("1" if c else "0" for c in correct)
    if A.METHODS[method].orth is not None and split == "test":  # how much each space carries (official modes)
        record["modes"] = {mode: accuracy(fn, scored, n_ctx=cfg.n_ctx, forced=True)
                           for mode, fn in A.inference_logits_fns(params, adapters, cfg).items()}
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
    """Zero-shot accuracy of the unadapted base on the benchmark pair, averaged over the seeds' test draws."""
    params, cfg = _base(base_path)
    accs = [accuracy(lambda tokens, _: forward(params, tokens, cfg),
                     _examples(task, "test", settings.n_test, settings.data_seed + seed), n_ctx=cfg.n_ctx,
                     forced=True)
            for seed in settings.seeds]
    return sum(accs) / len(accs)


def _run_job(job):
    return run_one(**job)


# ---------------------------------------------------------------- many runs, logged as they finish


def setup_key(method, settings):
    """The schedule and warmup a run of ``method`` trains with under ``settings.recipe``, as
    ``(schedule, warmup)``, or None where that is the shared recipe's. A method whose authors'
    setup is the shared one runs the same run under either recipe, so one log serves both and
    ``--recipe official --resume`` reuses it; runs logged before recipes existed read as None."""
    setup = A.fit_settings(method, settings.recipe, settings.steps)
    if setup == A.fit_settings(method, "shared", settings.steps):
        return None
    return (setup["schedule"], setup["warmup"])


def job_key(job_or_record):
    """What identifies a run in a log (beside its signature): method, task, seed, init seed, rate,
    split and setup. A job carries its settings, a record the setup it ran with."""
    r = job_or_record
    setup = setup_key(r["method"], r["settings"]) if "settings" in r else r.get("setup")
    return (r["method"], r["task"], r["seed"], r.get("init_seed", r["seed"]), float(r["lr"]), r.get("split", "test"),
            None if setup is None else tuple(setup))


def read_log(path, settings, base_path=str(BASE_PATH)):
    """Finished runs in the JSONL log ``path`` that match ``settings`` and the base checkpoint
    (a torn last line is skipped)."""
    done = {}
    if not Path(path).exists():
        return done
    wanted = signature(settings, base_path)  # once: it stats the checkpoint file
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash mid-write
        if record.get("signature") == wanted:
            done[job_key(record)] = record
    return done


def run_jobs(jobs, n_workers, desc, log_path=None, resume=False):
    """Run ``jobs`` (kwargs of ``run_one``) in ``n_workers`` processes with a progress bar.

    Each finished run is appended to ``log_path`` (JSONL) at once. With ``resume``, runs
    already in the log are reused; without it, a log that holds runs is refused
    (``check_log``), never emptied. Ctrl-C terminates the workers at once; what finished
    is in the log."""
    if log_path:
        check_log(log_path, resume)
    done = (read_log(log_path, jobs[0]["settings"], jobs[0].get("base_path", str(BASE_PATH)))
            if (resume and log_path and jobs) else {})
    records = [done[job_key(j)] for j in jobs if job_key(j) in done]
    todo = [j for j in jobs if job_key(j) not in done]
    if records:
        print(f"{desc}: resuming, {len(records)} of {len(jobs)} runs already in {log_path}")
    bar = progress_bar(len(jobs), f"{desc} (% of runs done)", unit="run", initial=len(records))
    if bar is None:
        print(f"{desc}: {len(jobs)} runs (install tqdm for a progress bar)")

    def finish(record):
        records.append(record)
        if log_path:
            append_record(log_path, record)
        _tick(bar, record)

    try:
        for_each_result(_run_job, todo, n_workers, finish)
    finally:
        close(bar)
    order = {job_key(j): i for i, j in enumerate(jobs)}
    return sorted(records, key=lambda r: order[job_key(r)])  # job order, whatever the finishing order


def _tick(bar, record):
    if bar is not None:
        acc = record["accuracy"]
        init = record.get("init_seed", record["seed"])
        seed = f"s{record['seed']}" + (f"i{init}" if init != record["seed"] else "")
        bar.set_postfix_str(f"last: {record['method']}/{record['task']}/{seed} "
                            + ("diverged" if acc is None else f"{100 * acc:.1f}%"), refresh=False)
    tick(bar)  # redraws at most every mininterval


def sweep(settings, n_workers, base_path, log_path=None, resume=False):
    """``{method: {task: lr}}``: the grid point with the best mean validation accuracy over
    ``sweep_seeds`` (then mean loss); returns ``(chosen, records)``, every seed's run among them."""
    records = run_jobs(sweep_jobs(settings, base_path), n_workers, "lr sweep", log_path, resume)
    return choose_lrs(records), records


def planned_jobs(settings, lrs=None, base_path=str(BASE_PATH)):
    """One job per seed (× init seed), method and task of ``settings``, each at its stored learning rate."""
    lrs = load_lrs() if lrs is None else lrs
    pairs = [(seed, init) for seed in settings.seeds for init in (settings.init_seeds or (seed,))]
    return [dict(method=m, task=t, seed=seed, init_seed=init, lr=lookup_lr(lrs, m, t), settings=settings,
                 base_path=base_path)
            for seed, init in pairs for m in settings.methods for t in settings.tasks]


def compare(settings, n_workers=2, lrs=None, base_path=str(BASE_PATH), log_path=None, resume=False):
    """All runs of ``settings``; returns ``(records, base accuracies)``."""
    records = run_jobs(planned_jobs(settings, lrs, base_path), n_workers, "compare", log_path, resume)
    base = {t: base_accuracy(t, settings, base_path) for t in settings.tasks}
    return records, base


def logged_runs(settings, log_path, lrs=None, base_path=str(BASE_PATH)):
    """The planned runs already in the log. A run at an older learning rate (before a new sweep)
    is left out, so the table never mixes two rates of one method and task."""
    done = read_log(log_path, settings, base_path)
    return [done[job_key(j)] for j in planned_jobs(settings, lrs, base_path) if job_key(j) in done]

def shared_counterparts(settings, records, out, lrs, base_path):
    """For an official-recipe run: the shared recipe's runs, in the same folder's log, of the
    methods whose setup differs (the report pairs them); None otherwise."""
    if settings.recipe == "shared":
        return None
    differ = tuple(dict.fromkeys(r["method"] for r in records if r.get("setup") is not None))
    if not differ:
        return None
    shared = replace(settings, recipe="shared", methods=differ)
    return logged_runs(shared, out / "runs.jsonl", lrs, base_path) or None

# ---------------------------------------------------------------- command line


def parse(argv):
    parser = Parser(prog="ministeer compare", description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="output folder (default: runs/compare, runs/compare-all or runs/compare-quick)")
    tier = parser.add_mutually_exclusive_group()
    tier.add_argument("--quick", action="store_true", help="a smoke run (< 1 min): 1 seed, few steps, own folder")
    tier.add_argument("--all", action="store_true",
                      help="every registered method, 3 seeds (about 26 min on 2 cores; docs/results.md, Runtimes)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="reuse the finished runs in OUT/runs.jsonl")
    start.add_argument("--fresh", action="store_true", help="start over: first move OUT/runs.jsonl (and "
                       "sweep.jsonl) aside to runs.<time>.jsonl; nothing is deleted")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: tabulate the finished runs in OUT/runs.jsonl (missing ones: 'not run', "
                        "cells with fewer seeds than asked: marked)")
    parser.add_argument("--sweep", action="store_true", help="re-choose each method's lr on validation first")
    parser.add_argument("--write-lrs", action="store_true", help="with --sweep: also update the shipped lrs.json")
    parser.add_argument("--sweep-only", action="store_true", help="with --sweep: stop after the sweep")
    parser.add_argument("--jobs", type=positive_int, default=min(2, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+",
                        help="override the seeds (default 0-4; --all 0-2; --quick 0)")
    parser.add_argument("--init-seeds", type=non_negative_int, nargs="+",
                        help="adapter init seeds, each run once per seed and init seed (default: the run's seed); "
                        "with one --seeds value this measures the spread of the initial draw alone")
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES, help="override the tasks")
    parser.add_argument("--methods", nargs="+", choices=EVERYTHING, help="override the methods")
    parser.add_argument("--steps", type=positive_int, help="override the training steps per run")
    parser.add_argument("--base", type=existing_file, default=str(BASE_PATH),
                        help="base checkpoint (default: the shipped one)")
    parser.add_argument("--recipe", choices=A.RECIPES, default="shared",
                        help="official: each method under its authors' schedule and warmup (adapters.recipes)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    if args.report_only and (args.fresh or args.sweep):
        parser.error("--report-only runs nothing: it cannot be combined with --fresh or --sweep")
    return args


def main(argv=()):
    args = parse(argv)
    settings = Settings(**QUICK) if args.quick else Settings(**ALL) if args.all else Settings()
    overrides = dict(seeds=args.seeds and tuple(dict.fromkeys(args.seeds)), tasks=args.tasks and tuple(args.tasks),
                     methods=args.methods and tuple(args.methods), steps=args.steps,
                     recipe=None if args.recipe == "shared" else args.recipe,
                     init_seeds=args.init_seeds and tuple(dict.fromkeys(args.init_seeds)))
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    try:  # every input is checked before the output folder is touched
        load_base(args.base)
    except CheckpointError as err:
        raise UsageError(f"--base: {err}") from None
    if not (args.sweep or args.report_only):
        try:
            planned_jobs(settings, None, args.base)  # every run has a stored learning rate
        except KeyError as err:
            raise UsageError(err.args[0]) from None
    default_out = "runs/compare-quick" if args.quick else "runs/compare-all" if args.all else "runs/compare"
    out = writable_folder(args.out or default_out)
    with folder_lock(out, "--out"):
        return _compare_into(out, settings, args)


def _compare_into(out, settings, args):
    """``main`` after every input is checked, holding the lock on ``out``."""
    from . import report
    logs = ([out / "sweep.jsonl"] if args.sweep else []) + ([] if args.sweep_only else [out / "runs.jsonl"])
    if args.fresh:
        for log in logs:
            moved = move_aside(log)
            if moved is not None:
                print(f"--fresh: moved the old {log.name} to {moved}")
    elif not args.report_only:
        for log in logs:
            check_log(log, args.resume)
    start = time.perf_counter()
    lrs = None
    try:
        if args.sweep:
            lrs, sweep_records = sweep(settings, args.jobs, args.base, out / "sweep.jsonl", args.resume)
            grids = {m: grid_of(m) for m in settings.methods}
            payload = {"lrs": lrs, "grids": grids, "seeds": list(sweep_seeds(settings)),
                       "scores": sweep_scores(sweep_records), "settings": asdict(settings), "runs": sweep_records}
            write_json_atomic(out / "lrs.json", payload, indent=1)
            if args.write_lrs:
                write_json_atomic(LR_PATH, merged_lrs_file(lrs, settings, signature=signature(settings, args.base)),
                                  indent=1)
            print(f"chosen learning rates written to {out / 'lrs.json'} after {time.perf_counter() - start:.0f} s")
            if args.sweep_only:
                return
        if args.report_only:
            records = logged_runs(settings, out / "runs.jsonl", lrs, args.base)
            base = {t: base_accuracy(t, settings, args.base) for t in settings.tasks}
        else:
            records, base = compare(settings, args.jobs, lrs, args.base, out / "runs.jsonl", args.resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished runs are in {out}/ (*.jsonl); rerun with --resume to continue",
              file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    summary = report.write_all(out, records, base, settings, elapsed, figures=not args.no_figures,
                               base_path=args.base, shared=shared_counterparts(settings, records, out, lrs, args.base))
    print(summary)
    print(f"\nelapsed {elapsed:.0f} s with {args.jobs} worker(s); outputs in {out}/")
