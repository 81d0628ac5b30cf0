"""Checkers for docs/02-weight-updates-as-shifts.md: linear shifts, input-side shifts, the JVP."""
import numpy as np  # host side: test inputs and comparisons
from autograd import make_jvp

from ..backend import from_numpy
from ..model import run_with_cache
from ..tree import tree_map
from .common import call, expect_close, fail, host, passed, rng_for, tiny_model


def check_linear_shift(linear_shift):
    """Exercise 2.1: ``linear_shift(W, dW, x)`` is the output shift of ``W -> W + dW`` on rows ``x``.

    ``W`` and ``dW`` are ``[d_out, d_in]`` (Hugging Face layout, y = x @ W.T), ``x`` is
    ``[N, d_in]``, the answer ``[N, d_out]``. Eq. (2.1): the shift is exactly ``dW x``.
    """
    rng = rng_for(3)
    for d_out, d_in in ((5, 5), (3, 7)):
        W, dW = rng.normal(size=(d_out, d_in)), rng.normal(size=(d_out, d_in))
        x = rng.normal(size=(4, d_in))
        want = x @ (W + dW).T - x @ W.T
        got = call("2.1", linear_shift, from_numpy(W), from_numpy(dW), from_numpy(x),
                   on_error="W and dW are [d_out, d_in] and x is [N, d_in], so a row maps to x @ W.T.")
        expect_close("2.1", got, want, what=f"the shift for W of shape {W.shape}", atol=1e-12, diagnoses=[
            (x @ dW if d_out == d_in else None,
             "transposed matrix: with W stored as [d_out, d_in], a row x maps to x @ W.T, so the shift is x @ dW.T."),
            ((x @ dW.T).T, "you returned [d_out, N]; return one row per input row, [N, d_out]."),
            (-(x @ dW.T), "sign error: the update is W + dW, so the shift is +dW x."),
            (x @ (W + dW).T, "that is the fine-tuned output itself; subtract the base output W x."),
            (x @ W.T, "that is the base output; the shift is what the update adds to it."),
        ])
    return passed("2.1", "a weight update as an output shift", "(W + dW) x - W x = dW x, exactly (eq. 2.1).")


def check_first_order_shift(first_order_shift):
    """Exercise 2.2: ``first_order_shift(params, delta, tokens, cfg, site)`` = J_theta s[delta].

    ``delta`` has the structure of ``params`` (zeros where nothing changes). The answer is
    the directional derivative of the activation at ``site``, eq. (2.5). Checked against
    autograd's forward mode, and by the eps^2 fall of the remainder, eq. (2.7).
    """
    cfg, params, tokens = tiny_model("llama", seed=4, n_layers=2, batch=1, n_pos=4)
    rng = rng_for(4)
    for site in ("blocks.1.hook_resid_post", "blocks.0.hook_mlp_out"):
        delta = tree_map(lambda a: from_numpy(rng.normal(size=a.shape)), params)
        act = lambda p: run_with_cache(p, tokens, cfg, names=[site])[1][site]
        base, jvp = make_jvp(act)(params)(delta)
        moved = act(tree_map(lambda a, d: a + d, params, delta))
        got = call("2.2", first_order_shift, params, delta, tokens, cfg, site)
        expect_close("2.2", got, jvp, what=f"the first-order shift at {site}", atol=1e-8, rtol=1e-7, diagnoses=[
            (-host(jvp), "sign error: the shift points along +delta (theta + eps*delta)."),
            (host(moved) - host(base), "that is the exact shift s(theta+delta) - s(theta); the first-order "
                                       "shift is its linear part, J[delta] (use autograd.make_jvp)."),
            (host(moved), "that is the activation of the updated model, not a shift."),
        ])
    # the defining property: the remainder falls like eps^2
    eps = np.array([1e-2, 1e-3, 1e-4])
    err = [np.abs(host(act(tree_map(lambda a, d: a + e * d, params, delta))) - host(base) - e * host(got)).max()
           for e in eps]
    slope = float(np.polyfit(np.log(eps), np.log(err), 1)[0])
    if abs(slope - 2.0) > 0.2:
        fail("2.2", f"the remainder falls with slope {slope:.2f} on a log-log plot; expected 2.")
    return passed("2.2", "the first-order shift as a JVP", f"Remainder slope {slope:.2f} (eq. 2.7 says 2).")


def check_input_shift(input_shift):
    """Exercise 2.3: ``input_shift(W, dW, x)``: the smallest input shift dx with W dx closest to dW x, eq. (2.3).

    ``W, dW`` are ``[d_out, d_in]``, ``x`` is ``[N, d_in]``, the answer ``[N, d_in]``. When
    col(dW) is not inside col(W) no input shift is exact; the answer is then the
    least-squares one, and the gap is eq. (2.4).
    """
    rng = rng_for(12)
    for d_out, d_in in ((7, 3), (3, 5), (4, 4)):
        W, dW, x = rng.normal(size=(d_out, d_in)), rng.normal(size=(d_out, d_in)), rng.normal(size=(6, d_in))
        want = np.linalg.lstsq(W, (x @ dW.T).T, rcond=None)[0].T  # minimum-norm least squares
        got = call("2.3", input_shift, *map(from_numpy, (W, dW, x)),
                   on_error="W and dW are [d_out, d_in]; W is not square in general, so use the "
                            "pseudo-inverse np.linalg.pinv(W) ([d_in, d_out]).")
        expect_close("2.3", got, want, what=f"dx for W of shape {W.shape}", atol=1e-9, diagnoses=[
            (x @ (W.T @ dW).T, "W^T is not an inverse of W: use the pseudo-inverse W^+ = np.linalg.pinv(W)."),
            (want.T, "you returned [d_in, N]; return one row per input, [N, d_in]."),
            (-want, "sign error: W (x + dx) should move towards (W + dW) x."),
            (x @ dW.T, "that is the output shift dW x; the exercise asks for the input shift dx with W dx = dW x."),
            (x @ (np.linalg.pinv(W) @ dW), "transposed matrix: rows of x map by x @ M.T, with M = W^+ dW."),
        ])
    return passed("2.3", "the input-side shift", "dx = W^+ dW x; exact iff col(dW) lies in col(W).")
