"""Exercises for docs/05-parameterizations.md (grade with ``pytest -m exercise_5_1`` etc.)."""
from ministeer.backend import xp  # noqa: F401


def post_block_adapter(h, D, U, phi):
    """Exercise 5.1: the post-block low-rank adapter, eq. (5.3), applied at every token.

    h: [B, T, d]; D: [r, d] (reads); U: [d, r] (writes); phi: elementwise function.
    Returns the new activation [B, T, d], ready to be a hook's return value.
    """
    raise NotImplementedError("Exercise 5.1: the post-block low-rank adapter")


def loreft(h, R, W, b):
    """Exercise 5.2: pyreft's LoReFT intervention, eq. (5.5).

    h: [N, d]; R: [r, d] with orthonormal rows; W: [r, d]; b: [r]. Returns [N, d].
    """
    raise NotImplementedError("Exercise 5.2: LoReFT")


def post_block_param_count(d_model, n_layers, rank):
    """Exercise 5.3: trainable scalars of a post-block adapter at every layer, eq. (5.7).

    ``rank`` is an int for the low-rank adapter, or None for one vector per layer.
    """
    raise NotImplementedError("Exercise 5.3: post-block parameter counts")
