"""The GLU MLP in closed form: the fine-tuning shift and the pre-MLP steering Jacobian.

docs/03-glu-and-pre-mlp.md. The MLP of a block reads its normalized input x (the
paper's pre-MLP site, ``blocks.{l}.ln2.hook_normalized``) and writes y (post-MLP,
``blocks.{l}.hook_mlp_out``):

    SwiGLU (llama):  y = W_d m + b_d,  m = s(a_g) * a_u,  a_g = W_g x + b_g,  a_u = W_u x + b_u
    GELU   (gpt2):   y = W_d m + b_d,  m = s(a_u)                                     (3.1)

(s = SiLU or GELU; biases exist only in the gpt2 preset). To first order in an update,

    dy_FT = dW_d m + db_d + W_d dm,
    dm    = (s'(a_g) * a_u) * da_g + s(a_g) * da_u      (GELU: dm = s'(a_u) * da_u)    (3.2)
    da    = dW x + db

and a pre-MLP steer x -> x + dh moves y by A(x) dh + O(|dh|^2), with

    J(x) = diag(s'(a_g) * a_u) W_g + diag(s(a_g)) W_u   (GELU: diag(s'(a_u)) W_u),
    A(x) = W_d J(x)                                                                    (3.3)

Matching conditions. If dW_g = W_g M and dW_u = W_u M (dW_d = 0, no bias updates) then
MLP_{W+dW}(x) = MLP_W(x + M x) exactly (3.6). The stacked system
[W_g; W_u] dh = [da_g; da_u] (3.7) is *sufficient* for a pre-MLP steer to match, not
necessary: the necessary condition is first order in the output,

    A(x) dh = dy_FT(x)                                                               (3.8)

which a per-token dh solves whenever dy_FT(x) lies in col(A(x)) -- for every x when A(x)
is invertible (W_d of full row rank, as in real LLMs), even where (3.7) has no solution.
Equation numbers are this project's (docs/03); the paper's own numbering is not known here.
Checked in tests/test_claim_02_glu_update.py, test_claim_03_pre_mlp.py,
test_claim_05_gate_up_matching.py.
"""
import math

from ..backend import raw, xp

_C, _K = math.sqrt(2.0 / math.pi), 0.044715


def act(a, cfg):
    """s(a): SiLU for swiglu, tanh-GELU for gelu (the same functions as ministeer/ops.py)."""
    if cfg.mlp == "swiglu":
        return a * 0.5 * (xp.tanh(0.5 * a) + 1.0)
    return 0.5 * a * (1.0 + xp.tanh(_C * (a + _K * a ** 3)))


def act_slope(a, cfg):
    """s'(a) in closed form: SiLU' = g (1 + a (1 - g)), g = sigmoid(a); GELU' by the tanh form."""
    if cfg.mlp == "swiglu":
        g = 0.5 * (xp.tanh(0.5 * a) + 1.0)
        return g * (1.0 + a * (1.0 - g))
    t = xp.tanh(_C * (a + _K * a ** 3))
    return 0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * _C * (1.0 + 3.0 * _K * a * a)


def _affine(x, p, dp=None):
    """W x + b, or (with dp) the update's part dW x + db. x: [..., d_in]."""
    src = p if dp is None else dp
    out = x @ src["weight"].T if "weight" in src else 0.0
    return out + src["bias"] if "bias" in src else out


def _update_part(p, dp, x, name):
    """dW x + db for projection ``name`` of the update (zeros if the update leaves it alone)."""
    if name in dp:
        return _affine(x, None, dp[name])
    return raw.zeros(x.shape[:-1] + (p[name]["weight"].shape[0],), dtype=x.dtype)


def mlp_parts(p, x, cfg):
    """eq. (3.1): (a_g, a_u, m, y). For gelu a_g is None and m = s(a_u)."""
    a_u = _affine(x, p["up_proj"])
    if cfg.mlp == "swiglu":
        a_g = _affine(x, p["gate_proj"])
        m = act(a_g, cfg) * a_u
    else:
        a_g, m = None, act(a_u, cfg)
    return a_g, a_u, m, _affine(m, p["down_proj"])


