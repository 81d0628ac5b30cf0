"""Checkers for docs/02-weight-updates-as-shifts.md: linear shifts, the JVP, constant steers."""
import math

import numpy as np  # host side: test inputs and comparisons
from autograd import make_jvp

from ..backend import from_numpy
from ..model import run_with_cache
from ..tree import tree_map
from .common import ExerciseFailed, call, expect_close, fail, host, passed, rng_for, tiny_model


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
    the directional derivative of the activation at ``site``, eq. (2.4). Checked against
    autograd's forward mode, and by the eps^2 fall of the remainder, eq. (2.5).
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
    return passed("2.2", "the first-order shift as a JVP", f"Remainder slope {slope:.2f} (eq. 2.5 says 2).")


def _constant_steer_truth(dW, X):
    targets = X @ dW.T  # [N, d_out]: the shifts the update induces, one per row
    v = targets.mean(axis=0)
    return v, float(((targets - v) ** 2).sum())


def check_best_constant_steer(best_constant_steer):
    """Exercise 2.3: ``best_constant_steer(dW, X) -> (v, residual)``, eq. (2.6)-(2.7).

    ``v`` minimizes sum_i ||dW x_i - v||^2 over rows x_i of ``X`` [N, d_in]; ``residual``
    is that minimum. Also checked: the residual is zero when X varies only inside ker dW.
    """
    rng = rng_for(5)
    dW, X = rng.normal(size=(4, 6)), rng.normal(size=(7, 6)) + 1.0
    out = call("2.3", best_constant_steer, from_numpy(dW), from_numpy(X),
               on_error="X is [N, d_in] and dW is [d_out, d_in]: the shifts are X @ dW.T, "
                        "averaged over the N rows (axis 0).")
    if not (isinstance(out, tuple) and len(out) == 2):
        fail("2.3", f"return a pair (v, residual), got {type(out).__name__}")
    v, residual = out
    want_v, want_r = _constant_steer_truth(dW, X)
    targets = X @ dW.T
    expect_close("2.3", v, want_v, what="v", atol=1e-10, diagnoses=[
        (targets[0], "v equals the first sample's shift; the best constant is the mean shift dW x_bar."),
        (-want_v, "sign error: v should equal +dW x_bar."),
    ])
    r = host(residual).item() if np.ndim(host(residual)) == 0 else None
    if r is None:
        fail("2.3", f"residual must be a scalar, got shape {np.shape(host(residual))}")
    norms = np.linalg.norm(targets - want_v, axis=1)
    for wrong, hint in ((norms.sum(), "you summed the norms; the residual sums the *squared* norms."),
                        (want_r / len(X), "you averaged; the residual is a sum over the N samples."),
                        (float((targets ** 2).sum()), "you forgot to subtract v: residual = sum ||dW x_i - v||^2."),
                        (math.sqrt(want_r), "you took a square root; the residual is the sum of squares.")):
        if not math.isclose(r, want_r, rel_tol=1e-9) and math.isclose(r, wrong, rel_tol=1e-9):
            fail("2.3", f"residual is wrong. Hint: {hint}")
    if not math.isclose(r, want_r, rel_tol=1e-9, abs_tol=1e-12):
        fail("2.3", f"residual is {r:.6g}, expected {want_r:.6g}.")
    # inputs varying only in ker dW: a constant vector is exact
    kernel = np.linalg.svd(dW)[2][dW.shape[0]:]  # rows spanning ker dW
    X_ker = 1.0 + rng.normal(size=(7, kernel.shape[0])) @ kernel
    _, r_ker = call("2.3", best_constant_steer, from_numpy(dW), from_numpy(X_ker))
    if abs(float(host(r_ker))) > 1e-9:
        fail("2.3", f"for inputs that differ only inside ker dW the residual should be 0, got {float(host(r_ker)):.3g}.")
    return passed("2.3", "the best constant steer", "v = dW x_bar, and the residual vanishes iff X varies only in ker dW.")


# ---------------------------------------------------------------- Exercise 2.4: write the property
# Implementations of best_constant_steer that a good property must reject, each with the
# hint shown when the student's property lets it through.

def _first_sample(dW, X):
    targets = host(X) @ host(dW).T
    return targets[0], float(((targets - targets[0]) ** 2).sum())


def _unsquared(dW, X):
    v, _ = _constant_steer_truth(host(dW), host(X))
    return v, float(np.linalg.norm(host(X) @ host(dW).T - v, axis=1).sum())


def _flipped(dW, X):
    v, _ = _constant_steer_truth(host(dW), host(X))
    return -v, float(((host(X) @ host(dW).T + v) ** 2).sum())


def _ignores_v(dW, X):
    v, _ = _constant_steer_truth(host(dW), host(X))
    return v, float(((host(X) @ host(dW).T) ** 2).sum())


BROKEN_CONSTANT_STEERS = {
    "uses the first sample instead of the mean": (
        _first_sample, "is v optimal? Moving v a little in any direction must not lower sum ||dW x_i - v||^2."),
    "sums unsquared norms": (
        _unsquared, "is the residual consistent with v? Recompute sum ||dW x_i - v||^2 from the returned v."),
    "returns -v (sign error)": (
        _flipped, "is v optimal? Compare the returned residual with the residual at a perturbed v."),
    "forgets to subtract v in the residual": (
        _ignores_v, "is the residual consistent with v? Also: inputs that vary only in ker dW must give 0."),
}


def _correct(dW, X):
    return _constant_steer_truth(host(dW), host(X))


def check_constant_steer_property(constant_steer_property):
    """Exercise 2.4: write a hypothesis property for ``best_constant_steer`` (eq. 2.6-2.7).

    ``constant_steer_property(impl)`` must return a hypothesis test -- a function decorated
    with ``@given`` taking no arguments -- that checks ``impl``. A good property passes for
    the true function and fails for every broken one in ``BROKEN_CONSTANT_STEERS``.
    """
    test = call("2.4", constant_steer_property, _correct)
    if not callable(test) or not hasattr(test, "hypothesis"):
        fail("2.4", "constant_steer_property(impl) must return a function decorated with "
                    "hypothesis' @given (and no other arguments), e.g. `@given(st.integers(0, 10**6))`.")
    try:
        test()
    except Exception as err:
        fail("2.4", f"your property fails for the *correct* implementation ({type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else ''}). Check your tolerances "
                    "(float64 sums: use math.isclose / np.allclose with rtol ~1e-9) and your algebra.")
    for label, (broken, hint) in BROKEN_CONSTANT_STEERS.items():
        caught = False
        try:
            call("2.4", constant_steer_property, broken)()
        except ExerciseFailed:
            raise
        except Exception:  # AssertionError or hypothesis' Flaky/MultipleFailures: caught
            caught = True
        if not caught:
            fail("2.4", f"your property passed an implementation that {label}. Ask: {hint}")
    return passed("2.4", "a property for the best constant steer",
                  f"It accepts the true function and catches all {len(BROKEN_CONSTANT_STEERS)} broken ones.")
