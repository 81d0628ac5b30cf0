"""Checkers for docs/03-glu-and-pre-mlp.md: the pre-MLP Jacobian A(h) and what it cannot reach."""
import autograd
import autograd.numpy as anp
import numpy as np  # host side: test inputs and comparisons

from ..backend import from_numpy
from .common import call, expect_close, passed, rng_for


def _silu(x):
    return x / (1.0 + anp.exp(-x))


def _glu(h, W_g, W_u, W_d):
    return W_d @ (_silu(W_g @ h) * (W_u @ h))  # eq. (3.1)


def check_glu_jacobian(glu_jacobian):
    """Exercise 3.1: ``glu_jacobian(h, W_g, W_u, W_d)`` = A(h), eq. (3.3), for one token.

    ``h`` is ``[d]``; ``W_g, W_u`` are ``[m, d]``; ``W_d`` is ``[d, m]``; A(h) is ``[d, d]``:
    the derivative of ``y = W_d (silu(W_g h) * (W_u h))`` with respect to ``h``.
    Checked against ``autograd.jacobian`` of the GLU itself.
    """
    rng = rng_for(6)
    d, m = 5, 7
    for _ in range(3):
        h = rng.normal(size=d)
        W_g, W_u, W_d = rng.normal(size=(m, d)), rng.normal(size=(m, d)), rng.normal(size=(d, m))
        want = autograd.jacobian(_glu)(h, W_g, W_u, W_d)
        a_g, a_u = W_g @ h, W_u @ h
        s = 1.0 / (1.0 + np.exp(-a_g))
        silu, dsilu = a_g * s, s * (1.0 + a_g * (1.0 - s))
        gated, ungated = W_d @ ((dsilu * a_u)[:, None] * W_g), W_d @ (silu[:, None] * W_u)
        got = call("3.1", glu_jacobian, *map(from_numpy, (h, W_g, W_u, W_d)),
                   on_error="shapes: W_g, W_u are [m, d], W_d is [d, m]; diag(a) W is a[:, None] * W.")
        expect_close("3.1", got, want, what="A(h)", atol=1e-10, diagnoses=[
            (want.T, "transposed matrix: A(h)[i, j] = d y_i / d h_j, so rows index the output."),
            (ungated, "the gated path is missing: the gate a_g = W_g h depends on h too, giving "
                      "W_d diag(silu'(a_g) * a_u) W_g."),
            (gated, "the un-gated path is missing: W_d diag(silu(a_g)) W_u."),
            (W_d @ ((silu * a_u)[:, None] * W_g) + ungated,
             "the gated path needs the derivative silu'(a_g), not silu(a_g)."),
            (W_d @ ((s * a_u)[:, None] * W_g) + ungated,
             "silu'(x) is not sigmoid(x): silu'(x) = s + x s (1 - s) with s = sigmoid(x)."),
            (-want, "sign error."),
        ])
    return passed("3.1", "the pre-MLP Jacobian A(h)", "Equal to autograd.jacobian of the GLU.")


def check_unreachable_part(unreachable_part):
    """Exercise 3.2: ``unreachable_part(W_d, dW_d, M)``: the part of ``dW_d m`` outside col(W_d), eq. (3.5).

    ``W_d, dW_d`` are ``[d, m]``; ``M`` is ``[N, m]`` (one hidden vector per row); the answer
    is ``[N, d]``. Checked with a rank-deficient ``W_d``, where the answer is not zero.
    """
    rng = rng_for(7)
    d, m, rank = 6, 9, 3
    W_d = rng.normal(size=(d, rank)) @ rng.normal(size=(rank, m))  # col(W_d) has dimension 3 < d
    dW_d, M = rng.normal(size=(d, m)), rng.normal(size=(4, m))
    targets = M @ dW_d.T  # [N, d]: the shifts (dW_d) m
    best = np.linalg.lstsq(W_d, targets.T, rcond=None)[0]  # the closest W_d z to each target
    want = targets - (W_d @ best).T
    got = call("3.2", unreachable_part, *map(from_numpy, (W_d, dW_d, M)),
               on_error="W_d and dW_d are [d, m], M is [N, m]; the shifts are M @ dW_d.T, [N, d].")
    naive = targets - targets @ (W_d @ W_d.T).T
    expect_close("3.2", got, want, what="the unreachable part", atol=1e-9, diagnoses=[
        (targets - want, "you returned the *reachable* part P (dW_d m); the unreachable part is (I - P) dW_d m."),
        (naive, "W_d W_d^T is not a projector (W_d's columns are not orthonormal). Use an orthonormal "
                "basis of col(W_d) from SVD/QR, or the pseudo-inverse: P = W_d pinv(W_d)."),
        (-want, "sign error: return dW_d m minus its projection, not the other way round."),
        (targets, "nothing was projected out: subtract the component inside col(W_d)."),
        (want.T, "you returned [d, N]; return one row per hidden vector, [N, d]."),
    ])
    return passed("3.2", "the unreachable part of a down-projection update",
                  f"Its norm here is {np.linalg.norm(want):.3f} > 0: no pre-MLP shift can produce it.")
