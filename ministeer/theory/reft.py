"""ReFT at the MLP output is a down-projection update of rank <= r; at the block output it is not.

docs/05-parameterizations.md, section "ReFT as a weight update" (equation numbers are
this project's). The premise is the site: pyreft's default site is the block output, and
so is the LoReFT baseline in ministeer/adapters/reft.py; there the edit also reads the
skip stream and no update of W_d reproduces it (tests/test_claim_07_reft.py). LoReFT edits a
representation y inside the r-dimensional subspace row(R) (R: [r, d] with orthonormal
rows, W: [r, d], b: [r]):

    dy_ReFT = R^T (W y + b - R y)                                               (5.6)

Substituting the MLP output y = W_d m (no down bias, as in Llama):

    dy_ReFT = (R^T W - R^T R) W_d m + R^T b = dW_d^eff m + R^T b                (5.7)

so ReFT at post-MLP is a down-projection update dW_d^eff whose columns lie in row(R):
rank <= r. DiReFT drops the -R y term and the orthonormality: dy = W2^T (W1 y + b),
dW_d^eff = W2^T W1 W_d, again rank <= r.                                        (5.8)
Checked in tests/test_claim_07_reft.py.
"""
from ..backend import raw


def loreft_shift(R, W, b, y):
    """eq. (5.6): R^T (W y + b - R y) for y [..., d] -> [..., d]."""
    return (y @ W.T + b - y @ R.T) @ R


def loreft_effective_update(R, W, W_d):
    """eq. (5.7): dW_d^eff = (R^T W - R^T R) W_d, a [d, m] matrix with columns in row(R)."""
    return (R.T @ W - R.T @ R) @ W_d


def loreft_as_update(R, W, b, W_d, m):
    """eq. (5.7), right-hand side: dW_d^eff m + R^T b for MLP hiddens m [..., d_mlp]."""
    return m @ loreft_effective_update(R, W, W_d).T + R.T @ b


def direft_shift(W1, W2, b, y):
    """eq. (5.8): W2^T (W1 y + b), DiReFT's edit (W1, W2: [r, d])."""
    return (y @ W1.T + b) @ W2


def direft_effective_update(W1, W2, W_d):
    """eq. (5.8): dW_d^eff = W2^T W1 W_d (rank <= r)."""
    return W2.T @ W1 @ W_d


def subspace_leak(M, R):
    """||(I - R^+ R) M||_F: how much of col(M) lies outside row(R) (0 for eqs. (5.7), (5.8))."""
    return float(raw.linalg.norm(M - raw.linalg.pinv(R) @ (R @ M)))
