"""Exercises for docs/05-parameterizations.md (grade with ``pytest -m exercise_5_1`` etc.)."""
import math  # noqa: F401

import numpy as np  # noqa: F401
from hypothesis import Phase, given, settings  # noqa: F401
from hypothesis import strategies as st  # noqa: F401

from ministeer.backend import xp  # noqa: F401


def best_constant_steer(dW, X):
    """Exercise 5.1: the constant vector v that best imitates ``dW`` on the rows of X, eq. (5.1)-(5.2).

    dW: [d_out, d_in]; X: [N, d_in]. Returns ``(v, residual)``: v [d_out] minimizes
    sum_i ||dW x_i - v||^2 and residual is that minimum (a scalar).
    """
    raise NotImplementedError("Exercise 5.1: the best constant steer")


def constant_steer_property(impl):
    """Exercise 5.2: write a hypothesis property for ``best_constant_steer``.

    Return a test function decorated with ``@given(...)`` (no other arguments) that calls
    ``impl(dW, X)`` on data it draws and asserts what must hold for *any* correct
    implementation. The checker runs it on the true function (it must pass) and on broken
    ones (it must fail). Tips: state claims, don't re-implement; use tolerances
    (math.isclose(..., rel_tol=1e-9)); ``settings(database=None, phases=[Phase.generate])``
    skips the slow shrinking of counterexamples.
    """
    raise NotImplementedError("Exercise 5.2: a property for the best constant steer")


def post_block_adapter(h, D, U, phi):
    """Exercise 5.3: the post-block low-rank adapter, eq. (5.10), applied at every token.

    h: [B, T, d]; D: [r, d] (reads); U: [d, r] (writes); phi: elementwise function.
    Returns the new activation [B, T, d], ready to be a hook's return value.
    """
    raise NotImplementedError("Exercise 5.3: the post-block low-rank adapter")


def loreft(h, R, W, b):
    """Exercise 5.4: pyreft's LoReFT intervention, eq. (5.6).

    h: [N, d]; R: [r, d] with orthonormal rows; W: [r, d]; b: [r]. Returns [N, d].
    """
    raise NotImplementedError("Exercise 5.4: LoReFT")


def post_block_param_count(d_model, n_layers, rank):
    """Exercise 5.5: trainable scalars of a post-block adapter at every layer, eq. (5.12).

    ``rank`` is an int for the low-rank adapter, or None for one vector per layer.
    """
    raise NotImplementedError("Exercise 5.5: post-block parameter counts")
