"""Reference solutions to every exercise. An instructor may delete this one module.

Nothing else in ministeer imports it: the checkers compute their answers their own way,
and ``tests/test_exercises.py`` skips its reference checks, with a one-line reason, when
this file is gone. To grade it like a student's file: ``ministeer exercises ministeer/exercises/solutions.py``.
Each answer is the shortest clear version; the docs page named in each docstring derives it.
"""
import math

import numpy as np  # host side (SVD, least squares, and drawing data in 5.2's property)
from autograd import make_jvp
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ministeer.backend import raw, xp  # absolute imports: graders load this file by path too
from ministeer.model import run_with_cache

# ---------------------------------------------------------------- 1. the model and its sites


def resid_post(cache, layer):
    """1.1 -- eq. (1.3): the block output is its input plus both sublayer outputs."""
    c = lambda s: cache[f"blocks.{layer}.{s}"]
    return c("hook_resid_pre") + c("hook_attn_out") + c("hook_mlp_out")


def add_at_position(vector, position):
    """1.2 -- a hook adding ``vector`` at one position: a [T] mask, no item assignment."""
    def hook(act, name):
        T = act.shape[1]
        mask = (raw.arange(T) == position % T).astype(act.dtype)  # [T], a constant
        return act + mask[None, :, None] * vector  # [B, T, d]
    return hook

# ---------------------------------------------------------------- 2. weight updates as shifts


def linear_shift(W, dW, x):
    """2.1 -- eq. (2.1): (W + dW) x - W x = dW x; rows of x map to x @ dW.T."""
    return x @ dW.T


def first_order_shift(params, delta, tokens, cfg, site):
    """2.2 -- eq. (2.5): the JVP of the activation at ``site`` along ``delta``."""
    activation = lambda p: run_with_cache(p, tokens, cfg, names=[site])[1][site]
    _, shift = make_jvp(activation)(params)(delta)
    return shift


def input_shift(W, dW, x):
    """2.3 -- eq. (2.3): the minimum-norm dx = W^+ dW x (least squares when col(dW) is not in col(W))."""
    return x @ (np.linalg.pinv(W) @ dW).T


# ---------------------------------------------------------------- 3. the GLU MLP


def glu_jacobian(h, W_g, W_u, W_d):
    """3.1 -- eq. (3.3): A(h) = W_d [diag(silu'(a_g) a_u) W_g + diag(silu(a_g)) W_u]."""
    a_g, a_u = W_g @ h, W_u @ h
    s = 1.0 / (1.0 + xp.exp(-a_g))
    silu, silu_slope = a_g * s, s * (1.0 + a_g * (1.0 - s))
    return W_d @ ((silu_slope * a_u)[:, None] * W_g + silu[:, None] * W_u)


def unreachable_part(W_d, dW_d, M):
    """3.2 -- eq. (3.5): (I - P) (dW_d m), P the orthogonal projector onto col(W_d)."""
    targets = M @ dW_d.T  # [N, d]
    U, S, _ = np.linalg.svd(W_d, full_matrices=False)
    basis = U[:, S > S.max() * max(W_d.shape) * np.finfo(float).eps]  # [d, rank]
    return targets - (targets @ basis) @ basis.T

# ---------------------------------------------------------------- 4. where to steer


def find_unreachable_site(problem):
    """4.1 -- measure each layer's unreachable part (Exercise 3.2) and answer the worst one."""
    from ministeer.tree import get_path
    names = [f"blocks.{l}.mlp.hook_post" for l in range(problem.cfg.n_layers)]
    _, cache = run_with_cache(problem.params, problem.tokens, problem.cfg, names=names)
    norms = []
    for l, name in enumerate(names):
        W_d = get_path(problem.params, f"model.layers.{l}.mlp.down_proj.weight")
        dW_d = problem.update[f"model.layers.{l}.mlp.down_proj.weight"]
        M = cache[name].reshape(-1, W_d.shape[1])
        norms.append(float(np.linalg.norm(unreachable_part(W_d, dW_d, M))))
    layer = int(np.argmax(norms))
    return (f"blocks.{layer}.pre_mlp",
            f"pre-MLP shifts change the MLP output only through W_d, i.e. inside col(W_d); at layer "
            f"{layer} the update's (dW_d) m has a part of norm {norms[layer]:.3f} outside that column space.")

# ---------------------------------------------------------------- 5. parameterizations


def best_constant_steer(dW, X):
    """5.1 -- eq. (5.1)-(5.2): v = dW x_bar; residual = sum_i ||dW (x_i - x_bar)||^2."""
    x_bar = xp.mean(X, axis=0)
    v = dW @ x_bar
    residual = xp.sum(((X - x_bar) @ dW.T) ** 2)
    return v, residual


def constant_steer_property(impl):
    """5.2 -- two claims about any correct ``impl``: its residual is the error of its own v
    (consistency), and no other constant does better (optimality, eq. 5.1)."""
    # generate only: a counterexample is enough, shrinking it to the smallest one costs seconds
    @settings(max_examples=30, deadline=None, database=None, phases=[Phase.generate])
    @given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6), d_in=st.integers(1, 5), d_out=st.integers(1, 5))
    def prop(seed, n, d_in, d_out):
        rng = np.random.default_rng(seed)
        dW, X = rng.normal(size=(d_out, d_in)), rng.normal(size=(n, d_in))
        v, residual = impl(dW, X)
        error = lambda u: float(np.sum((X @ dW.T - u) ** 2))
        assert math.isclose(float(residual), error(v), rel_tol=1e-9, abs_tol=1e-12)
        for _ in range(3):
            nudged = v + 1e-3 * rng.normal(size=d_out)
            assert error(nudged) >= error(v) - 1e-12
    return prop

def post_block_adapter(h, D, U, phi):
    """5.3 -- eq. (5.10): h + U phi(D h), per token; D reads r numbers, U writes them back."""
    return h + phi(h @ D.T) @ U.T


def loreft(h, R, W, b):
    """5.4 -- eq. (5.6): h + R^T (W h + b - R h); rows of h are tokens."""
    return h + (h @ W.T + b - h @ R.T) @ R


def post_block_param_count(d_model, n_layers, rank):
    """5.5 -- eq. (5.12): 2 r d L for rank r (D and U per layer), d L for a vector per layer."""
    if rank is None:
        return d_model * n_layers
    return 2 * rank * d_model * n_layers

# ---------------------------------------------------------------- 6. joint adaptation


def _orthonormal_basis(B):
    return np.linalg.qr(B)[0]  # [d, r]; B has full column rank


def project_read(D, B_down):
    """6.1 -- eq. (6.2): D (I - V V^T), V an orthonormal basis of col(B_down)."""
    V = _orthonormal_basis(B_down)
    return D - (D @ V) @ V.T


def project_write(U, B_down):
    """6.2 -- eq. (6.3): (I - V V^T) U."""
    V = _orthonormal_basis(B_down)
    return U - V @ (V.T @ U)

# ---------------------------------------------------------------- 9. the backward pass of a block


def rms_norm_vjp(g, x, w, eps):
    """Exercise 9.1 (docs/09-block-backward.md, eq. (9.3)): (dx, dw) of RMSNorm."""
    r = 1.0 / xp.sqrt(xp.mean(x * x, axis=-1, keepdims=True) + eps)
    xhat, gw = x * r, g * w
    dx = r * (gw - xhat * xp.mean(gw * xhat, axis=-1, keepdims=True))
    return dx, xp.sum(g * xhat, axis=0)
