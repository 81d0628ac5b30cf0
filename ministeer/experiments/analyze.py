"""``ministeer analyze``: oracle analyses of a fully fine-tuned model (docs/results.md §Oracle).

For each task, fully fine-tune the base model with exactly ``compare``'s recipe (method
``full``, its lr from lrs.json, seed 0, same steps, data and schedule: FT is compare's
seed-0 full-FT run) and ask three questions of the fine-tuned model FT, on test prompts:

1. **MLP share** (paper: 40-70%): per layer, ||MLP-output change|| / ||block-output change||
   on the fine-tuned stream -- ``theory.where.skip_coverage``, eq. (4.4).
2. **Spectrum** of the oracle post-block shifts delta_l = h_l^FT - T_l(h_{l-1}^FT)
   (``theory.oracle.lockstep_shifts``, eq. (4.6)) over all tokens: near low-rank?
   Reported as the number of singular directions holding 90% / 99% of the energy.
3. **Linear fit vs trained adapter**: fit delta_l ~ M_l h_l by least squares with rank
   <= 8 (``theory.fitting.fit_rank_r``), apply it as a post-block steer on the base model,
   and measure KL(FT || steered) on the answer positions; compare with the trained
   post-block r=8 SiLU adapter, the base model, and the oracle (4.5). Full FT also moves
   the embeddings, final norm and unembedding, which no post-block shift can copy, so the
   oracle is exact only for the blocks: its KL is what the non-block change alone costs
   (``embed_change`` reports that change).

The prompts are test examples of one common length, so no position is padding. Tasks
run in parallel worker processes (``--jobs``).
"""
import time
from collections import Counter
from pathlib import Path

import numpy as np  # host side: summary statistics

from .. import adapters as A
from ..io import CheckpointError, write_json_atomic, write_text_atomic
from ..backend import to_numpy
from ..model import forward, loss_fn, run_with_cache
from ..tasks import TASK_NAMES, accuracy, batch_sampler, encode, examples
from ..theory.fitting import fit_rank_r
from ..theory.oracle import lockstep_shifts, oracle_hooks
from ..theory.where import skip_coverage
from ..tree import named_leaves
from ..usage import Parser, UsageError, existing_file, folder_lock, positive_int, writable_folder
from .compare import QUICK, Settings
from .rates import load_lrs, lookup_lr
from .pool import run_jobs_plain
from .pretrain import BASE_PATH, load_base


def same_length_batch(task, n_pool=1000, max_n=256, seed=0):
    """Test examples that all have the most common token length: ``(examples, batch)``."""
    pool = examples(task, "test", n_pool, seed=seed)
    lengths = [len(encode([e])["tokens"][0]) for e in pool]
    common = Counter(lengths).most_common(1)[0][0]
    chosen = [e for e, n in zip(pool, lengths) if n == common][:max_n]
    return chosen, encode(chosen)


def kl_on_answers(logits_ref, logits, mask):
    """Mean KL(ref || other) over the positions that predict completion tokens (nats)."""
    ref, other = (to_numpy(x).astype(np.float64) for x in (logits_ref, logits))
    logp = ref - np.logaddexp.reduce(ref, axis=-1, keepdims=True)
    logq = other - np.logaddexp.reduce(other, axis=-1, keepdims=True)
    kl = (np.exp(logp) * (logp - logq)).sum(-1)  # [B, T]
    where = np.asarray(mask)[:, 1:] > 0  # position t predicts token t + 1
    return float(kl[:, :-1][where].mean())


def spectrum(shifts):
    """Singular values of the stacked shifts [N, d] (uncentered), largest first, and energy ranks."""
    s = np.linalg.svd(np.asarray(to_numpy(shifts)).reshape(-1, shifts.shape[-1]), compute_uv=False)
    energy = np.cumsum(s ** 2) / np.sum(s ** 2)
    return s, int(np.searchsorted(energy, 0.90) + 1), int(np.searchsorted(energy, 0.99) + 1)


def linear_fit_hooks(params, params_ft, tokens, cfg, r):
    """Post-block hooks h <- h + M_l h, M_l the rank-r least-squares fit of the lockstep oracle."""
    shifts, inputs = oracle_data(params, params_ft, tokens, cfg)
    hooks = {}
    for layer, delta in shifts.items():
        M, _, _ = fit_rank_r(inputs[layer].reshape(-1, cfg.d_model), delta.reshape(-1, cfg.d_model), r)
        hooks[f"blocks.{layer}.hook_resid_post"] = lambda x, name, M=M: x + x @ M.T
    return hooks


def oracle_data(params, params_ft, tokens, cfg):
    """``(shifts, inputs)``: per layer the lockstep oracle shift delta_l and what a post-block
    adapter reads there, T_l(h_{l-1}^FT) = h_l^FT - delta_l."""
    shifts = lockstep_shifts(params, params_ft, tokens, cfg)
    _, cache = run_with_cache(params_ft, tokens, cfg, names="blocks.*.hook_resid_post")
    return shifts, {l: cache[f"blocks.{l}.hook_resid_post"] - shifts[l] for l in shifts}


