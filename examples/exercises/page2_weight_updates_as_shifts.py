"""Exercises for docs/02-weight-updates-as-shifts.md (grade with ``pytest -m exercise_2_1`` etc.)."""
import numpy as np  # noqa: F401
from autograd import make_jvp  # noqa: F401

from ministeer import run_with_cache  # noqa: F401
from ministeer.backend import xp  # noqa: F401


def linear_shift(W, dW, x):
    """Exercise 2.1: the output shift of a linear layer when ``W -> W + dW``, eq. (2.1).

    W, dW: [d_out, d_in] (Hugging Face layout: a row x maps to x @ W.T); x: [N, d_in].
    Returns [N, d_out].
    """
    raise NotImplementedError("Exercise 2.1: a weight update as an output shift")


def first_order_shift(params, delta, tokens, cfg, site):
    """Exercise 2.2: the first-order shift J_theta s[delta] at ``site``, eq. (2.5).

    ``delta`` has the same structure as ``params``. Hint: ``autograd.make_jvp`` and
    ``run_with_cache(..., names=[site])``. Returns the shape of the activation at ``site``.
    """
    raise NotImplementedError("Exercise 2.2: the first-order shift as a JVP")


def input_shift(W, dW, x):
    """Exercise 2.3: the smallest input shift dx with W (x + dx) closest to (W + dW) x, eq. (2.3).

    W, dW: [d_out, d_in] (not square in general); x: [N, d_in]. Returns dx, [N, d_in].
    """
    raise NotImplementedError("Exercise 2.3: the input-side shift")
