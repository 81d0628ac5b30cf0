"""How a first-order claim is checked: the remainder must fall like eps^2.

A first-order statement ``f(eps) = f(0) + eps f'(0) + O(eps^2)`` is not tested with a
tolerance -- any tolerance would be arbitrary. Instead we measure the remainder
``R(eps) = ||f(eps) - f(0) - eps f'(0)||`` over a few decades of eps and fit its
log-log slope, which must be 2 (docs/02-weight-updates-as-shifts.md eq. (2.8)).

Two things spoil the fit, and both are guarded against here:

* the float64 floor: below ~1e3 ulps of the compared values the remainder is rounding
  noise, not curvature, so such points are dropped (``floor``);
* an *exact* first-order statement (a linear layer): every point is at the floor, and
  "slope 2" is meaningless. ``loglog_slope`` then raises, so a caller must decide.
"""
import math

FLOAT64_EPS = 2.220446049250313e-16


def rounding_floor(scale, ulps=1e3):
    """The remainder below which rounding dominates: ``ulps`` float64 ulps of ``scale``."""
    return ulps * FLOAT64_EPS * max(float(scale), 1e-300)


def loglog_slope(eps, errs, floor=0.0):
    """Least-squares slope of log(err) against log(eps) over the points with err > floor.

    docs/02-weight-updates-as-shifts.md eq. (2.8): for R(eps) = C eps^p + o(eps^p) the
    slope is p; a first-order claim needs p = 2 (tests/test_claim_02_glu_update.py,
    tests/test_claim_15_block_first_order.py, tests/test_translate.py).
    Raises ValueError when fewer than three points lie above the floor.
    """
    pts = [(math.log(e), math.log(r)) for e, r in zip(eps, errs) if r > floor and e > 0]
    if len(pts) < 3:
        raise ValueError(f"only {len(pts)} of {len(errs)} remainders lie above the rounding floor "
                         f"{floor:.3g}: the map is linear to machine precision here (errs={list(errs)}), "
                         "so there is no slope to fit")
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def local_slopes(eps, errs):
    """Slopes between neighbouring points, largest eps first: how the log-log curve bends."""
    pts = sorted(((math.log(e), math.log(r)) for e, r in zip(eps, errs)), reverse=True)
    return [(y1 - y0) / (x1 - x0) for (x0, y0), (x1, y1) in zip(pts, pts[1:])]


def settled_slope(eps, errs, floor=0.0, settle=0.15):
    """``loglog_slope`` over the asymptotic range only, chosen from the measured local slopes.

    At the largest eps the third-order term can still bend the curve (a local slope of 1.2
    at eps = 1e-2 that settles to 2.0 by eps = 1e-3). Drop the largest eps while its local
    slope differs from the next one by more than ``settle`` and at least three points would
    remain; then fit. Points at the rounding floor are dropped first, as in ``loglog_slope``.
    Raises ValueError when fewer than three points lie above the floor.
    """
    pts = sorted(((e, r) for e, r in zip(eps, errs) if r > floor and e > 0), reverse=True)
    while len(pts) > 3:
        s = local_slopes(*zip(*pts[:3]))
        if abs(s[0] - s[1]) <= settle:
            break
        pts = pts[1:]
    return loglog_slope([e for e, _ in pts], [r for _, r in pts], floor)
