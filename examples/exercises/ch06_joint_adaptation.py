# %% [markdown]
# # Exercises for page 6: joint adaptation
#
# Read `docs/06-joint-adaptation.md` first. Replace each `raise NotImplementedError` with
# your code and run the check cell below it, or grade from the shell:
# `ministeer exercises my_answers --only 6.1`.

# %%
import numpy as np  # noqa: F401

from ministeer.exercises import check_project_read, check_project_write

# %% [markdown]
# ## Exercise 6.1: the read-side projection
#
# Write `project_read(D, B_down)`: $D(I - VV^\top)$, eq. (6.2). `D` is `[r, d]`, the
# adapter's read map; `B_down` is `[d, r_lora]`, the LoRA factor of `down_proj` (full column
# rank, columns *not* orthonormal); `V` is an orthonormal basis of col(`B_down`).


# %%
def project_read(D, B_down):
    """Exercise 6.1: the projected D, [r, d]."""
    raise NotImplementedError("Exercise 6.1: the read-side orthogonality projection")


# %%
if __name__ == "__main__":  # runs in a notebook and as a script, not when graded
    check_project_read(project_read)

# %% [markdown]
# ## Exercise 6.2: the write-side projection
#
# Write `project_write(U, B_down)`: $(I - VV^\top)U$, eq. (6.3). `U` is `[d, r]`.


# %%
def project_write(U, B_down):
    """Exercise 6.2: the projected U, [d, r]."""
    raise NotImplementedError("Exercise 6.2: the write-side orthogonality projection")


# %%
if __name__ == "__main__":
    check_project_write(project_write)
