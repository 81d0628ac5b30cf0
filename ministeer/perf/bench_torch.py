"""The identical model in PyTorch eager, for ``ministeer bench`` only (torch is never a dependency).

Same config, same weights (copied from our params), same math in the same layout:
``bench.py`` checks that the logits agree to 1e-10 in float64 before it times anything.
"""
import torch
import torch.nn.functional as F


from ..tree import tree_leaves as leaves, tree_map


def from_params(params, cfg, to_numpy):
    """Our nested params -> the same nested structure of torch leaf tensors with requires_grad."""
    return tree_map(lambda a: torch.from_numpy(to_numpy(a).copy()).requires_grad_(True), params)


def _linear(x, p):
    return F.linear(x, p["weight"], p.get("bias"))


def _norm(x, p, cfg):
    if cfg.norm == "rms":
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.norm_eps) * p["weight"]
    return F.layer_norm(x, (x.shape[-1],), p["weight"], p.get("bias"), cfg.norm_eps)


def _rope_tables(T, cfg, dtype):
    inv_freq = 1.0 / cfg.rope_theta ** (torch.arange(0, cfg.d_head, 2, dtype=torch.float64) / cfg.d_head)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)[:, None, :]  # [T, 1, d_head]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _rope(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def _attention(x, p, cfg, tables):
    B, T, _ = x.shape
    H, K, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    q = _linear(x, p["q_proj"]).view(B, T, H, dh)
    k = _linear(x, p["k_proj"]).view(B, T, K, dh)
    v = _linear(x, p["v_proj"]).view(B, T, K, dh)
    if tables is not None:
        q, k = _rope(q, *tables), _rope(k, *tables)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    k, v = k.repeat_interleave(H // K, dim=1), v.repeat_interleave(H // K, dim=1)
    scores = (q @ k.transpose(-1, -2)) * (1.0 / dh ** 0.5)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    pattern = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
    z = (pattern @ v).transpose(1, 2).reshape(B, T, H * dh)
    return _linear(z, p["o_proj"])


def _mlp(x, p, cfg):
    if cfg.mlp == "swiglu":
        return _linear(F.silu(_linear(x, p["gate_proj"])) * _linear(x, p["up_proj"]), p["down_proj"])
    return _linear(F.gelu(_linear(x, p["up_proj"]), approximate="tanh"), p["down_proj"])


def forward(params, tokens, cfg):
    """Logits [B, T, V] for a LongTensor [B, T]; mirrors ministeer.model.forward."""
    B, T = tokens.shape
    embed = params["model"]["embed_tokens"]["weight"]
    h = embed[tokens]
    tables = None
    if cfg.pos == "learned":
        h = h + params["model"]["embed_positions"]["weight"][:T]
    else:
        tables = _rope_tables(T, cfg, h.dtype)
    for p in params["model"]["layers"]:
        h = h + _attention(_norm(h, p["input_layernorm"], cfg), p["self_attn"], cfg, tables)
        h = h + _mlp(_norm(h, p["post_attention_layernorm"], cfg), p["mlp"], cfg)
    h = _norm(h, params["model"]["norm"], cfg)
    return h @ (embed if cfg.tied else params["lm_head"]["weight"]).T


def loss(params, tokens, cfg):
    """Mean next-token cross-entropy, as ministeer.model.loss_fn with no mask."""
    logits = forward(params, tokens[:, :-1], cfg)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
