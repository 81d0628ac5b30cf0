"""Where to steer: what each site can and cannot reach.

docs/04-where-to-steer.md (and docs/03-glu-and-pre-mlp.md for reachability).

* Reachability (3.5). A pre-MLP steer moves y only inside col(A(h)), a subspace of
  col(W_d). The part of a target shift t outside col(W_d),
      (I - W_d W_d^+) t,
  is a lower bound on the residual of *any* pre-MLP steer, at any size. A post-MLP or
  post-block steer adds t itself and has zero error.
* The post-MLP blind spot (4.1). If W_d = 0 the MLP output is the constant b_d, so
  any post-MLP steer g(y) is one constant vector; a post-block steer g(h_out) still
  varies with the input.
* Post-block contains linear post-MLP under a direct sum (4.2). If the skip part s lies
  in S and the MLP output y in Y with S n Y = {0}, the oblique projector P onto Y along
  S gives A P (s + y) = A y exactly, with rank(A P) <= rank(A).
* Skip-path coverage (4.4). Per layer, on the fine-tuned stream H,
      share_l = ||y_FT(H) - y(H)|| / ||T_FT(H) - T(H)||,
  and setting y to y_FT(H) (the post-MLP oracle) misses the block output by exactly
  ||attn_FT(H) - attn(H)||, nonzero once W_O or W_V changed.
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
    """eq. (4.1): sqrt(sum_i ||a_i - mean a||^2) over all tokens of acts [..., d]; 0 iff constant."""
    flat = acts.reshape(-1, acts.shape[-1])
    return float(raw.linalg.norm(flat - raw.mean(flat, axis=0)))


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
    """eq. (4.4), per layer on the fine-tuned stream: the MLP share of the block-output change,
    the post-MLP oracle's miss, and the attention-output change it equals.

    Returns a list of dicts {layer, share, post_mlp_gap, attn_change, block_change}.
    """
    _, cache = run_with_cache(params_ft, tokens, cfg, names="blocks.*.hook_resid_pre")
    rows = []
    for layer in range(cfg.n_layers):
        H = cache[f"blocks.{layer}.hook_resid_pre"]
        base = block_parts(block_params(params, layer), H, cfg)
        ft = block_parts(block_params(params_ft, layer), H, cfg)
        d_out = ft["hook_resid_post"] - base["hook_resid_post"]
        d_y = ft["hook_mlp_out"] - base["hook_mlp_out"]
        post_mlp = base["hook_resid_mid"] + ft["hook_mlp_out"]  # y steered all the way to y_FT(H)
        norm = lambda a: float(raw.linalg.norm(a))
        rows.append(dict(layer=layer, share=norm(d_y) / max(norm(d_out), 1e-300),
                         post_mlp_gap=norm(ft["hook_resid_post"] - post_mlp),
                         attn_change=norm(ft["hook_attn_out"] - base["hook_attn_out"]),
                         block_change=norm(d_out)))
    return rows
