"""A small decoder-only transformer as pure functions: config, parameters, forward.

Llama-style by default (RMSNorm, rotary positions, SwiGLU MLP, grouped-query
attention); GPT-2 style (LayerNorm, learned positions, GELU MLP, biases, tied
unembedding) is a config choice. Read top to bottom: ``Config``, ``init_params``,
then ``forward`` and the four functions it is made of.

Parameters are a nested dict whose dotted paths are Hugging Face Llama names
(``model.layers.0.self_attn.q_proj.weight``), weights in HF's ``[out, in]`` layout,
so ``y = x @ W.T`` and the math reads ``y = W x``. GPT-2 checkpoints load by the
renaming in ``ministeer/io/hf.py``.

Every activation passes through ``site(x, name)``, where hooks may replace it.
The names and shapes are listed in ``ministeer/sites.py``.
"""
import functools
import math
import numbers
from dataclasses import dataclass, replace

import numpy as np  # host-side only: initialization draws from a seeded host RNG

from . import fused, ops
from .backend import from_numpy, raw, xp
from .checks import check_batch, check_tokens, check_tree
from .sites import BLOCK_SITES, resolve, resolve_hooks
from .tree import unflatten

CHOICES = {"norm": ("rms", "layer"), "mlp": ("swiglu", "gelu"), "pos": ("rope", "learned"),
           "dtype": ("float64", "float32")}


@dataclass(frozen=True)
class Config:
    vocab_size: int = 64
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2  # < n_heads: grouped-query attention, as in Llama 3 / SmolLM
    d_mlp: int = 64
    n_ctx: int = 64
    norm: str = "rms"
    mlp: str = "swiglu"
    pos: str = "rope"
    bias: bool = False
    tied: bool = False
    dtype: str = "float64"
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    def __post_init__(self):
        for field, allowed in CHOICES.items():
            if not isinstance(getattr(self, field), str) or getattr(self, field) not in allowed:
                raise ValueError(f"Config.{field}={getattr(self, field)!r}; expected one of {allowed}")
        for field in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_mlp", "n_ctx"):
            value = getattr(self, field)  # bool is an int to Python, but True layers is a typo
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Config.{field} must be a positive int, got {value!r}")
            object.__setattr__(self, field, int(value))  # numpy ints become ints: the config goes to JSON
        for field in ("bias", "tied"):
            if not isinstance(getattr(self, field), (bool, np.bool_)):
                raise ValueError(f"Config.{field} must be True or False, got {getattr(self, field)!r}")
            object.__setattr__(self, field, bool(getattr(self, field)))
        for field in ("norm_eps", "rope_theta"):  # eps <= 0 divides by 0; theta <= 0 has no rotation
            value = getattr(self, field)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"Config.{field} must be a finite number > 0, got {value!r}")
            object.__setattr__(self, field, float(value))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not divisible by n_kv_heads={self.n_kv_heads}")
        if self.pos == "rope" and self.d_head % 2:
            raise ValueError(f"rotary embeddings need an even head size, got d_head={self.d_head}")

    @property
    def d_head(self):
        return self.d_model // self.n_heads

    @classmethod
    def llama(cls, **overrides):
        """RMSNorm, RoPE, SwiGLU, no biases, untied: the family the paper's theory is about."""
        return cls(**overrides)

    @classmethod
    def gpt2(cls, **overrides):
        """LayerNorm, learned positions, GELU MLP, biases, tied unembedding."""
        base = dict(norm="layer", mlp="gelu", pos="learned", bias=True, tied=True,
                    n_kv_heads=overrides.get("n_heads", 4), d_mlp=4 * overrides.get("d_model", 32))
        return cls(**{**base, **overrides})

    def replace(self, **changes):
        return replace(self, **changes)


PRESETS = {"llama": Config.llama, "gpt2": Config.gpt2}

# ---------------------------------------------------------------- parameters


