"""The best steer of each kind for a dataset of shifts, and its residual.

docs/05-parameterizations.md, section "Which steer can replicate an update". Given
inputs x_i (what the steer reads) and the shifts t_i a weight update induces at a site
(what it must add), fit the best steer of a kind by least squares. The residual

    rho = min over steers g of  sum_i || g(x_i) - t_i ||^2

is the paper's "condition": that kind of steering replicates the update on this data
exactly when rho = 0. Kinds, from least to most expressive:

    constant   g(x) = v          v* = mean t_i;  for t_i = dW x_i:  v* = dW xbar,
                                 rho = sum_i ||dW (x_i - xbar)||^2                  (5.1), (5.2)
    affine     g(x) = M x + b                                                       (5.3)
    rank-r     g(x) = M x (+ b), rank M <= r   (reduced-rank regression)            (5.4)
    pre-MLP    t_i ~ A(h_i) dh_i, one free dh_i per token (eq. (3.3))               (5.5)

Checked in tests/test_claim_06_constant_vector.py (constant, affine, rank-r) and
tests/test_claim_04_reachability.py (pre-MLP).
"""
from ..backend import raw

# Singular values below RCOND * the largest are treated as zero in every least-squares
# fit. numpy's default (machine eps) keeps directions that exist only through rounding,
# e.g. col(A(h)) of a rank-deficient W_d picks up a 1e-18 component, and a steer of size
# 1e16 along it would "reach" the unreachable. 1e-10 is far above rounding and far below
# any real direction in the tests' well-conditioned data.
RCOND = 1e-10


def _sq(x):
    return float(raw.sum(x * x))


def best_constant_for_linear(dW, xs):
    """eq. (5.1): the best fixed vector for the shifts dW x_i is v = dW xbar; residual sum ||dW(x_i - xbar)||^2."""
    xbar = raw.mean(xs, axis=0)
    return dW @ xbar, _sq((xs - xbar) @ dW.T)


def fit_constant(targets):
    """eq. (5.2): v = mean of the shifts t_i [N, d], residual sum ||t_i - v||^2."""
    v = raw.mean(targets, axis=0)
    return v, _sq(targets - v)


def fit_affine(xs, targets):
    """eq. (5.3): least-squares M [d_out, d_in], b [d_out] for t_i = M x_i + b; and the residual."""
    X1 = raw.concatenate([xs, raw.ones((xs.shape[0], 1), dtype=xs.dtype)], axis=1)
    coef = raw.linalg.lstsq(X1, targets, rcond=RCOND)[0]  # [d_in + 1, d_out]
    M, b = coef[:-1].T, coef[-1]
    return M, b, _sq(xs @ M.T + b - targets)


def fit_rank_r(xs, targets, r, affine=False):
    """eq. (5.4): the best rank-<=r linear map (plus a free bias if ``affine``).

    Reduced-rank regression: take the least-squares fit, then project its fitted values
    onto their top-r principal output directions V_r, M_r = V_r V_r^T M_ols (Eckart-Young
    on the fitted values; valid because the projector acts on the output side).
    Returns (M [d_out, d_in] of rank <= r, b [d_out], residual).
    """
    xbar = raw.mean(xs, axis=0) if affine else raw.zeros(xs.shape[1], dtype=xs.dtype)
    tbar = raw.mean(targets, axis=0) if affine else raw.zeros(targets.shape[1], dtype=targets.dtype)
    Xc, Tc = xs - xbar, targets - tbar
    M_ols = raw.linalg.lstsq(Xc, Tc, rcond=RCOND)[0].T  # [d_out, d_in]
    V = raw.linalg.svd(Xc @ M_ols.T, full_matrices=False)[2][:r].T  # [d_out, r]
    M = V @ (V.T @ M_ols)
    b = tbar - M @ xbar
    return M, b, _sq(xs @ M.T + b - targets)


def fit_pre_mlp(A, targets):
    """eq. (5.5): per token, the steer dh_i minimizing ||A(h_i) dh_i - t_i||. A: [N, d, d], t: [N, d].

    Returns (dh [N, d], residual sum_i ||A_i dh_i - t_i||^2). Zero only if every t_i lies
    in col(A(h_i)), a subspace of col(W_d) (eq. (3.5)).
    """
    dh = raw.stack([raw.linalg.lstsq(a, t, rcond=RCOND)[0] for a, t in zip(A, targets)])
    return dh, _sq((A @ dh[..., None])[..., 0] - targets)
