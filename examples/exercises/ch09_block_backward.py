# %% [markdown]
# # Exercises for page 9: the backward pass of a transformer block, by hand
#
# Read `docs/09-block-backward.md` first. Replace each `raise NotImplementedError` with
# your code and run the check cell below it, or grade from the shell:
# `ministeer exercises my_answers --only 9.1`.

# %%
import numpy as np  # noqa: F401

from ministeer.backend import xp  # noqa: F401
from ministeer.exercises import check_rms_norm_vjp

# %% [markdown]
# ## Exercise 9.1: the RMSNorm VJP
#
# RMSNorm is $y = w \odot x\,r$ with $r = (\mathrm{mean}(x^2) + \epsilon)^{-1/2}$ over the last
# axis. Write `rms_norm_vjp(g, x, w, eps)`: given $g = \partial L/\partial y$, return
# `(dx, dw)`, eq. (9.3). `g` and `x` are `[N, d]`, `w` is `[d]`; `dx` is `[N, d]`, `dw` is `[d]`.
# Remember that $r$ depends on $x$ too.


# %%
def rms_norm_vjp(g, x, w, eps):
    """Exercise 9.1: (dL/dx [N, d], dL/dw [d]) of y = w * x / sqrt(mean(x^2) + eps)."""
    raise NotImplementedError("Exercise 9.1: the RMSNorm VJP")


# %%
if __name__ == "__main__":  # runs in a notebook and as a script, not when graded
    check_rms_norm_vjp(rms_norm_vjp)
