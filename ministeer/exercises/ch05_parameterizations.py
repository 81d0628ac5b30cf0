"""Checkers for docs/05-parameterizations.md: constant steers (and a property for them), the
post-block adapter, LoReFT, parameter counts."""
import math

import autograd.numpy as anp
import numpy as np  # host side: test inputs and comparisons

from ..backend import from_numpy
from ..model import forward, run_with_cache
from .common import ExerciseFailed, call, expect_close, fail, host, passed, rng_for, tiny_model


def _silu(x):
    return x / (1.0 + anp.exp(-x))


def _constant_steer_truth(dW, X):
    targets = X @ dW.T  # [N, d_out]: the shifts the update induces, one per row
    v = targets.mean(axis=0)
    return v, float(((targets - v) ** 2).sum())


def check_best_constant_steer(best_constant_steer):
    """Exercise 5.1: ``best_constant_steer(dW, X) -> (v, residual)``, eq. (5.1)-(5.2).

    ``v`` minimizes sum_i ||dW x_i - v||^2 over rows x_i of ``X`` [N, d_in]; ``residual``
    is that minimum. Also checked: the residual is zero when X varies only inside ker dW.
    """
    rng = rng_for(5)
    dW, X = rng.normal(size=(4, 6)), rng.normal(size=(7, 6)) + 1.0
    out = call("5.1", best_constant_steer, from_numpy(dW), from_numpy(X),
               on_error="X is [N, d_in] and dW is [d_out, d_in]: the shifts are X @ dW.T, "
                        "averaged over the N rows (axis 0).")
    if not (isinstance(out, tuple) and len(out) == 2):
        fail("5.1", f"return a pair (v, residual), got {type(out).__name__}")
    v, residual = out
    want_v, want_r = _constant_steer_truth(dW, X)
    targets = X @ dW.T
    expect_close("5.1", v, want_v, what="v", atol=1e-10, diagnoses=[
        (targets[0], "v equals the first sample's shift; the best constant is the mean shift dW x_bar."),
        (-want_v, "sign error: v should equal +dW x_bar."),
    ])
    r = host(residual).item() if np.ndim(host(residual)) == 0 else None
    if r is None:
        fail("5.1", f"residual must be a scalar, got shape {np.shape(host(residual))}")
    norms = np.linalg.norm(targets - want_v, axis=1)
    for wrong, hint in ((norms.sum(), "you summed the norms; the residual sums the *squared* norms."),
                        (want_r / len(X), "you averaged; the residual is a sum over the N samples."),
                        (float((targets ** 2).sum()), "you forgot to subtract v: residual = sum ||dW x_i - v||^2."),
                        (math.sqrt(want_r), "you took a square root; the residual is the sum of squares.")):
        if not math.isclose(r, want_r, rel_tol=1e-9) and math.isclose(r, wrong, rel_tol=1e-9):
            fail("5.1", f"residual is wrong. Hint: {hint}")
    if not math.isclose(r, want_r, rel_tol=1e-9, abs_tol=1e-12):
        fail("5.1", f"residual is {r:.6g}, expected {want_r:.6g}.")
    # inputs varying only in ker dW: a constant vector is exact
    kernel = np.linalg.svd(dW)[2][dW.shape[0]:]  # rows spanning ker dW
    X_ker = 1.0 + rng.normal(size=(7, kernel.shape[0])) @ kernel
    _, r_ker = call("5.1", best_constant_steer, from_numpy(dW), from_numpy(X_ker))
    if abs(float(host(r_ker))) > 1e-9:
        fail("5.1", f"for inputs that differ only inside ker dW the residual should be 0, got {float(host(r_ker)):.3g}.")
    return passed("5.1", "the best constant steer", "v = dW x_bar, and the residual vanishes iff X varies only in ker dW.")


