"""Interleaved A/B timing, for a shared and noisy machine: ``ministeer bench --ab A,B,...``.

Timing variant A in one run and B in the next measures the machine's load as much as the
code. Here every repeat times each variant once, in turn, in one process, so a change of
load hits all variants alike. Each variant reports the median and quartiles of its wall time
and of the CPU time of the process (all threads; it does not count time spent waiting for
a core), and the ratio of each median to the first variant's.

A variant is ``default``, ``hooked`` (every block on the reference path, not fused) or
``blasN`` (N BLAS threads, through threadpoolctl). The
numexpr paths measured in docs/performance.md were variants here too; they did not pay
and were removed (commit da246f3 has them).

    ministeer bench --ab blas2,blas1 --configs c2 --repeats 15
    ministeer bench --ab default,hooked --threads 1   # the fused block against the hooked path
    ministeer bench --ab-optimizer --configs c2      # flat vs per-leaf AdamW update
    ministeer bench --ab-malloc                      # the allocator tuning on a compare run
"""
import contextlib
import os
import statistics
import subprocess
import sys
import time


@contextlib.contextmanager
def variant(spec):
    """Apply a variant (``default`` or ``blasN``) for the duration of the block."""
    if spec == "default":
        yield
        return
    if spec == "hooked":  # every block on the reference path (no fused node)
        from ..fused import use_fused
        with use_fused(False):
            yield
        return
    if not (spec.startswith("blas") and spec[4:].isdigit()):
        raise ValueError(f"unknown variant {spec!r}; expected 'default', 'hooked' or blasN (e.g. blas1)")
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=int(spec[4:]), user_api="blas"):
        yield


def interleaved(fns, repeats, warmup=1):
    """``{name: (wall ms list, cpu ms list)}``; each repeat calls every ``(enter, fn)`` once, in turn."""
    times = {name: ([], []) for name in fns}
    for r in range(warmup + repeats):
        for name, (enter, fn) in fns.items():
            with enter():
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if r >= warmup:
                times[name][0].append(1e3 * wall)
                times[name][1].append(1e3 * cpu)
    return times


def summarize(times):
    """One line per variant: median [q1, q3] of wall ms and of CPU ms, and each median's ratio
    to the first variant's (under heavy load read the CPU columns: see the module docstring)."""
    lines, base = [], None
    for name, (wall, cpu) in times.items():
        (w1, w, w3), (c1, c, c3) = (_quartiles(wall), _quartiles(cpu))
        base = base or (w, c)
        lines.append(f"  {name:<28} wall {w:8.1f} [{w1:8.1f}, {w3:8.1f}] ms x{w / base[0]:5.2f}"
                     f"   cpu {c:8.1f} [{c1:8.1f}, {c3:8.1f}] ms x{c / base[1]:5.2f}")
    return "\n".join(lines)


def _quartiles(values):
    return statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3


def ab_steps(cfg, batch, specs, repeats):
    """Train step and forward of ``cfg`` under each variant, interleaved."""
    from autograd import value_and_grad
    from ..backend import from_numpy
    from ..model import forward, init_params, loss_fn
    params, tokens = init_params(cfg, 0), from_numpy(batch)
    step = value_and_grad(loss_fn)
    train = interleaved({s: (lambda s=s: variant(s), lambda: step(params, tokens, cfg)) for s in specs}, repeats)
    fwd = interleaved({s: (lambda s=s: variant(s), lambda: forward(params, tokens[:, :-1], cfg))
                       for s in specs}, repeats)
    return train, fwd


def ab_optimizer(cfg, repeats, adapters=False):
    """One AdamW update of every parameter of ``cfg`` (or, with ``adapters``, of rank-8 LoRA-shaped
    pairs on 7 matrices per layer): per leaf (the old ``fit``) vs flat buffers."""
    import numpy as np
    from ..model import init_params
    from ..train import AdamW, adamw_reference
    from ..tree import tree_leaves, tree_map
    params = init_params(cfg, 0)
    if adapters:
        d, dt = cfg.d_model, params["model"]["norm"]["weight"].dtype
        params = {f"{layer}.{site}": {"A": np.zeros((8, d), dt), "B": np.zeros((d, 8), dt)}
                  for layer in range(cfg.n_layers) for site in range(7)}
    grads = tree_map(lambda p: np.random.default_rng(1).normal(size=p.shape).astype(p.dtype), params)
    lrs = tree_map(lambda _: 1e-3, params)
    m, v = tree_map(np.zeros_like, params), tree_map(np.zeros_like, params)
    opt = AdamW(params, lrs)
    def per_leaf():
        for p, g, m_, v_ in zip(*map(tree_leaves, (params, grads, m, v))):
            adamw_reference(p, g, m_, v_, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0)
    n_leaves = len(tree_leaves(params))
    update = lambda: opt.update(params, grads)
    return interleaved({f"per leaf ({n_leaves} leaves)": (contextlib.nullcontext, per_leaf),
                        "flat (train.AdamW)": (contextlib.nullcontext, update)}, repeats)


def ab_malloc(repeats, method="full", steps=20):
    """A compare run (``run_one``) in fresh processes (``perf.malloc_child``), alternately with and
    without the allocator tuning.

    The tuning is process-wide and cannot be undone, so each sample is its own process."""
    times = {"default allocator": ([], []), "tuned (bench's)": ([], [])}
    for _ in range(repeats):
        for name, flag in (("default allocator", "0"), ("tuned (bench's)", "1")):
            env = dict(os.environ, MINISTEER_MALLOC=flag)
            out = subprocess.run([sys.executable, "-m", "ministeer.perf.malloc_child", method, str(steps)], env=env,
                                 capture_output=True, text=True, check=True).stdout.split()
            assert out[0] == str(flag == "1"), out
            times[name][0].append(float(out[1]))
            times[name][1].append(float(out[2]))
    return times
