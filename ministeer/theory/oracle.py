"""Oracle steering: per-layer post-block shifts that turn the base model into the fine-tuned one.

docs/04-where-to-steer.md, section "The oracle" (equation numbers are this project's). With T_l the base block and T_l^FT
the fine-tuned one, the oracle post-block shift at layer l on the *steered* stream H~ is

    delta_l(H~) = T_l^FT(H~) - T_l(H~)                                          (4.5)

By induction the steered stream equals the fine-tuned stream at every layer, so the
logits match exactly (only the final norm and unembedding must be shared). Equivalently
(lockstep, (4.6)) the shifts can be precomputed on the fine-tuned stream,
delta_l = h_l^FT - T_l(h_{l-1}^FT), and replacing h_l by h_l^FT at any layer makes every
later layer fine-tuned.

Per token (4.7). If only the MLP (and its norm) changed, delta_l depends on the block
output z = x + MLP(n(x)) only through x = resid_mid, and when x -> z is injective x is
recovered by the fixed-point iteration x <- z - MLP(n(x)) (a contraction when
Lip(MLP o n) < 1). Then delta_l is a per-token function of z. If attention changed,
two tokens can share z yet need different shifts, and any per-token function misses
one of them by at least half their difference (4.8).
Checked in tests/test_claim_10_oracle.py and tests/test_claim_12_per_token.py.
"""
from ..backend import raw
from ..model import run_with_cache
from .blocks import apply_block, apply_mlp, apply_norm, block_params


def oracle_shift(params, params_ft, h, cfg, layer):
    """eq. (4.5): T_l^FT(H) - T_l(H) for a stream H [B, T, d] entering block ``layer``."""
    return apply_block(block_params(params_ft, layer), h, cfg) - apply_block(block_params(params, layer), h, cfg)


def stream_hooks(shift_at, cfg, layers=None, at="hook_resid_post"):
    """Hooks that add ``shift_at(layer, resid_pre)`` at blocks.{layer}.{at}.

    resid_pre is the *steered* stream entering the block, captured by a hook at
    blocks.{layer}.hook_resid_pre (which runs after the previous layer's shift).
    ``at="hook_mlp_out"`` writes the same shift before the MLP's residual add: it reaches
    the stream identically (eq. (4.4)), because hook_resid_post = hook_resid_mid + hook_mlp_out.
    """
    seen = {}
    hooks = {}
    for layer in (range(cfg.n_layers) if layers is None else layers):
        def keep(x, name, layer=layer):
            seen[layer] = x
            return x
        def add(x, name, layer=layer):
            return x + shift_at(layer, seen[layer])
        hooks[f"blocks.{layer}.hook_resid_pre"] = keep
        hooks[f"blocks.{layer}.{at}"] = add
    return hooks


def oracle_hooks(params, params_ft, cfg, layers=None, at="hook_resid_post"):
    """eq. (4.5) as hooks on the base model: forward(params, hooks=...) == forward(params_ft).

    ``at`` is where the shift is written: the post-block site, or ``"hook_mlp_out"`` (eq. (4.4)).
    """
    return stream_hooks(lambda layer, h: oracle_shift(params, params_ft, h, cfg, layer), cfg, layers, at)


def lockstep_shifts(params, params_ft, tokens, cfg):
    """eq. (4.6): {layer: h_l^FT - T_l(h_{l-1}^FT)}, fixed tensors from one fine-tuned pass."""
    _, cache = run_with_cache(params_ft, tokens, cfg, names=["blocks.*.hook_resid_pre", "blocks.*.hook_resid_post"])
    return {l: cache[f"blocks.{l}.hook_resid_post"]
            - apply_block(block_params(params, l), cache[f"blocks.{l}.hook_resid_pre"], cfg)
            for l in range(cfg.n_layers)}


def lockstep_hooks(shifts, replace_at=None, stream_ft=None):
    """eq. (4.6) as hooks: add the fixed shifts; optionally overwrite h_l by h_l^FT at ``replace_at``
    and add shifts only after it (``stream_ft`` = that layer's fine-tuned resid_post)."""
    hooks = {}
    for layer, delta in shifts.items():
        if replace_at is not None and layer < replace_at:
            continue
        if layer == replace_at:
            hooks[f"blocks.{layer}.hook_resid_post"] = lambda x, name, v=stream_ft: v + 0.0 * x
        else:
            hooks[f"blocks.{layer}.hook_resid_post"] = lambda x, name, d=delta: x + d
    return hooks


class NotContractive(RuntimeError):
    """The residual MLP is not a contraction on this data: eq. (4.7)'s premise fails."""


def invert_residual_mlp(z, p_norm, p_mlp, cfg, iters=500, tol=1e-14):
    """eq. (4.7): x with x + MLP(n(x)) = z, by x <- z - MLP(n(x)) from x = z.

    Raises RuntimeError if the iteration has not converged to ``tol`` (relative) in
    ``iters`` steps, i.e. the map was not contractive on this data.
    """
    x = z
    scale = float(raw.max(raw.abs(z))) or 1.0
    for _ in range(iters):
        new = z - apply_mlp(p_mlp, apply_norm(p_norm, x, cfg), cfg)
        change = float(raw.max(raw.abs(new - x)))
        if change <= tol * scale:
            return new
        x = new
    raise NotContractive(f"fixed-point inversion did not converge in {iters} steps "
                         f"(last change {change:.3g}); is Lip(MLP o norm) < 1?")


def per_token_mlp_oracle(p, p_ft, cfg):
    """eq. (4.7): the per-token post-block adapter g(z) = MLP_FT(n_FT(x)) - MLP(n(x)), x = inverse(z).

    Exact for a block whose attention is unchanged; z is a single token's block output (any
    leading shape: the function never mixes positions).
    """
    ln, ln_ft = p["post_attention_layernorm"], p_ft["post_attention_layernorm"]
    def g(z):
        x = invert_residual_mlp(z, ln, p["mlp"], cfg)
        return apply_mlp(p_ft["mlp"], apply_norm(ln_ft, x, cfg), cfg) - apply_mlp(p["mlp"], apply_norm(ln, x, cfg), cfg)
    return g


def per_token_lower_bound(z_a, z_b, need_a, need_b, tol=1e-12):
    """eq. (4.8): if two tokens have the same block output z but need shifts a != b, every
    per-token function g(z) misses one of them by >= ||a - b|| / 2."""
    gap = float(raw.max(raw.abs(z_a - z_b)))
    if gap > tol * max(1.0, float(raw.max(raw.abs(z_a)))):
        raise ValueError(f"the two tokens' block outputs differ (max |z_a - z_b| = {gap:.3g}); "
                         "the bound needs identical inputs")
    return 0.5 * float(raw.linalg.norm(need_a - need_b))
