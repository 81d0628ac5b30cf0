"""``ministeer bench --scaling``: how the cost of a training step grows with T and with d.

Two sweeps of the Llama preset in float32, L = 2, B = 4, head dim 32:

* T = 32, 64, ..., 512 at d = 128 (4 heads). Linear layers and elementwise work grow
  like T, attention's scores and pattern like T^2: the local slope of log(ms) against
  log(T) rises from ~1 towards 2 as T^2 takes over, and the pattern's memory
  (B x H x T x T per layer) does the same.
* d = 64, 128, 256, 512 at T = 128 (H = d / 32, d_mlp = 4d). The matrix multiplies grow
  like d^2, everything else like d.

Per point: ms per training step (median over repeats, ours and torch's interleaved in this
process; wall time, and the process's CPU time, which a loaded machine inflates far less:
with one thread each it is the work done) and peak memory (the rise of the resident set, VmHWM, over two training steps in
a fresh process of its own: a process's peak can only be read once). The fitted exponent
is the least-squares slope of log(ms) on log(size) over the sweep; the local slopes are
between neighbouring points. Results and the figure: docs/performance.md.
"""
import math
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # host side: batches and fits

from ..io import atomic_write, write_json_atomic

T_SWEEP = dict(d=128, values=(32, 64, 128, 256, 512))
D_SWEEP = dict(T=128, values=(64, 128, 256, 512))
L, B, D_HEAD = 2, 4, 32


def point_config(d, T, dtype="float32"):
    from ..model import Config
    h = d // D_HEAD
    return Config.llama(vocab_size=256, d_model=d, n_layers=L, n_heads=h, n_kv_heads=max(1, h // 2),
                        d_mlp=4 * d, n_ctx=T + 1, dtype=dtype)


def _steps(impl, cfg, batch):
    """A zero-argument training step of ``impl`` ("ours" or "torch") on ``batch``."""
    if impl == "ours":
        from autograd import value_and_grad
        from ..model import init_params, loss_fn
        params, step = init_params(cfg, 0), value_and_grad(loss_fn)
        return lambda: step(params, batch, cfg)
    import torch
    from . import bench_torch as bt
    from ..backend import to_numpy
    from ..model import init_params
    params, tokens = bt.from_params(init_params(cfg, 0), cfg, to_numpy), torch.from_numpy(batch)
    def step():
        for leaf in bt.leaves(params):
            leaf.grad = None
        bt.loss(params, tokens, cfg).backward()
    return step


def _batch(T):
    return np.random.default_rng(0).integers(0, 256, (B, T + 1))


def _kib(field):
    return int(re.search(field + r":\s+(\d+)", open("/proc/self/status").read()).group(1))


def peak_child(impl, d, T):
    """Run in a fresh process: print the resident-set rise (MiB) over two training steps."""
    from .allocator import tune_allocator
    tune_allocator()  # as in the timing, so both see the same allocator
    if impl == "torch":
        import torch
        torch.set_num_threads(1)
    step = _steps(impl, point_config(d, T), _batch(T))
    before = _kib("VmRSS")
    step()
    step()
    print((_kib("VmHWM") - before) / 1024)


def peak_mib(impl, d, T):
    code = f"from ministeer.perf.scaling import peak_child; peak_child({impl!r}, {d}, {T})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def time_point(d, T, impls, repeats):
    """Median (wall ms, CPU ms) per training step for each impl, interleaved repeat by repeat."""
    cfg, batch = point_config(d, T), _batch(T)
    steps = {impl: _steps(impl, cfg, batch) for impl in impls}
    times = {impl: ([], []) for impl in impls}
    for r in range(repeats + 1):
        for impl, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            if r:  # the first round is the warm-up
                times[impl][0].append(1e3 * (time.perf_counter() - wall))
                times[impl][1].append(1e3 * (time.process_time() - cpu))
    return {impl: tuple(statistics.median(t) for t in pair) for impl, pair in times.items()}


def slope(sizes, values):
    """Least-squares exponent k of values ~ sizes^k."""
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def sweep(impls, repeats, memory=True, log=print):
    """Both sweeps: ``{"T": rows, "d": rows}``, a row per point with ms and MiB per impl."""
    out = {}
    for axis, spec in (("T", T_SWEEP), ("d", D_SWEEP)):
        rows = []
        for value in spec["values"]:
            d, T = (spec["d"], value) if axis == "T" else (value, spec["T"])
            timed = time_point(d, T, impls, repeats)
            row = dict(d=d, T=T, wall_ms={k: w for k, (w, _) in timed.items()}, ms={k: c for k, (_, c) in timed.items()})
            row["mib"] = {impl: peak_mib(impl, d, T) for impl in impls} if memory else {}
            rows.append(row)
            log(format_row(axis, row, impls))
        out[axis] = rows
    return out


def format_row(axis, row, impls):
    cells = [f"{axis}={row[axis]:<4}"]
    for impl in impls:
        mib = f" {row['mib'][impl]:7.1f} MiB" if row["mib"] else ""
        cells.append(f"{impl} {row['ms'][impl]:8.1f} cpu ms ({row['wall_ms'][impl]:8.1f} wall){mib}")
    return "  ".join(cells)


def exponents(result, impls):
    """Fitted exponents and local slopes of time and memory, per sweep and impl."""
    lines = []
    for axis, rows in result.items():
        sizes = [r[axis] for r in rows]
        for impl in impls:
            for what, key in (("ms", "ms"), ("MiB", "mib")):
                values = [r[key][impl] for r in rows if r[key]]
                if len(values) != len(sizes):
                    continue
                local = [math.log(b / a) / math.log(s2 / s1)
                         for a, b, s1, s2 in zip(values, values[1:], sizes, sizes[1:])]
                lines.append(f"{impl:<6} {what:<4} vs {axis}: exponent {slope(sizes, values):.2f}; local slopes "
                             + ", ".join(f"{x:.2f}" for x in local))
    return "\n".join(lines)


def plot(result, impls, path):
    """Log-log figure: ms per step and peak MiB against T and against d."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (axis, rows) in zip(axes, result.items()):
        sizes = [r[axis] for r in rows]
        for impl, style in zip(impls, ("o-", "s--")):
            ax.loglog(sizes, [r["ms"][impl] for r in rows], style, label=f"{impl}: CPU ms per step", base=2)
            if rows[0]["mib"]:
                ax.loglog(sizes, [r["mib"][impl] for r in rows], style, alpha=0.45, label=f"{impl}: peak MiB",
                          base=2)
        for k in (1, 2):  # guide lines through the first point of ours
            y0 = rows[0]["ms"][impls[0]]
            ax.loglog(sizes, [y0 * (s / sizes[0]) ** k for s in sizes], ":", color="grey", base=2)
            ax.annotate(f"~{axis}^{k}", (sizes[-1], y0 * (sizes[-1] / sizes[0]) ** k), color="grey")
        fixed = f"d = {rows[0]['d']}" if axis == "T" else f"T = {rows[0]['T']}"
        ax.set(xlabel=axis, title=f"training step vs {axis} ({fixed}, L = {L}, B = {B}, float32)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip(".") or "png"))
    return path


def main(impls, repeats, figure=None, json_path=None, memory=True):
    result = sweep(impls, repeats, memory)
    print(exponents(result, impls))
    if json_path:
        write_json_atomic(json_path, result, indent=1)
    if figure:
        print(f"figure: {plot(result, impls, figure)}")
    return result
