"""``ministeer bench``: ms per training step and per forward, against PyTorch eager when installed.

A training step is ``value_and_grad(loss_fn)`` w.r.t. every parameter (forward + backward,
no optimizer); a forward is ``forward`` without tracing. Each cell is the minimum over
``--repeats`` runs after one warm-up (the median is printed beside it): on a shared
machine the minimum is the least noisy estimate of what the code costs. ``floor cpu`` is
the step's matrix products alone on the same shapes (``perf/floor.py``) and ``/floor`` the
step's CPU time over it: what is left above the GEMMs.

    ministeer bench                          # numpy, all configs, f32 and f64, vs torch
    ministeer bench --backend cupy           # on the GPU (see scripts/gpu_check.sh)
    ministeer bench --composed all           # the plain compositions instead of ops' primitives
    ministeer bench --profile c2             # where the time of one training step goes

Results and their reading: docs/performance.md.
"""
import argparse
import contextlib
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import time

import numpy as np  # host side: token batches and timing arithmetic

from .. import ops
from ..backend import from_numpy, get_backend, set_backend, to_numpy
from ..model import Config, forward, init_params, loss_fn
from ..usage import Parser, positive_int
from .allocator import tune_allocator

CONFIGS = {  # name -> (d_model, n_layers, n_heads, T, B); vocabulary 256 (bytes)
    "c1": (64, 2, 4, 32, 16),
    "c2": (128, 4, 4, 64, 32),
    "c3": (256, 6, 8, 128, 32),
}
SLOW_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def make_config(name, preset, dtype):
    d, L, H, T, _ = CONFIGS[name]
    if preset == "gpt2":
        return Config.gpt2(vocab_size=256, d_model=d, n_layers=L, n_heads=H, n_ctx=T + 1, dtype=dtype)
    return Config.llama(vocab_size=256, d_model=d, n_layers=L, n_heads=H, n_kv_heads=H // 2,
                        d_mlp=4 * d, n_ctx=T + 1, dtype=dtype)


@contextlib.contextmanager
def composed_ops(names):
    """Run with ``ops.<name>`` replaced by ``ops.<name>_composed`` (bench only; restored after)."""
    saved = {n: getattr(ops, n) for n in names}
    try:
        for n in names:
            setattr(ops, n, ops.PRIMITIVES[n][1])
        yield
    finally:
        for n, fn in saved.items():
            setattr(ops, n, fn)


def timed(fn, repeats, sync=lambda: None):
    """(min, median) wall ms, then the median and the min CPU ms of the process (all its
    threads): on a loaded machine the CPU time is inflated far less than the wall time."""
    fn()
    sync()  # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        sync()
        times.append(1e3 * (time.perf_counter() - start))
        cpu.append(1e3 * (time.process_time() - cpu_start))
    return min(times), statistics.median(times), statistics.median(cpu), min(cpu)


def _sync():
    backend = get_backend()
    if backend.name == "cupy":
        backend.raw.cuda.runtime.deviceSynchronize()


def ours(cfg, batch, repeats):
    """(train ms, forward ms, GEMM floor ms) as ``timed`` tuples on the active backend."""
    from autograd import value_and_grad
    from .floor import run_products, step_products
    params, tokens = init_params(cfg, 0), from_numpy(batch)
    step = value_and_grad(loss_fn)
    train = timed(lambda: step(params, tokens, cfg), repeats, _sync)
    fwd = timed(lambda: forward(params, tokens[:, :-1], cfg), repeats, _sync)
    if get_backend().name != "numpy":
        return train, fwd, None
    products = step_products(cfg, batch.shape[0], batch.shape[1] - 1)
    return train, fwd, timed(lambda: run_products(products), repeats)


def theirs(cfg, batch, repeats):
    """The same two timings for the identical PyTorch model, after checking it is identical."""
    import torch
    from . import bench_torch as bt
    params = bt.from_params(init_params(cfg, 0), cfg, to_numpy)
    tokens = torch.from_numpy(batch)
    def step():
        for leaf in bt.leaves(params):
            leaf.grad = None
        bt.loss(params, tokens, cfg).backward()
    def fwd():
        with torch.no_grad():
            bt.forward(params, tokens[:, :-1], cfg)
    return timed(step, repeats), timed(fwd, repeats)


def check_torch_matches(preset):
    """Logits and gradients of the torch model equal ours to 1e-10 in float64 (else no timing)."""
    import torch
    from autograd import grad
    from . import bench_torch as bt
    from ..tree import named_leaves
    cfg = make_config("c1", preset, "float64").replace(n_ctx=16)
    batch = np.random.default_rng(0).integers(0, 256, (3, 16))
    params = init_params(cfg, 0, std=0.3)
    tparams = bt.from_params(params, cfg, to_numpy)
    ours_logits = to_numpy(forward(params, from_numpy(batch), cfg))
    their_logits = bt.forward(tparams, torch.from_numpy(batch), cfg).detach().numpy()
    np.testing.assert_allclose(their_logits, ours_logits, rtol=1e-10, atol=1e-10)
    bt.loss(tparams, torch.from_numpy(batch), cfg).backward()
    g = grad(loss_fn)(params, from_numpy(batch), cfg)
    for (name, ours_g), t in zip(named_leaves(g), bt.leaves(tparams), strict=True):
        np.testing.assert_allclose(t.grad.numpy(), to_numpy(ours_g), rtol=1e-9, atol=1e-12, err_msg=name)
    return float(np.max(np.abs(their_logits - ours_logits)))


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl to see the BLAS)"
    return "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture', '?')}, "
                     f"{p.get('threading_layer', '?')}, {p.get('num_threads')} threads) "
                     f"from {os.path.basename(p.get('filepath', '?'))}" for p in threadpool_info())


