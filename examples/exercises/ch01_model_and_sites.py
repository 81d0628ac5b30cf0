# %% [markdown]
# # Exercises for page 1: the model and its sites
#
# Read `docs/01-model-and-sites.md` first. This file runs as a script and opens as a notebook
# (jupytext "percent" format; `ministeer exercises notebook DIR` writes `.ipynb` copies).
# Replace each `raise NotImplementedError` with your code, then run the check cell below it,
# or grade from the shell: `ministeer exercises my_answers --only 1.1`.

# %%
from ministeer.backend import raw, xp  # noqa: F401  (xp: differentiable ops, raw: constants)
from ministeer.exercises import check_add_at_position, check_resid_post

# %% [markdown]
# ## Exercise 1.1: the block output from its parts
#
# Write `resid_post(cache, layer)`, which rebuilds `blocks.{layer}.hook_resid_post`.
# `cache` is the dict from `run_with_cache` with the block output (and the next block's
# input, which equals it) removed, so add up the other cached sites of the block, using
# eq. (1.2)–(1.3). Return `[B, T, d]`.


# %%
def resid_post(cache, layer):
    """Exercise 1.1: blocks.{layer}.hook_resid_post from the other sites in ``cache``. [B, T, d]"""
    raise NotImplementedError("Exercise 1.1: add up the pieces of the block output")


# %%
if __name__ == "__main__":  # runs in a notebook and as a script, not when graded
    check_resid_post(resid_post)

# %% [markdown]
# ## Exercise 1.2: a hook that adds a vector at one position
#
# Write `add_at_position(vector, position)`. It returns a hook `fn(act, name) -> new act`
# that adds `vector` (`[d]`) to `act` (`[B, T, d]`) at sequence position `position` only
# (negative positions count from the end, as in Python), in every batch row.
# `autograd` must differentiate through it: no item assignment, no `+=`; build a mask.


# %%
def add_at_position(vector, position):
    """Exercise 1.2: a hook adding ``vector`` [d] at one position of ``act`` [B, T, d]."""
    raise NotImplementedError("Exercise 1.2: a hook that adds a vector at one position")


# %%
if __name__ == "__main__":
    check_add_at_position(add_at_position)
