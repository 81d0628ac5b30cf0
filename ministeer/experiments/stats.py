"""The statistics of ``compare``'s tables: per-cell intervals that fit runs which either learn
the format or stall, and verdicts from paired differences.

A *unit* is one seed of a cell: the runs of one ``(seed, init_seed)``. Each unit scored ``n``
test problems and got ``accuracy`` of them right. Outcomes are often bimodal (a run learns
the boxed format or stalls near 0%), so a cell reports more than a mean ± a normal interval:

- the mean over units and a 95% percentile bootstrap interval that resamples the units with
  replacement and, inside each drawn unit, its ``n`` test problems. Redrawing ``n`` problems
  with replacement from a run that got a share ``p`` right gives a ``Binomial(n, p)`` count,
  so the inner resample is that binomial draw, exactly, and needs only the accuracy;
- the median over units;
- ``k`` of ``n`` units that *learned the format*: test accuracy ``>= LEARNED`` (50%).

A comparison "A − B" pairs the units of A and B with the same ``(seed, init_seed)`` (same
training problems, batch order and test problems) and bootstraps the mean of the per-unit
differences, resampling units jointly and, inside each, the test problems. Where both runs
carry their per-problem verdicts (``correct``, a string of 0/1 in test order) the problems
are redrawn as pairs (a multinomial draw over right/wrong × right/wrong); otherwise the two
counts are redrawn as independent binomials, which errs wide. The comparison over all
tasks takes, per unit, the mean over tasks of the differences. ``verdict`` reads the
interval: "holds" where it excludes 0 on the claimed side, "level" where it holds 0, "does not
hold" where it excludes 0 on the other side.

Deterministic: every bootstrap draws from ``default_rng(BOOT_SEED)`` after sorting the units by
what their runs hold, so the same records, in any order and under any seed labels, give the
same numbers.
"""
import numpy as np  # host side: bookkeeping over a handful of runs

LEARNED = 0.5  # a run "learned the format" at >= 50% test accuracy (the one threshold)
LEVEL = 0.95  # coverage of every interval
N_BOOT = 4000
BOOT_SEED = 0


def unit_key(run):
    """Which seed of its cell a run is: ``(seed, init_seed)``; the init seed defaults to the seed."""
    return (run["seed"], run.get("init_seed", run["seed"]))


def _bounds(draws):
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return float(lo), float(hi)


def cell(runs, default_n=500):
    """``dict(mean, lo, hi, median, learned, n, points)`` of one cell's runs, in percent.

    ``points`` are the units' accuracies, in increasing order; diverged runs (accuracy None) are left
    out (the table flags them). Empty runs give Nones and ``n = 0``."""
    runs = sorted((r for r in runs if r.get("accuracy") is not None), key=lambda r: _content([r]))
    if not runs:
        return dict(mean=None, lo=None, hi=None, median=None, learned=0, n=0, points=[])
    acc = np.array([r["accuracy"] for r in runs], dtype=float)
    n = np.array([r.get("n_scored", default_n) for r in runs])
    rng = np.random.default_rng(BOOT_SEED)
    picks = rng.integers(0, len(runs), (N_BOOT, len(runs)))  # units drawn with replacement
    draws = (rng.binomial(n[picks], acc[picks]) / n[picks]).mean(axis=1)  # and their test problems
    lo, hi = _bounds(draws)
    return dict(mean=100 * float(acc.mean()), lo=100 * lo, hi=100 * hi, median=100 * float(np.median(acc)),
                learned=int((acc >= LEARNED).sum()), n=len(runs), points=[100 * float(a) for a in acc])


def _pair_counts(a, b):
    """``(n, p10, p01)`` of two runs on one unit's test problems: the shares right only in ``a`` and
    only in ``b``; None unless both carry per-problem verdicts of as many problems."""
    ca, cb = a.get("correct"), b.get("correct")
    if ca is not None and cb is not None and len(ca) == len(cb):
        x, y = np.frombuffer(ca.encode(), np.uint8) == 49, np.frombuffer(cb.encode(), np.uint8) == 49
        n = len(ca)
        return n, float(np.mean(x & ~y)), float(np.mean(~x & y))
    return None


def _draw_difference(rng, a, b, shape):
    """``shape`` bootstrap draws of ``acc(a) - acc(b)`` on one unit, test problems redrawn."""
    counts = _pair_counts(a, b)
    if counts is not None:  # pairs of verdicts redrawn together: n10 then n01 among the rest
        n, p10, p01 = counts
        n10 = rng.binomial(n, p10, shape)
        rest = 1.0 - p10
        n01 = rng.binomial(n - n10, 0.0 if rest <= 0 else min(1.0, p01 / rest))
        return (n10 - n01) / n
    na, nb = a.get("n_scored", 500), b.get("n_scored", 500)
    return rng.binomial(na, a["accuracy"], shape) / na - rng.binomial(nb, b["accuracy"], shape) / nb


def _content(runs):
    return tuple((r["accuracy"], r.get("n_scored", 500), r.get("correct") or "") for r in runs)


def paired(runs_a, runs_b, tasks):
    """The paired difference ``A − B`` (points) over the units both ran on every one of ``tasks``.

    Returns ``dict(diff, lo, hi, n, units)``: the mean over units of (mean over tasks of
    ``acc_A - acc_B``), with its bootstrap interval; Nones and ``n = 0`` when no unit pairs."""
    def by_unit(runs):
        return {(unit_key(r), r["task"]): r for r in runs if r.get("accuracy") is not None}
    a, b = by_unit(runs_a), by_unit(runs_b)
    units = [u for u in sorted({u for u, _ in a} & {u for u, _ in b})
             if all((u, t) in a and (u, t) in b for t in tasks)]
    if not units:
        return dict(diff=None, lo=None, hi=None, n=0, units=[])
    # ordered by what the runs hold, not by seed number: relabelling seeds changes nothing
    units.sort(key=lambda u: _content([a[u, t] for t in tasks] + [b[u, t] for t in tasks]))
    a_side = [[a[u, t] for t in tasks] for u in units]
    b_side = [[b[u, t] for t in tasks] for u in units]  # the same units in the same order: paired
    per_unit = np.array([np.mean([x["accuracy"] - y["accuracy"] for x, y in zip(xs, ys)])
                         for xs, ys in zip(a_side, b_side)])
    rng = np.random.default_rng(BOOT_SEED)
    picks = rng.integers(0, len(units), (N_BOOT, len(units)))  # units drawn with replacement, jointly
    # every unit's test problems redrawn N_BOOT × slots times, then the drawn unit's column is kept
    inner = np.stack([np.mean([_draw_difference(rng, x, y, picks.shape) for x, y in zip(xs, ys)], axis=0)
                      for xs, ys in zip(a_side, b_side)])  # [units, N_BOOT, slots]
    draws = np.take_along_axis(inner.transpose(1, 2, 0), picks[..., None], axis=2)[..., 0].mean(axis=1)
    lo, hi = _bounds(draws)
    return dict(diff=100 * float(per_unit.mean()), lo=100 * lo, hi=100 * hi, n=len(units),
                units=[list(u) for u in units])


def verdict(lo, hi, side=1):
    """"holds" where the interval ``[lo, hi]`` excludes 0 on the claimed ``side`` (+1: A > B,
    -1: A < B), "level" where it holds 0, "does not hold" where it excludes 0 on the other side."""
    if lo is None or hi is None:
        return "–"
    if lo <= 0 <= hi:
        return "level"
    return "holds" if (lo > 0) == (side > 0) else "does not hold"