def relative_change(params, params_ft):
    """``{weight: ||W_FT - W|| / ||W||}`` for the non-block weights full FT moved
    (embedding, final norm, unembedding): the part of FT no post-block shift can copy."""
    parts = {"embed": lambda p: p["model"]["embed_tokens"], "final_norm": lambda p: p["model"]["norm"],
             "unembed": lambda p: p["lm_head"]}
    flat = lambda tree: np.concatenate([np.ravel(to_numpy(x)).astype(np.float64) for _, x in named_leaves(tree)])
    return {name: float(np.linalg.norm(flat(get(params_ft)) - flat(get(params))) / np.linalg.norm(flat(get(params))))
            for name, get in parts.items()}


def analyze_task(task, lrs, settings, base_path=str(BASE_PATH), rank=8):
    params, cfg = load_base(base_path)
    train = examples(task, "train", settings.n_train, seed=settings.data_seed)  # compare's seed-0 draw
    fit = lambda method: A.train_method(method, params, cfg, batch_sampler(train, settings.batch_size, seed=0),
                                        steps=settings.steps, lr=lookup_lr(lrs, method, task), seed=0,
                                        clip=settings.clip)[0]
    params_ft = A.adapted_params(params, fit("full"))
    chosen, batch = same_length_batch(task)
    tokens, mask = batch["tokens"], batch["mask"]
    coverage = skip_coverage(params, params_ft, tokens, cfg)
    shifts = lockstep_shifts(params, params_ft, tokens, cfg)
    spectra = {l: spectrum(s) for l, s in shifts.items()}
    logits_ft = forward(params_ft, tokens, cfg)
    steered = {"base (no steer)": {}, "oracle (blocks)": oracle_hooks(params, params_ft, cfg),
               f"rank-{rank} linear fit of oracle": linear_fit_hooks(params, params_ft, tokens, cfg, rank),
               "trained postblock_silu": A.adapter_hooks(fit("postblock_silu"))}
    kl = {name: kl_on_answers(logits_ft, forward(params, tokens, cfg, hooks=h), mask) for name, h in steered.items()}
    test = examples(task, "test", settings.n_test, seed=settings.data_seed)
    acc = {name: accuracy(lambda t, _, h=h: forward(params, t, cfg, hooks=h), test, n_ctx=cfg.n_ctx, forced=True)
           for name, h in steered.items()}
    acc["full FT"] = accuracy(lambda t, _: forward(params_ft, t, cfg), test, n_ctx=cfg.n_ctx, forced=True)
    return dict(task=task, n_prompts=len(chosen), n_tokens=int(tokens.size),
                mlp_share=[c["share"] for c in coverage],
                post_mlp_gap=[c["post_mlp_gap"] / max(c["block_change"], 1e-300) for c in coverage],
                spectrum={str(l): dict(singular_values=[float(x) for x in s], rank90=r90, rank99=r99)
                          for l, (s, r90, r99) in spectra.items()},
                embed_change=relative_change(params, params_ft), kl=kl, accuracy=acc)


def _analyze_job(job):
    return analyze_task(**job)


def markdown(results, rank=8):
    lines = ["| task | MLP share per layer | 90% / 99% energy rank per layer (of d) | "
             f"KL base | KL rank-{rank} fit | KL trained SiLU | KL oracle (blocks) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        share = ", ".join(f"{100 * s:.0f}%" for s in r["mlp_share"])
        ranks = ", ".join(f"{v['rank90']}/{v['rank99']}" for v in r["spectrum"].values())
        kl = r["kl"]
        lines.append(f"| {r['task']} | {share} | {ranks} | {kl['base (no steer)']:.3f} | "
                     f"{kl[f'rank-{rank} linear fit of oracle']:.3f} | {kl['trained postblock_silu']:.3f} | "
                     f"{kl['oracle (blocks)']:.3f} |")
    columns = results[0]["accuracy"]
    lines += ["", "| task | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for r in results:
        lines.append(f"| {r['task']} | " + " | ".join(f"{100 * a:.1f}" for a in r["accuracy"].values()) + " |")
    return "\n".join(lines)


def main(argv=()):
    parser = Parser(prog="ministeer analyze", description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="output folder (default runs/analyze, or runs/analyze-quick)")
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES, default=list(TASK_NAMES))
    parser.add_argument("--quick", action="store_true", help="few steps, one task: a smoke test")
    parser.add_argument("--jobs", type=positive_int, default=2, help="worker processes (one task each)")
    parser.add_argument("--base", type=existing_file, default=str(BASE_PATH), help="base checkpoint")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    try:
        load_base(args.base)  # a damaged --base stops here, not in a worker after minutes
    except CheckpointError as err:
        raise UsageError(f"--base: {err}") from None
    out = writable_folder(args.out or ("runs/analyze-quick" if args.quick else "runs/analyze"))
    with folder_lock(out, "--out"):
        _analyze_into(out, args)


def _analyze_into(out, args):
    settings = Settings(**QUICK) if args.quick else Settings()
    tasks = args.tasks[:1] if args.quick else args.tasks
    lrs, start = load_lrs(), time.perf_counter()
    jobs = [dict(task=t, lrs=lrs, settings=settings, base_path=args.base) for t in tasks]
    results = run_jobs_plain(_analyze_job, jobs, args.jobs, desc="analyze (tasks done)")
    write_json_atomic(out / "analysis.json", results, indent=1)
    table = markdown(results)
    write_text_atomic(out / "analysis.md", table + "\n")
    if not args.no_figures:
        from .figures import analysis_figures
        analysis_figures(results, out / "figures")
    print(table)
    print(f"\nelapsed {time.perf_counter() - start:.0f} s with {args.jobs} worker(s); outputs in {out}/")
