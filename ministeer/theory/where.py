"""Where to steer: what each site can and cannot reach, and what its adapter can read.

docs/04-where-to-steer.md (and docs/03-glu-and-pre-mlp.md for reachability). Equation
numbers are this project's (the paper's own numbering is not known here).

* Reachability (3.5). A pre-MLP steer moves y only inside col(A(h)), a subspace of
  col(W_d). The part of a target shift t outside col(W_d),
      (I - W_d W_d^+) t,
  is a lower bound on the residual of *any* pre-MLP steer, at any size. A post-MLP or
  post-block steer adds t itself and has zero error. (When W_d has full row rank, as in
  every real LLM, the bound is 0 and restricts nothing.)
* What an adapter reads (4.1). An adapter g(r) that reads r can only be as good as the
  best function of r:  min_g sum_i ||g(r_i) - t_i||^2  is the spread of the targets t_i
  among tokens whose reads r_i coincide (``best_read_residual``). If W_d = 0, the MLP
  output y is one constant at every token, so a post-MLP adapter g(y) is one constant
  vector; a post-block adapter g(h_out) still sees the tokens apart.
* Post-block contains linear post-MLP under a direct sum (4.2). If the skip part s lies
  in S and the MLP output y in Y with S n Y = {0}, the oblique projector P onto Y along
  S gives A P (s + y) = A y exactly.
* Where a shift is *written* does not matter (4.4). A shift added at hook_mlp_out enters
  the residual stream exactly like one added after the block, so the per-layer oracle
  T_FT(H~) - T(H~) added at hook_mlp_out reproduces the fine-tuned model even when
  attention was fine-tuned. The limit of post-MLP steering is what it *reads* (above).
* The MLP share (measured, not a theorem):
      share_l = ||y_FT(H) - y(H)|| / ||T_FT(H) - T(H)||    on the fine-tuned stream H.
  The paper reports 0.4-0.7 for large fine-tuned models; tiny random models give other
  values. ``mlp_share`` reports it; nothing asserts a range.
Checked in tests/test_claim_04_reachability.py, test_claim_08_blind_spot.py,
test_claim_09_oblique_projector.py, test_claim_11_skip_coverage.py.
"""
from ..backend import raw
from ..model import run_with_cache
from .blocks import block_parts, block_params


def outside_column_space(W, t):
    """eq. (3.5): (I - W W^+) t for t [..., d_out], the part of t no W-combination reaches."""
    return t - (t @ raw.linalg.pinv(W).T) @ W.T


def variation(acts):
    """sqrt(sum_i ||a_i - mean a||^2) over all tokens of acts [..., d]; 0 iff constant."""
    flat = acts.reshape(-1, acts.shape[-1])
    return float(raw.linalg.norm(flat - raw.mean(flat, axis=0)))


def best_read_residual(reads, targets, tol=1e-12):
    """eq. (4.1): min over *all* functions g of sum_i ||g(r_i) - t_i||^2.

    The best g returns, for each distinct read, the mean target of the tokens that share
    it, so the residual is the within-group spread of the targets. Reads closer than
    ``tol`` (relative to the largest read) count as one. reads [..., d_r], targets [..., d_t].
    """
    r = reads.reshape(-1, reads.shape[-1])
    t = targets.reshape(-1, targets.shape[-1])
    scale = max(float(raw.max(raw.abs(r))), 1e-300) if r.size else 1.0
    group = [-1] * len(r)
    for i in range(len(r)):  # greedy grouping: quadratic in the tokens, fine for tests
        if group[i] < 0:
            for j in range(i, len(r)):
                if group[j] < 0 and float(raw.max(raw.abs(r[j] - r[i]))) <= tol * scale:
                    group[j] = i
    total = 0.0
    for g in set(group):
        members = t[[k for k in range(len(t)) if group[k] == g]]
        total += float(raw.sum((members - raw.mean(members, axis=0)) ** 2))
    return total


def oblique_projector(Y, S):
    """eq. (4.2): P = Y [I 0] [Y S]^+, the projector onto span(Y) along span(S). Y: [d, k], S: [d, j].

    P y = y for y in span(Y), P s = 0 for s in span(S). Needs [Y S] of full column rank,
    i.e. S n Y = {0} (ValueError otherwise).
    """
    YS = raw.concatenate([Y, S], axis=1)
    k = Y.shape[1]
    if YS.shape[1] > YS.shape[0] or raw.linalg.matrix_rank(YS) < YS.shape[1]:
        raise ValueError(f"span(Y) and span(S) intersect beyond {{0}} (rank [Y S] = "
                         f"{raw.linalg.matrix_rank(YS)} < {YS.shape[1]}); no oblique projector exists")
    return Y @ raw.linalg.pinv(YS)[:k]


def skip_coverage(params, params_ft, tokens, cfg):
    """The MLP share of the block-output change per layer, on the fine-tuned stream (measured).

    Returns a list of dicts {layer, share, mlp_change, block_change, attn_change,
    post_mlp_gap}: share = mlp_change / block_change with mlp_change = ||y_FT(H) - y(H)||,
    block_change = ||T_FT(H) - T(H)||. ``post_mlp_gap`` is the miss of the *naive* steer
    that sets y to y_FT(H); it equals ``attn_change`` by construction (a rearrangement,
    not a limit: a shift written at hook_mlp_out can carry the whole block change, eq. (4.4)).
    """
    _, cache = run_with_cache(params_ft, tokens, cfg, names="blocks.*.hook_resid_pre")
    rows = []
    for layer in range(cfg.n_layers):
        H = cache[f"blocks.{layer}.hook_resid_pre"]
        base = block_parts(block_params(params, layer), H, cfg)
        ft = block_parts(block_params(params_ft, layer), H, cfg)
        norm = lambda a: float(raw.linalg.norm(a))
        block_change = norm(ft["hook_resid_post"] - base["hook_resid_post"])
        mlp_change = norm(ft["hook_mlp_out"] - base["hook_mlp_out"])
        naive = base["hook_resid_mid"] + ft["hook_mlp_out"]  # y set to y_FT(H), skip left alone
        rows.append(dict(layer=layer, share=mlp_change / max(block_change, 1e-300), mlp_change=mlp_change,
                         block_change=block_change, post_mlp_gap=norm(ft["hook_resid_post"] - naive),
                         attn_change=norm(ft["hook_attn_out"] - base["hook_attn_out"])))
    return rows
