# %% [markdown]
# # Exercises for page 5: parameterizations
#
# Read `docs/05-parameterizations.md` first. Replace each `raise NotImplementedError` with
# your code and run the check cell below it, or grade from the shell:
# `ministeer exercises my_answers --only 5.1`.

# %%
import math  # noqa: F401

import numpy as np  # noqa: F401
from hypothesis import Phase, given, settings  # noqa: F401
from hypothesis import strategies as st  # noqa: F401

from ministeer.backend import xp  # noqa: F401
from ministeer.exercises import (check_best_constant_steer, check_constant_steer_property, check_loreft,
                                 check_post_block_adapter, check_post_block_param_count)

# %% [markdown]
# ## Exercise 5.1: the best constant steer
#
# Write `best_constant_steer(dW, X)`: the constant vector `v` that best imitates `dW` on the
# rows of `X`, eq. (5.1)–(5.2). `dW` is `[d_out, d_in]`, `X` is `[N, d_in]`. Return
# `(v, residual)`: `v` (`[d_out]`) minimizes $\sum_i \lVert \Delta W x_i - v\rVert^2$ and
# `residual` is that minimum, a scalar.


# %%
def best_constant_steer(dW, X):
    """Exercise 5.1: ``(v [d_out], residual)``."""
    raise NotImplementedError("Exercise 5.1: the best constant steer")


# %%
if __name__ == "__main__":  # runs in a notebook and as a script, not when graded
    check_best_constant_steer(best_constant_steer)

# %% [markdown]
# ## Exercise 5.2: write a property
#
# Write `constant_steer_property(impl)`. Return a test function decorated with
# `@given(...)` (taking no other arguments) that calls `impl(dW, X)` on data it draws and
# asserts what must hold for *any* correct implementation. The checker runs it on the true
# function (it must pass) and on broken ones (it must fail). Tips: state claims, don't
# re-implement; use tolerances (`math.isclose(..., rel_tol=1e-9)`);
# `settings(database=None, phases=[Phase.generate])` skips the slow shrinking of counterexamples.


# %%
def constant_steer_property(impl):
    """Exercise 5.2: a hypothesis test (decorated with @given) of ``impl``."""
    raise NotImplementedError("Exercise 5.2: a property for the best constant steer")


# %%
if __name__ == "__main__":
    check_constant_steer_property(constant_steer_property)

# %% [markdown]
# ## Exercise 5.3: the post-block low-rank adapter
#
# Write `post_block_adapter(h, D, U, phi)`: the adapter of eq. (5.10), applied at every token.
# `h` is `[B, T, d]`; `D` is `[r, d]` (reads); `U` is `[d, r]` (writes); `phi` is an
# elementwise function. Return the new activation `[B, T, d]`, ready to be a hook's return value.


# %%
def post_block_adapter(h, D, U, phi):
    """Exercise 5.3: the adapted activation, [B, T, d]."""
    raise NotImplementedError("Exercise 5.3: the post-block low-rank adapter")


# %%
if __name__ == "__main__":
    check_post_block_adapter(post_block_adapter)

# %% [markdown]
# ## Exercise 5.4: LoReFT
#
# Write `loreft(h, R, W, b)`: pyreft's LoReFT intervention, eq. (5.6). `h` is `[N, d]`;
# `R` is `[r, d]` with orthonormal rows; `W` is `[r, d]`; `b` is `[r]`. Return `[N, d]`.


# %%
def loreft(h, R, W, b):
    """Exercise 5.4: the LoReFT output, [N, d]."""
    raise NotImplementedError("Exercise 5.4: LoReFT")


# %%
if __name__ == "__main__":
    check_loreft(loreft)

# %% [markdown]
# ## Exercise 5.5: parameter counts
#
# Write `post_block_param_count(d_model, n_layers, rank)`: the trainable scalars of a
# post-block adapter at every layer, eq. (5.12). `rank` is an int for the low-rank adapter,
# or `None` for one vector per layer.


# %%
def post_block_param_count(d_model, n_layers, rank):
    """Exercise 5.5: an int."""
    raise NotImplementedError("Exercise 5.5: post-block parameter counts")


# %%
if __name__ == "__main__":
    check_post_block_param_count(post_block_param_count)
