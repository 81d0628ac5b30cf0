"""The learning-rate grids the sweep searches, looked up in one place."""
from .. import adapters as A


def grid_of(method):
    """The learning rates ``compare --sweep`` tries for ``method`` (its registered grid)."""
    return A.METHODS[method].lr_grid