def param_shapes(cfg):
    """``{dotted Hugging Face name: shape}`` of every parameter: the one description of the layout.

    ``init_params`` fills it; checkpoints (``io``, ``hf``), parameter counts and LoRA's list of
    linear modules are derived from it. Order: as a forward pass meets them.
    """
    d, m, kv, V = cfg.d_model, cfg.d_mlp, cfg.n_kv_heads * cfg.d_head, cfg.vocab_size
    norm = {"weight": (d,), **({"bias": (d,)} if cfg.norm == "layer" else {})}
    lin = lambda d_out, d_in: {"weight": (d_out, d_in), **({"bias": (d_out,)} if cfg.bias else {})}
    layer = {"input_layernorm": norm,
             "self_attn.q_proj": lin(d, d), "self_attn.k_proj": lin(kv, d), "self_attn.v_proj": lin(kv, d),
             "self_attn.o_proj": lin(d, d),
             "post_attention_layernorm": norm,
             **({"mlp.gate_proj": lin(m, d)} if cfg.mlp == "swiglu" else {}),
             "mlp.up_proj": lin(m, d), "mlp.down_proj": lin(d, m)}
    shapes = {"model.embed_tokens.weight": (V, d)}
    if cfg.pos == "learned":
        shapes["model.embed_positions.weight"] = (cfg.n_ctx, d)
    for l in range(cfg.n_layers):
        shapes.update({f"model.layers.{l}.{module}.{leaf}": shape
                       for module, p in layer.items() for leaf, shape in p.items()})
    shapes.update({f"model.norm.{leaf}": shape for leaf, shape in norm.items()})
    if not cfg.tied:
        shapes["lm_head.weight"] = (V, d)
    return shapes


def _init_std(name, std, out_std):
    """Standard deviation of a weight matrix's init: GPT-2 shrinks the writes into the residual stream."""
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        return out_std
    return 0.01 if "embed_positions" in name else std


def _draw_order(name):
    """Block weights first (MLP before attention), then embeddings, then the head.

    The order of the random draws is part of what a seed means: ministeer 0.1 drew in this
    order, and the shipped base model was pretrained from such an init.
    """
    if ".layers." in name:
        layer = int(name.split(".")[2])
        return (0, layer, 0 if ".mlp." in name else 1)
    return (1, 0, 0 if "embed_tokens" in name else 1 if "embed_positions" in name else 2)


def init_params(cfg, seed=0, std=0.02):
    """Random parameters (a nested dict) drawn on the host, so every backend gets the same.

    Weights ~ N(0, std) (``o_proj``/``down_proj``: std / sqrt(2 L); learned positions: 0.01),
    norm gains 1, biases 0.
    """
    rng = np.random.default_rng(seed)
    out_std = std / (2 * cfg.n_layers) ** 0.5
    shapes = param_shapes(cfg)
    values = {}
    for name in sorted(shapes, key=_draw_order):  # stable sort: layout order within a group
        shape = shapes[name]
        if name.endswith("bias"):
            values[name] = np.zeros(shape)
        elif len(shape) == 1:  # a norm's gain
            values[name] = np.ones(shape)
        else:
            values[name] = rng.normal(0.0, _init_std(name, std, out_std), shape)
    return unflatten({name: from_numpy(values[name], cfg.dtype) for name in shapes})

# ---------------------------------------------------------------- the forward pass


def linear(x, p):
    """[..., d_in] -> [..., d_out]. Flattened to 2-D so it is one GEMM (and one in the VJP)."""
    y = xp.reshape(x, (-1, x.shape[-1])) @ p["weight"].T
    if "bias" in p:
        y = y + p["bias"]
    return xp.reshape(y, x.shape[:-1] + (y.shape[-1],))


def norm(x, p, cfg):
    if cfg.norm == "rms":
        return ops.rms_norm(x, p["weight"], cfg.norm_eps)
    return ops.layer_norm(x, p["weight"], p.get("bias", 0.0), cfg.norm_eps)