# ---------------------------------------------------------------- Exercise 5.2: write the property
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
    """Exercise 5.2: write a hypothesis property for ``best_constant_steer`` (eq. 5.1-5.2).

    ``constant_steer_property(impl)`` must return a hypothesis test -- a function decorated
    with ``@given`` taking no arguments -- that checks ``impl``. A good property passes for
    the true function and fails for every broken one in ``BROKEN_CONSTANT_STEERS``.
    """
    test = call("5.2", constant_steer_property, _correct)
    if not callable(test) or not hasattr(test, "hypothesis"):
        fail("5.2", "constant_steer_property(impl) must return a function decorated with "
                    "hypothesis' @given (and no other arguments), e.g. `@given(st.integers(0, 10**6))`.")
    try:
        test()
    except Exception as err:
        fail("5.2", f"your property fails for the *correct* implementation ({type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else ''}). Check your tolerances "
                    "(float64 sums: use math.isclose / np.allclose with rtol ~1e-9) and your algebra.")
    for label, (broken, hint) in BROKEN_CONSTANT_STEERS.items():
        caught = False
        try:
            call("5.2", constant_steer_property, broken)()
        except ExerciseFailed:
            raise
        except Exception:  # AssertionError or hypothesis' Flaky/MultipleFailures: caught
            caught = True
        if not caught:
            fail("5.2", f"your property passed an implementation that {label}. Ask: {hint}")
    return passed("5.2", "a property for the best constant steer",
                  f"It accepts the true function and catches all {len(BROKEN_CONSTANT_STEERS)} broken ones.")


def check_post_block_adapter(post_block_adapter):
    """Exercise 5.3: ``post_block_adapter(h, D, U, phi)`` = h + U phi(D h) at every token, eq. (5.10).

    ``h`` is ``[B, T, d]``, ``D`` is ``[r, d]`` (reads), ``U`` is ``[d, r]`` (writes), ``phi``
    an elementwise function. Also checked inside a real forward pass as a
    ``blocks.0.hook_resid_post`` hook, and that ``U = 0`` is an exact no-op.
    """
    rng = rng_for(8)
    B, T, d, r = 2, 3, 6, 2
    h, D, U = rng.normal(size=(B, T, d)), rng.normal(size=(r, d)), rng.normal(size=(d, r))
    for phi in (_silu, lambda x: x):
        shift = phi(h @ D.T) @ U.T
        got = call("5.3", post_block_adapter, *map(from_numpy, (h, D, U)), phi,
                   on_error="D is [r, d] and U is [d, r]: per token, D h is h @ D.T ([B, T, r]).")
        expect_close("5.3", got, h + shift, what="the adapted activation", atol=1e-12, diagnoses=[
            (shift, "missed skip connection: the hook must return the new activation h + U phi(D h), "
                    "not the shift alone."),
            (h - shift, "sign error: the adapter adds U phi(D h)."),
            (h + phi(h @ D.T @ U.T) if phi is _silu else None,
             "phi acts in the r-dimensional bottleneck, between D and U: U phi(D h), not phi(U D h)."),
            (h + phi(h @ U @ D) if phi is _silu else None,
             "transposed matrices: D reads (r x d), U writes (d x r); the shift is phi(h @ D.T) @ U.T."),
        ])
    # as a hook in a real forward pass, and U = 0 is a no-op
    cfg, params, tokens = tiny_model("llama", seed=8)
    D, U = rng.normal(size=(r, cfg.d_model)), rng.normal(size=(cfg.d_model, r))
    site = "blocks.0.hook_resid_post"
    hook = lambda act, name: post_block_adapter(act, from_numpy(D), from_numpy(U), _silu)
    _, base = run_with_cache(params, tokens, cfg, names=[site])
    _, steered = run_with_cache(params, tokens, cfg, names=[site], hooks={site: hook})
    want = host(base[site]) + _silu(host(base[site]) @ D.T) @ U.T
    expect_close("5.3", steered[site], want, what="the post-block activation inside forward()", atol=1e-12)
    zero = lambda act, name: post_block_adapter(act, from_numpy(D), from_numpy(np.zeros_like(U)), _silu)
    if not np.array_equal(host(forward(params, tokens, cfg, hooks={site: zero})), host(forward(params, tokens, cfg))):
        fail("5.3", "with U = 0 the adapter must be an exact no-op (bitwise equal logits).")
    return passed("5.3", "the post-block low-rank adapter", "h + U phi(D h); U = 0 is an exact no-op.")