def weight_update_shift(p, dp, x, cfg):
    """eq. (3.2): dy_FT, the first-order change of y under the MLP update ``dp``.

    ``dp`` mirrors the MLP params (``{"down_proj": {"weight": dW_d}, ...}``); missing
    matrices or biases are unchanged. x: [..., d] -> [..., d].
    """
    a_g, a_u, m, _ = mlp_parts(p, x, cfg)
    da_u = _update_part(p, dp, x, "up_proj")
    if cfg.mlp == "swiglu":
        da_g = _update_part(p, dp, x, "gate_proj")
        dm = act_slope(a_g, cfg) * a_u * da_g + act(a_g, cfg) * da_u  # gated + un-gated path
    else:
        dm = act_slope(a_u, cfg) * da_u
    dy = dm @ p["down_proj"]["weight"].T
    if "down_proj" in dp:
        dy = dy + _affine(m, None, dp["down_proj"])
    return dy


def pre_mlp_jacobian(p, x, cfg):
    """eq. (3.3): A(x) = W_d J(x), the Jacobian of y w.r.t. the MLP input. x: [..., d] -> [..., d, d]."""
    a_g, a_u, _, _ = mlp_parts(p, x, cfg)
    W_u = p["up_proj"]["weight"]
    if cfg.mlp == "swiglu":
        W_g = p["gate_proj"]["weight"]
        J = (act_slope(a_g, cfg) * a_u)[..., :, None] * W_g + act(a_g, cfg)[..., :, None] * W_u
    else:
        J = act_slope(a_u, cfg)[..., :, None] * W_u  # [..., m, d]
    return p["down_proj"]["weight"] @ J


def pre_mlp_shift(p, x, dh, cfg):
    """eq. (3.4): the first-order change of y under the pre-MLP steer x -> x + dh, A(x) dh."""
    return (pre_mlp_jacobian(p, x, cfg) @ dh[..., None])[..., 0]


def shared_input_update(p, M, cfg):
    """eq. (3.6): the update dW_g = W_g M, dW_u = W_u M that the steer dh = M x reproduces exactly."""
    dp = {"up_proj": {"weight": p["up_proj"]["weight"] @ M}}
    if cfg.mlp == "swiglu":
        dp["gate_proj"] = {"weight": p["gate_proj"]["weight"] @ M}
    return dp


def read_matrix(p, cfg):
    """[W_g; W_u] (GELU: W_u): the matrix every pre-MLP steer dh is read through. [rows, d]."""
    if cfg.mlp == "swiglu":
        return raw.concatenate([p["gate_proj"]["weight"], p["up_proj"]["weight"]], axis=0)
    return p["up_proj"]["weight"]


def gate_up_matching_residual(p, dp, x, cfg):
    """eq. (3.7): per token, min over dh of ||[W_g; W_u] dh - [da_g; da_u]||, and that dh.

    Zero for every x when [W_g; W_u] has full row rank (rows <= d); generically positive
    once rows > d, unless the update has the shared form of eq. (3.6). x: [N, d].
    Returns (dh [N, d], residual norms [N]).
    """
    S = read_matrix(p, cfg)
    names = ("gate_proj", "up_proj") if cfg.mlp == "swiglu" else ("up_proj",)
    target = raw.concatenate([_update_part(p, dp, x, n) for n in names], axis=1)  # [N, rows]
    dh = target @ raw.linalg.pinv(S).T  # least squares, row by row
    return dh, raw.linalg.norm(dh @ S.T - target, axis=1)


def first_order_matching(p, dp, x, cfg, rcond=1e-10):
    """eq. (3.8): per token, the least-squares dh of A(x) dh = dy_FT(x), and its residual norm.

    The necessary condition for a pre-MLP steer to reproduce the update ``dp`` to first
    order. Singular values below ``rcond`` * the largest count as zero (as in
    theory/fitting.py). x: [N, d]. Returns (dh [N, d], residual norms [N]).
    """
    A = pre_mlp_jacobian(p, x, cfg)  # [N, d, d]
    target = weight_update_shift(p, dp, x, cfg)  # [N, d]
    dh = raw.stack([raw.linalg.lstsq(a, t, rcond=rcond)[0] for a, t in zip(A, target)])
    return dh, raw.linalg.norm((A @ dh[..., None])[..., 0] - target, axis=1)
