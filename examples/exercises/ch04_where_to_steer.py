# %% [markdown]
# # Exercise for page 4: where to steer
#
# Read `docs/04-where-to-steer.md` first. Replace the `raise NotImplementedError` with your
# code and run the check cell, or grade from the shell: `ministeer exercises my_answers --only 4.1`.

# %%
import numpy as np  # noqa: F401

from ministeer import run_with_cache  # noqa: F401
from ministeer.exercises import check_find_unreachable_site, unreachable_site_problem
from ministeer.tree import get_path  # noqa: F401

# %% [markdown]
# ## Exercise 4.1: a site where steering cannot replicate an update
#
# Write `find_unreachable_site(problem)`. `problem.update` maps
# `model.layers.{l}.mlp.down_proj.weight` to $\Delta W_d$ for every layer (`problem` also has
# `.cfg`, `.params`, `.tokens`). Use the tools (`run_with_cache`, your Exercise 3.2) to find a
# site, e.g. `"blocks.2.pre_mlp"`, where no per-token shift can reproduce what the update
# does to that block's output. Return `(site, reason)`, the reason one sentence saying why.
# Try it on a problem first: `problem = unreachable_site_problem(seed=0)`.


# %%
def find_unreachable_site(problem):
    """Exercise 4.1: ``(site name, one-sentence reason)``."""
    raise NotImplementedError("Exercise 4.1: a site where steering cannot replicate an update")


# %%
if __name__ == "__main__":  # runs in a notebook and as a script, not when graded
    problem = unreachable_site_problem(seed=0)
    check_find_unreachable_site(find_unreachable_site)
