# %% [markdown]
# # Exercises for page 2: weight updates as activation shifts
#
# Read `docs/02-weight-updates-as-shifts.md` first. Replace each `raise NotImplementedError`
# with your code and run the check cell below it, or grade from the shell:
# `ministeer exercises my_answers --only 2.1`.

# %%
import numpy as np  # noqa: F401
from autograd import make_jvp  # noqa: F401

from ministeer import run_with_cache  # noqa: F401
from ministeer.backend import xp  # noqa: F401
from ministeer.exercises import check_first_order_shift, check_input_shift, check_linear_shift

# %% [markdown]
# ## Exercise 2.1: a weight update as an output shift
#
# Write `linear_shift(W, dW, x)`: the change of a linear layer's output when `W -> W + dW`,
# eq. (2.1). `W` and `dW` are `[d_out, d_in]` (Hugging Face layout: a row `x` maps to
# `x @ W.T`); `x` is `[N, d_in]`. Return `[N, d_out]`.


# %%
def linear_shift(W, dW, x):
    """Exercise 2.1: the output shift of ``W -> W + dW`` on the rows of ``x``. [N, d_out]"""
    raise NotImplementedError("Exercise 2.1: a weight update as an output shift")


# %%
if __name__ == "__main__":  # runs in a notebook and as a script, not when graded
    check_linear_shift(linear_shift)

# %% [markdown]
# ## Exercise 2.2: the first-order shift as a JVP
#
# Write `first_order_shift(params, delta, tokens, cfg, site)`: the first-order shift
# $J_\theta s[\delta]$ of the activation at `site`, eq. (2.5). `delta` has the structure of
# `params`. Hint: `autograd.make_jvp` and `run_with_cache(..., names=[site])`.
# Return an array of the activation's shape.


# %%
def first_order_shift(params, delta, tokens, cfg, site):
    """Exercise 2.2: J_theta s[delta] at ``site``, the shape of that activation."""
    raise NotImplementedError("Exercise 2.2: the first-order shift as a JVP")


# %%
if __name__ == "__main__":
    check_first_order_shift(first_order_shift)

# %% [markdown]
# ## Exercise 2.3: the input-side shift
#
# Write `input_shift(W, dW, x)`: the smallest input shift `dx` with `W (x + dx)` closest to
# `(W + dW) x`, eq. (2.3). `W, dW` are `[d_out, d_in]`, not square in general; `x` is
# `[N, d_in]`. Return `dx`, `[N, d_in]`.


# %%
def input_shift(W, dW, x):
    """Exercise 2.3: the minimum-norm input shift dx, [N, d_in]."""
    raise NotImplementedError("Exercise 2.3: the input-side shift")


# %%
if __name__ == "__main__":
    check_input_shift(input_shift)