def profile(cfg, batch, top=14):
    """cProfile of five training steps (CPU time): the functions with the most own time."""
    from autograd import value_and_grad
    params, tokens = init_params(cfg, 0), from_numpy(batch)
    step = value_and_grad(loss_fn)
    step(params, tokens, cfg)
    prof = cProfile.Profile(time.process_time)  # CPU time: a loaded machine inflates wall time
    prof.enable()
    for _ in range(5):
        step(params, tokens, cfg)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _reexec_if_needed(args, argv):
    """OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some machines for old OpenBLAS builds) halve
    numpy's GEMM speed on current CPUs; BLAS reads them at load time, so rerun without them."""
    env = dict(os.environ)
    changed = [k for k in SLOW_BLAS_ENV if k in env and not args.keep_env]
    for k in changed:
        del env[k]
    if not changed or os.environ.get("MINISTEER_BENCH_REEXEC"):
        return None
    env["MINISTEER_BENCH_REEXEC"] = ", ".join(changed)
    return os.execve(sys.executable, [sys.executable, "-m", "ministeer", "bench", *argv], env)


def _names_from(valid, what):
    """argparse type: a comma list whose every item is in ``valid``."""
    def parse(text):
        names = [n for n in text.split(",") if n]
        unknown = [n for n in names if n not in valid]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {unknown or text!r}; valid: {sorted(valid)}")
        return names
    return parse


def _composed_names(text):
    """argparse type for ``--composed``: checked in the parser, before ``_reexec_if_needed`` can
    replace this process, so a typo is one line, not a re-executed run."""
    return sorted(ops.PRIMITIVES) if text == "all" else _names_from(ops.PRIMITIVES, "primitive")(text)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = Parser(prog="ministeer bench", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "fakecupy"],
                        help="numpy, cupy or fakecupy (default numpy)")
    parser.add_argument("--configs", default="c1,c2,c3", type=_names_from(CONFIGS, "config"),
                        help=f"comma list from {sorted(CONFIGS)}")
    parser.add_argument("--presets", default="gpt2,llama", type=_names_from(("gpt2", "llama"), "preset"))
    parser.add_argument("--dtypes", default="float32,float64", type=_names_from(("float32", "float64"), "dtype"))
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--composed", default=[], type=_composed_names, help="primitives to replace by their plain "
                        f"composition: a comma list from {sorted(ops.PRIMITIVES)}, or 'all'")
    parser.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if installed")
    parser.add_argument("--profile", metavar="CONFIG", choices=sorted(CONFIGS),
                        help="profile a training step instead of timing")
    parser.add_argument("--threads", type=positive_int, help="BLAS and torch threads (default: all cores)")
    parser.add_argument("--keep-env", action="store_true", help=f"keep {'/'.join(SLOW_BLAS_ENV)} if set")
    parser.add_argument("--ab", metavar="VARIANTS", help="interleaved A/B of comma-separated variants "
                        "instead of the table (see ministeer/perf/ab.py)")
    parser.add_argument("--ab-optimizer", action="store_true", help="A/B: flat vs per-leaf AdamW update")
    parser.add_argument("--ab-malloc", action="store_true", help="A/B: allocator tuning on a compare run")
    parser.add_argument("--scaling", action="store_true", help="ms and peak memory as T and d double")
    parser.add_argument("--figure", help="with --scaling: write the log-log figure here (matplotlib)")
    args = parser.parse_args(argv)
    _reexec_if_needed(args, argv)
    tuned = tune_allocator()
    if args.backend == "fakecupy":
        from ..backend import fake
        fake.register()
    set_backend(args.backend)
    if args.threads:
        _limit_threads(args.threads)
    composed = args.composed
    print(f"ministeer bench -- {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, python {platform.python_version()}, numpy {np.__version__}")
    print(f"backend: {args.backend}; BLAS: {blas_info()}")
    print("allocator: " + ("glibc tuned for this run (MINISTEER_MALLOC=0 turns it off)" if tuned else "default"))
    if os.environ.get("MINISTEER_BENCH_REEXEC"):
        print(f"re-executed with changed environment: {os.environ['MINISTEER_BENCH_REEXEC']}")
    if composed:
        print(f"composed (not fused) ops: {', '.join(composed)}")
    if args.ab or args.ab_optimizer or args.ab_malloc or args.scaling:
        return _experiments(args)
    print(describe_configs(args.configs, args.presets))
    rng = np.random.default_rng(0)
    with composed_ops(composed):
        if args.profile:
            d, L, H, T, B = CONFIGS[args.profile]
            cfg = make_config(args.profile, args.presets[0], args.dtypes[0])
            print(profile(cfg, rng.integers(0, 256, (B, T + 1))))
            return 0
        torch = _torch(args)
        if torch:
            torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
            for preset in args.presets:
                print(f"torch {torch.__version__} ({torch.get_num_threads()} threads) matches ours ({preset}): "
                      f"max |logit diff| {check_torch_matches(preset):.1e} in float64")
        header = f"{'config':<6} {'preset':<6} {'dtype':<8} {'train ms (min/med)':>19} {'fwd ms (min/med)':>17}"
        print(header + (f" {'torch train':>12} {'torch fwd':>10} {'train x':>8} {'fwd x':>6}"
                        f" {'cpu train x':>11} {'cpu fwd x':>9} {'cpu min x':>9}" if torch else
                        f" {'cpu train':>9} {'cpu fwd':>8}") + f" {'floor cpu':>9} {'/floor':>6}")
        for name in args.configs:
            d, L, H, T, B = CONFIGS[name]
            batch = rng.integers(0, 256, (B, T + 1))
            for preset in args.presets:
                for dtype in args.dtypes:
                    cfg = make_config(name, preset, dtype)
                    train, fwd, floor = ours(cfg, batch, args.repeats)
                    line = (f"{name:<6} {preset:<6} {dtype:<8} {train[0]:>9.1f}/{train[1]:<9.1f}"
                            f" {fwd[0]:>8.1f}/{fwd[1]:<8.1f}")
                    if torch:
                        t_train, t_fwd = theirs(cfg, batch, args.repeats)
                        line += (f" {t_train[0]:>12.1f} {t_fwd[0]:>10.1f} {train[0] / t_train[0]:>8.2f}"
                                 f" {fwd[0] / t_fwd[0]:>6.2f} {train[2] / t_train[2]:>11.2f} {fwd[2] / t_fwd[2]:>9.2f}"
                                 f" {train[3] / t_train[3]:>9.2f}")
                    else:
                        line += f" {train[2]:>9.1f} {fwd[2]:>8.1f}"
                    if floor is not None:  # CPU min: the step over its matrix products alone
                        line += f" {floor[3]:>9.1f} {train[3] / floor[3]:>6.2f}"
                    print(line, flush=True)
    return 0


