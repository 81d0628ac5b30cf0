"""Exercise for docs/04-where-to-steer.md (grade with ``pytest -m exercise_4_1``).

Try it on a problem first::

    from ministeer.exercises import unreachable_site_problem
    problem = unreachable_site_problem(seed=0)   # .cfg, .params, .update, .tokens
"""
import numpy as np  # noqa: F401

from ministeer import run_with_cache  # noqa: F401
from ministeer.tree import get_path  # noqa: F401


def find_unreachable_site(problem):
    """Exercise 4.1: find a site where no per-token shift can replicate ``problem.update``.

    ``problem.update`` maps ``model.layers.{l}.mlp.down_proj.weight`` to dW_d for every
    layer. Use the tools (run_with_cache, your Exercise 3.2) to find a site -- e.g.
    ``"blocks.2.pre_mlp"`` -- where steering cannot reproduce what the update does to that
    block's output. Return ``(site, reason)``, the reason one sentence saying why.
    """
    raise NotImplementedError("Exercise 4.1: a site where steering cannot replicate an update")
