"""Linear layers: a weight update *is* an input-dependent output shift, exactly.

docs/02-weight-updates-as-shifts.md, section "The linear case". For y = W x:

    (W + dW) x = W x + dW x                                                  (2.1)

so the output-side steer delta(x) = dW x reproduces the update to all orders. It is
linear in x with rank <= rank(dW); a LoRA update dW = s B A gives rank <= r  (2.2).
An *input-side* steer dx must satisfy W dx = dW x for every x, which is solvable iff
col(dW) is inside col(W); the minimum-norm solution is dx = W^+ dW x        (2.3)
and the part it cannot reach is (I - W W^+) dW x                            (2.4).
Checked in tests/test_claim_01_linear.py.
"""
from ..backend import raw


def output_shift(dW, x):
    """eq. (2.1): the output shift dW x of the update W -> W + dW. x: [..., d_in] -> [..., d_out]."""
    return x @ dW.T


def lora_update(B, A, scale=1.0):
    """eq. (2.2): the LoRA weight update dW = scale * B A (B: [d_out, r], A: [r, d_in])."""
    return scale * (B @ A)


def numerical_rank(M, rtol=1e-10):
    """Number of singular values above rtol * the largest (eq. (2.2) rank checks)."""
    s = raw.linalg.svd(raw.asarray(M), compute_uv=False)
    return int(raw.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0


def shift_rank(dW, xs, rtol=1e-10):
    """eq. (2.2): rank of the shifts {dW x_i}, <= rank(dW) (<= r for LoRA). xs: [N, d_in]."""
    return numerical_rank(output_shift(dW, xs), rtol)


def input_side_shift(W, dW, x):
    """eq. (2.3): the minimum-norm input shift dx = W^+ dW x with W dx closest to dW x."""
    return output_shift(raw.linalg.pinv(W) @ dW, x)


def input_side_residual(W, dW, x):
    """eq. (2.4): (I - W W^+) dW x, the part of the update no input shift can produce. [..., d_out]."""
    d_out = W.shape[0]
    outside = raw.eye(d_out) - W @ raw.linalg.pinv(W)  # orthogonal projector onto col(W)^perp
    return output_shift(outside @ dW, x)


def column_space_gap(W, dW):
    """eq. (2.3) condition as a number: ||(I - W W^+) dW||_F, zero iff col(dW) lies in col(W)."""
    d_out = W.shape[0]
    return float(raw.linalg.norm((raw.eye(d_out) - W @ raw.linalg.pinv(W)) @ dW))
