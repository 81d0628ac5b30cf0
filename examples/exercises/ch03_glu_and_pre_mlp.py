# %% [markdown]
# # Exercises for page 3: the GLU MLP and pre-MLP steering
#
# Read `docs/03-glu-and-pre-mlp.md` first. Replace each `raise NotImplementedError` with
# your code and run the check cell below it, or grade from the shell:
# `ministeer exercises my_answers --only 3.1`.

# %%
import numpy as np  # noqa: F401

from ministeer.backend import xp  # noqa: F401
from ministeer.exercises import check_glu_jacobian, check_unreachable_part

# %% [markdown]
# ## Exercise 3.1: the pre-MLP Jacobian $A(h)$
#
# Write `glu_jacobian(h, W_g, W_u, W_d)`: the Jacobian of
# $y = W_d\,(\mathrm{silu}(W_g h) \odot W_u h)$ at one token, eq. (3.3).
# `h` is `[d]`; `W_g, W_u` are `[m, d]`; `W_d` is `[d, m]`. Return `[d, d]` with
# `A[i, j] = dy_i / dh_j`.


# %%
def glu_jacobian(h, W_g, W_u, W_d):
    """Exercise 3.1: A(h) = dy/dh for the GLU MLP at one token, [d, d]."""
    raise NotImplementedError("Exercise 3.1: the pre-MLP Jacobian A(h)")


# %%
if __name__ == "__main__":  # runs in a notebook and as a script, not when graded
    check_glu_jacobian(glu_jacobian)

# %% [markdown]
# ## Exercise 3.2: what a pre-MLP shift cannot reach
#
# Write `unreachable_part(W_d, dW_d, M)`: the part of each shift $(\Delta W_d)\, m$ that lies
# outside col($W_d$), eq. (3.5). `W_d, dW_d` are `[d, m]`; `M` is `[N, m]`, one hidden
# vector `m` per row. Return `[N, d]`. `W_d` may be rank-deficient.


# %%
def unreachable_part(W_d, dW_d, M):
    """Exercise 3.2: (I - P) dW_d m for each row m of M, P the projector onto col(W_d). [N, d]"""
    raise NotImplementedError("Exercise 3.2: the unreachable part of a down-projection update")


# %%
if __name__ == "__main__":
    check_unreachable_part(unreachable_part)