def describe_configs(names, presets):
    """What c1/c2/c3 and the presets are, for the top of the output."""
    lines = [f"{n}: d={d} L={L} H={H} T={T} B={B}, V=256" for n, (d, L, H, T, B) in CONFIGS.items() if n in names]
    about = {"gpt2": "gpt2 = LayerNorm, learned positions, GELU (d_mlp=4d), biases, tied unembedding",
             "llama": "llama = RMSNorm, RoPE, SwiGLU (d_mlp=4d), GQA (n_kv_heads=H/2), untied"}
    return "configs: " + "; ".join(lines) + "\npresets: " + "; ".join(about[p] for p in presets if p in about)


def _experiments(args):
    """The A/B runs and the scaling sweep (docs/performance.md)."""
    from . import ab
    repeats, configs = args.repeats, args.configs
    if args.scaling:
        from . import scaling
        impls = ["ours"] + (["torch"] if _torch(args) else [])
        if "torch" in impls:
            _torch(args).set_num_threads(args.threads or len(os.sched_getaffinity(0)))
        scaling.main(impls, repeats, figure=args.figure)
    if args.ab_malloc:
        print("a compare run (full fine-tuning, 20 steps, listops), each sample a fresh process:")
        print(ab.summarize(ab.ab_malloc(repeats)))
    for name in configs if (args.ab or args.ab_optimizer) else []:
        d, L, H, T, B = CONFIGS[name]
        batch = np.random.default_rng(0).integers(0, 256, (B, T + 1))
        for preset in args.presets:
            for dtype in args.dtypes:
                cfg = make_config(name, preset, dtype)
                if args.ab_optimizer:
                    for what, adapters in (("all parameters", False), ("LoRA-shaped adapters", True)):
                        print(f"{name} {preset} {dtype} AdamW update, {what}:\n"
                              f"{ab.summarize(ab.ab_optimizer(cfg, repeats, adapters))}")
                if args.ab:
                    train, fwd = ab.ab_steps(cfg, batch, args.ab.split(","), repeats)
                    print(f"{name} {preset} {dtype} train step:\n{ab.summarize(train)}\n"
                          f"{name} {preset} {dtype} forward:\n{ab.summarize(fwd)}", flush=True)
    return 0


def _limit_threads(n):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl (pip install threadpoolctl)")
    _limit_threads.keep = threadpool_limits(limits=n)  # lasts for the process


def _torch(args):
    if args.no_torch or args.backend != "numpy":
        return None
    try:
        import torch
    except ImportError:
        print("torch not installed: no comparison (pip install torch; it is never a dependency)")
        return None
    return torch


if __name__ == "__main__":
    sys.exit(main())