def check_loreft(loreft):
    """Exercise 5.4: ``loreft(h, R, W, b)`` = h + R^T (W h + b - R h), pyreft's LoReFT, eq. (5.6).

    ``h`` is ``[N, d]``, ``R`` is ``[r, d]`` with orthonormal rows, ``W`` is ``[r, d]``,
    ``b`` is ``[r]``. Also checked: with W = R and b = 0 it is the identity.
    """
    rng = rng_for(9)
    N, d, r = 4, 6, 2
    R = np.linalg.qr(rng.normal(size=(d, r)))[0].T  # orthonormal rows
    h, W, b = rng.normal(size=(N, d)), rng.normal(size=(r, d)), rng.normal(size=r)
    edit = (h @ W.T + b - h @ R.T) @ R
    got = call("5.4", loreft, *map(from_numpy, (h, R, W, b)),
               on_error="R and W are [r, d], h is [N, d]: R h per row is h @ R.T, and R^T z is z @ R.")
    expect_close("5.4", got, h + edit, what="the LoReFT output", atol=1e-12, diagnoses=[
        (edit, "missed skip connection: LoReFT returns h plus the edit."),
        (h - edit, "sign error: the edit is R^T (W h + b - R h); it replaces R h by W h + b."),
        (h + (h @ W.T + b) @ R, "that is DiReFT: LoReFT also subtracts R h, so the edit *replaces* "
                                 "the component of h in row(R)."),
        (h + (h @ W.T - h @ R.T) @ R, "the bias b is missing."),
    ])
    identity = call("5.4", loreft, *map(from_numpy, (h, R, R, np.zeros(r))))
    expect_close("5.4", identity, h, what="LoReFT with W = R, b = 0", atol=1e-12)
    return passed("5.4", "LoReFT", "h + R^T (W h + b - R h); with W = R, b = 0 it is the identity.")


def check_post_block_param_count(post_block_param_count):
    """Exercise 5.5: ``post_block_param_count(d_model, n_layers, rank)``, eq. (5.12).

    Trainable scalars of a post-block adapter at every layer: ``2 r d L`` for rank ``r``
    (D and U, no biases) and ``d L`` for one vector per layer (``rank=None``).
    On Llama-3.2-1B's shapes that is the paper's 0.042%.
    """
    for d, L in ((2048, 16), (7, 3), (2560, 36)):
        for r in (8, 1):
            got = call("5.5", post_block_param_count, d, L, r)
            want = 2 * r * d * L
            for wrong, hint in ((r * d * L, "each layer has two matrices, D (r x d) and U (d x r)."),
                                (2 * r * d, "one adapter per layer: multiply by the number of layers."),
                                (2 * r * d * (L - 1), "off by one: every one of the L layers gets an adapter."),
                                (2 * r * d * L + r * L + d * L, "the paper's adapter has no biases.")):
                if got != want and got == wrong:
                    fail("5.5", f"count for d={d}, L={L}, r={r} is {got}, expected {want}. Hint: {hint}")
            if got != want:
                fail("5.5", f"count for d={d}, L={L}, r={r} is {got}, expected {want}.")
        got = call("5.5", post_block_param_count, d, L, None)
        if got != d * L:
            fail("5.5", f"one vector per layer (rank=None) for d={d}, L={L}: got {got}, expected {d * L}.")
    llama_1b = 1_235_814_400  # Llama-3.2-1B's parameter count (tied embeddings)
    share = 100 * post_block_param_count(2048, 16, 8) / llama_1b
    return passed("5.5", "post-block parameter counts", f"Rank 8 on Llama-3.2-1B: {share:.3f}% of the model.")
