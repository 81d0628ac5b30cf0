"""Exercises for docs/03-glu-and-pre-mlp.md (grade with ``pytest -m exercise_3_1`` etc.)."""
import numpy as np  # noqa: F401

from ministeer.backend import xp  # noqa: F401


def glu_jacobian(h, W_g, W_u, W_d):
    """Exercise 3.1: A(h), the Jacobian of y = W_d (silu(W_g h) * (W_u h)) at one token, eq. (3.3).

    h: [d]; W_g, W_u: [m, d]; W_d: [d, m]. Returns [d, d] with A[i, j] = dy_i / dh_j.
    """
    raise NotImplementedError("Exercise 3.1: the pre-MLP Jacobian A(h)")


def unreachable_part(W_d, dW_d, M):
    """Exercise 3.2: the part of each shift (dW_d) m that lies outside col(W_d), eq. (3.5).

    W_d, dW_d: [d, m]; M: [N, m], one hidden vector m per row. Returns [N, d].
    W_d may be rank-deficient.
    """
    raise NotImplementedError("Exercise 3.2: the unreachable part of a down-projection update")
