"""Exercises for docs/02-weight-updates-as-shifts.md (grade with ``pytest -m exercise_2_1`` etc.)."""
import math  # noqa: F401

import numpy as np  # noqa: F401
from autograd import make_jvp  # noqa: F401
from hypothesis import Phase, given, settings  # noqa: F401
from hypothesis import strategies as st  # noqa: F401

from ministeer import run_with_cache  # noqa: F401
from ministeer.backend import xp  # noqa: F401


def linear_shift(W, dW, x):
    """Exercise 2.1: the output shift of a linear layer when ``W -> W + dW``, eq. (2.1).

    W, dW: [d_out, d_in] (Hugging Face layout: a row x maps to x @ W.T); x: [N, d_in].
    Returns [N, d_out].
    """
    raise NotImplementedError("Exercise 2.1: a weight update as an output shift")


def first_order_shift(params, delta, tokens, cfg, site):
    """Exercise 2.2: the first-order shift J_theta s[delta] at ``site``, eq. (2.4).

    ``delta`` has the same structure as ``params``. Hint: ``autograd.make_jvp`` and
    ``run_with_cache(..., names=[site])``. Returns the shape of the activation at ``site``.
    """
    raise NotImplementedError("Exercise 2.2: the first-order shift as a JVP")


def best_constant_steer(dW, X):
    """Exercise 2.3: the constant vector v that best imitates ``dW`` on the rows of X, eq. (2.6)-(2.7).

    dW: [d_out, d_in]; X: [N, d_in]. Returns ``(v, residual)``: v [d_out] minimizes
    sum_i ||dW x_i - v||^2 and residual is that minimum (a scalar).
    """
    raise NotImplementedError("Exercise 2.3: the best constant steer")


def constant_steer_property(impl):
    """Exercise 2.4: write a hypothesis property for ``best_constant_steer``.

    Return a test function decorated with ``@given(...)`` (no other arguments) that calls
    ``impl(dW, X)`` on data it draws and asserts what must hold for *any* correct
    implementation. The checker runs it on the true function (it must pass) and on broken
    ones (it must fail). Tips: state claims, don't re-implement; use tolerances
    (math.isclose(..., rel_tol=1e-9)); ``settings(database=None, phases=[Phase.generate])``
    skips the slow shrinking of counterexamples.
    """
    raise NotImplementedError("Exercise 2.4: a property for the best constant steer")
