"""Exercises for docs/01-model-and-sites.md. Copy this folder, fill in the functions, then run

    MINISTEER_EXERCISES=path/to/your/folder pytest tests/test_exercises.py -m exercise_1_1

or, in a notebook, ``from ministeer.exercises import check_resid_post; check_resid_post(resid_post)``.
"""
from ministeer.backend import raw, xp  # noqa: F401  (xp: differentiable ops, raw: constants)


def resid_post(cache, layer):
    """Exercise 1.1: rebuild ``blocks.{layer}.hook_resid_post`` from the other cached sites.

    ``cache`` is the dict from ``run_with_cache`` with the block output (and the next
    block's input, which equals it) removed. Use eq. (1.2)-(1.3). Returns [B, T, d].
    """
    raise NotImplementedError("Exercise 1.1: add up the pieces of the block output")


def add_at_position(vector, position):
    """Exercise 1.2: return a hook ``fn(act, name) -> new act`` that adds ``vector`` [d]
    to ``act`` [B, T, d] at sequence position ``position`` only (negative counts from the
    end, like Python), in every batch row.

    Autograd must differentiate through it: no item assignment, no ``+=``; build a mask.
    """
    raise NotImplementedError("Exercise 1.2: a hook that adds a vector at one position")
