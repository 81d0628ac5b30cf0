"""Checkers for docs/09-block-backward.md: a block's reverse pass, by hand."""
import autograd
import numpy as np  # host side: test inputs and comparisons

from ..backend import from_numpy
from ..ops import rms_norm_composed
from .common import call, expect_close, fail, passed, rng_for


def check_rms_norm_vjp(rms_norm_vjp):
    """Exercise 9.1: ``rms_norm_vjp(g, x, w, eps) -> (dx, dw)``, eq. (9.3).

    ``x`` and ``g`` are ``[N, d]``, ``w`` is ``[d]``; ``y = w * x / sqrt(mean(x^2) + eps)``
    over the last axis, ``g = dL/dy``. Checked against autograd through the plain composition.
    """
    rng = rng_for(91)
    eps = 1e-5
    for N, d in ((3, 8), (5, 4)):
        x, w, g = rng.normal(size=(N, d)), rng.normal(size=d), rng.normal(size=(N, d))
        loss = lambda x, w: autograd.numpy.sum(rms_norm_composed(x, w, eps) * g)
        want_dx, want_dw = autograd.grad(loss, 0)(x, w), autograd.grad(loss, 1)(x, w)
        r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
        xhat, gw = x * r, g * w
        got = call("9.1", rms_norm_vjp, *map(from_numpy, (g, x, w)), eps,
                   on_error="g and x are [N, d], w is [d]; return the pair (dx [N, d], dw [d]).")
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            fail("9.1", f"return the pair (dx, dw), got {type(got).__name__}")
        expect_close("9.1", got[0], want_dx, what="dx", atol=1e-10, diagnoses=[
            (r * gw, "the mean term is missing: r = 1/rms(x) depends on x too, which subtracts "
                     "xhat * mean(g * w * xhat)."),
            (gw - xhat * np.mean(gw * xhat, axis=-1, keepdims=True), "multiply by r = 1/rms(x) at the end."),
            (r * (gw - x * np.mean(gw * x, axis=-1, keepdims=True)),
             "dr/dx = -r^3 x / d: the mean term is r^3 x mean(g w x) = r xhat mean(g w xhat), with the r's."),
            (r * (g - xhat * np.mean(g * xhat, axis=-1, keepdims=True)), "the gain w is missing: use g * w."),
            (-want_dx, "sign error."),
        ])
        expect_close("9.1", got[1], want_dw, what="dw", atol=1e-10, diagnoses=[
            (np.sum(g * x, axis=0), "dw sums g * xhat (the normalized x), not g * x."),
            (np.mean(g * xhat, axis=0), "dw is a sum over the rows, not a mean."),
            (g * xhat, "sum dw over the rows: w is shared by every token."),
        ])
    return passed("9.1", "the RMSNorm VJP", "Equal to autograd; ops._rms_grads computes the same.")