def attention(x, p, cfg, site, rope_tables):
    B, T, _ = x.shape
    H, K, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    q = site(xp.reshape(linear(x, p["q_proj"]), (B, T, H, dh)), "attn.hook_q")
    k = site(xp.reshape(linear(x, p["k_proj"]), (B, T, K, dh)), "attn.hook_k")
    v = site(xp.reshape(linear(x, p["v_proj"]), (B, T, K, dh)), "attn.hook_v")
    if rope_tables is not None:
        cos, sin = rope_tables
        q, k = ops.rope(q, cos[:T], sin[:T]), ops.rope(k, cos[:T], sin[:T])
    heads_first = lambda a: xp.transpose(a, (0, 2, 1, 3))  # [B, T, h, dh] -> [B, h, T, dh]
    pattern = site(ops.attention_pattern(heads_first(q), heads_first(k), 1.0 / dh ** 0.5),
                   "attn.hook_pattern")  # [B, H, T, T]
    # each group of H/K query heads reads one key/value head
    v5 = xp.reshape(heads_first(v), (B, K, 1, T, dh))
    z = xp.reshape(xp.reshape(pattern, (B, K, H // K, T, T)) @ v5, (B, H, T, dh))
    z = site(xp.transpose(z, (0, 2, 1, 3)), "attn.hook_z")  # [B, T, H, dh]
    return linear(xp.reshape(z, (B, T, H * dh)), p["o_proj"])  # [B, T, d]


def mlp(x, p, cfg, site):
    if cfg.mlp == "swiglu":
        gate = site(linear(x, p["gate_proj"]), "mlp.hook_pre")  # a_g  [B, T, m]
        up = site(linear(x, p["up_proj"]), "mlp.hook_pre_linear")  # a_u  [B, T, m]
        hidden = site(ops.swiglu(gate, up), "mlp.hook_post")  # m = silu(a_g) * a_u
    else:
        hidden = site(ops.gelu(site(linear(x, p["up_proj"]), "mlp.hook_pre")), "mlp.hook_post")
    return linear(hidden, p["down_proj"])  # y = W_d m  [B, T, d]


def block(h, p, cfg, site, rope_tables):
    """One pre-norm block: h + Attn(Norm(h)), then + MLP(Norm(.)) (docs/01 eqs. (1.1)-(1.2))."""
    h = site(h, "hook_resid_pre")
    x = site(norm(h, p["input_layernorm"], cfg), "ln1.hook_normalized")
    h = site(h + site(attention(x, p["self_attn"], cfg, site, rope_tables), "hook_attn_out"),
             "hook_resid_mid")
    x = site(norm(h, p["post_attention_layernorm"], cfg), "ln2.hook_normalized")
    return site(h + site(mlp(x, p["mlp"], cfg, site), "hook_mlp_out"), "hook_resid_post")


def forward(params, tokens, cfg, hooks=None):
    """Logits [B, T, V] for integer tokens [B, T] (a 1-D [T] is read as one sequence).

    ``hooks`` maps a site name, alias or glob (``"blocks.*.hook_resid_post"``) to a
    function ``(activation, name) -> new activation`` (or a list of them, applied in
    order). Hooks must return a new array of the same shape; they are differentiated
    like any other code.
    """
    return _forward_checked(params, check_tokens(tokens, cfg), cfg, hooks)


@functools.lru_cache(maxsize=64)
def _layout(cfg):
    """``{path tuple: shape}`` the parameter tree of ``cfg`` must have (``param_shapes``, as paths)."""
    return {tuple(int(k) if k.isdigit() else k for k in name.split(".")): shape
            for name, shape in param_shapes(cfg).items()}


def check_params(params, cfg):
    """Raise a ``ValueError`` naming the first tensor of ``params`` that is missing, unexpected or
    mis-shaped for ``cfg`` (``checks.check_tree`` against ``param_shapes``; no array is read)."""
    check_tree(params, _layout(cfg))


INNER_SITES = tuple(s for s in BLOCK_SITES if s not in ("hook_resid_pre", "hook_resid_post"))


def fused_layers(cfg, hooks=None, resolved=False):
    """The layers ``forward`` runs as one fused node (``ministeer/fused.py``) under ``hooks``:
    those none of whose inner sites (``INNER_SITES``: all but the block's two boundaries) has
    a hook. Empty when the fused path is off (``fused.use_fused(False)``) or on the GPU backend."""
    if not fused.fused_enabled():
        return []
    hooked = set(hooks if resolved else resolve_hooks(cfg, hooks))
    return [layer for layer in range(cfg.n_layers)
            if not any(f"blocks.{layer}.{s}" in hooked for s in INNER_SITES)]


def _reference(cfg, rope_tables):
    """The hooked block with no hooks, on a ``{path: weight}`` dict: what the fused node equals."""
    def run(h, weights):
        p = {}
        for path, w in weights.items():
            node = p
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = w
        return block(h, p, cfg, lambda x, name: x, rope_tables)
    return run


def _forward_checked(params, tokens, cfg, hooks):
    check_params(params, cfg)
    if fused.fused_enabled():
        params = fused.traced_tree(params)  # a tree differentiated as a whole: read in one walk
    hooks = resolve_hooks(cfg, hooks)
    site = _site_caller(hooks)
    B, T = tokens.shape
    embed = params["model"]["embed_tokens"]["weight"]
    h = site(ops.embedding(embed, tokens), "hook_embed")  # [B, T, d]
    rope_tables = None
    if cfg.pos == "learned":
        h = h + site(xp.reshape(ops.embedding(params["model"]["embed_positions"]["weight"],
                                              raw.arange(T)), (1, T, cfg.d_model)), "hook_pos_embed")
    else:
        rope_tables = ops.rope_tables(T, cfg.d_head, cfg.rope_theta, cfg.dtype)
    fused_at = fused_layers(cfg, hooks, resolved=True)
    for layer, p in enumerate(params["model"]["layers"]):
        prefix = f"blocks.{layer}."
        layer_site = lambda x, name, prefix=prefix: site(x, prefix + name)
        if layer in fused_at:  # one autograd node; the hooks at its boundary still run
            h = layer_site(h, "hook_resid_pre")
            h = layer_site(fused.block(h, p, cfg, rope_tables, _reference(cfg, rope_tables)), "hook_resid_post")
        else:
            h = block(h, p, cfg, layer_site, rope_tables)
    h = site(norm(h, params["model"]["norm"], cfg), "ln_final.hook_normalized")
    unembed = embed if cfg.tied else params["lm_head"]["weight"]
    return linear(h, {"weight": unembed})  # [B, T, V]


def _site_caller(resolved):
    def site(x, name):
        for fn in resolved.get(name, ()):
            new = fn(x, name)
            if getattr(new, "shape", None) != x.shape:
                raise ValueError(f"hook on {name!r} returned shape {getattr(new, 'shape', type(new))}, "
                                 f"expected {x.shape}")
            x = new
        return x
    return site


def run_with_cache(params, tokens, cfg, names=None, hooks=None):
    """``(logits, cache)``: cache maps each site in ``names`` (default: all) to its activation.

    Cached values are taken after any ``hooks`` at that site, i.e. what the rest of the
    network sees.
    """
    cache = {}
    def record(x, name):
        cache[name] = x  # not traced: a side record of the value
        return x
    patterns = ["*"] if names is None else ([names] if isinstance(names, str) else list(names))
    merged = resolve_hooks(cfg, hooks)
    for name in {n for pattern in patterns for n in resolve(cfg, pattern)}:
        merged.setdefault(name, []).append(record)  # after the user's hooks at that site
    logits = forward(params, tokens, cfg, hooks=merged)
    return logits, cache


def loss_fn(params, tokens, cfg, targets=None, mask=None, hooks=None):
    """Mean next-token cross-entropy over the positions where ``mask`` is 1.

    With ``targets=None`` the targets are ``tokens`` shifted left and the last
    position is dropped. ``mask`` [B, T] (the shape of ``tokens``) selects supervised
    positions, e.g. the completion only, as in the paper's SFT; its values are weights >= 0,
    not all 0. ``targets`` are integers in [0, vocab_size) of the shape of ``tokens``.
    """
    tokens, targets, weights = check_batch(tokens, cfg, targets, mask)
    logits = _forward_checked(params, tokens, cfg, hooks)  # tokens were checked above
    B, T, V = logits.shape
    weights = raw.ones((B * T,), dtype=logits.dtype) if weights is None else weights.reshape(-1).astype(logits.dtype)
    return ops.cross_entropy(xp.reshape(logits, (B * T, V)), targets.reshape(-1), weights)
