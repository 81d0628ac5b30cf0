"""Parameter counts from the config alone: no array is allocated.

Adapter shapes come from the same ``Kind.shapes`` that initialization uses, so the count
is the size of what ``init_adapter`` would build (checked in tests/test_adapters_count.py,
which also checks the closed forms: post-block 2 r d L, vector d L, LoRA r (in + out) per
module). On Llama-3.2-1B shapes this reproduces the paper's percentages (NOTES.md §6):
post-block r=8 0.042%, vector 0.003%, rank 1 0.005%, LoRA r=8 all-linear 0.45%.
"""
from math import prod
from typing import NamedTuple

from .core import as_adapters, get_kind, make_spec


def base_shapes(cfg):
    """``{dotted param name: shape}`` of ``model.init_params(cfg)``."""
    d, m, kv = cfg.d_model, cfg.d_mlp, cfg.n_kv_heads * cfg.d_head
    norm = {"weight": (d,), **({"bias": (d,)} if cfg.norm == "layer" else {})}
    linear = lambda o, i: {"weight": (o, i), **({"bias": (o,)} if cfg.bias else {})}
    layer = {"input_layernorm": norm, "post_attention_layernorm": norm,
             "self_attn.q_proj": linear(d, d), "self_attn.k_proj": linear(kv, d),
             "self_attn.v_proj": linear(kv, d), "self_attn.o_proj": linear(d, d),
             "mlp.up_proj": linear(m, d), "mlp.down_proj": linear(d, m)}
    if cfg.mlp == "swiglu":
        layer["mlp.gate_proj"] = linear(m, d)
    shapes = {"model.embed_tokens.weight": (cfg.vocab_size, d)}
    if cfg.pos == "learned":
        shapes["model.embed_positions.weight"] = (cfg.n_ctx, d)
    for l in range(cfg.n_layers):
        shapes.update({f"model.layers.{l}.{mod}.{leaf}": s for mod, p in layer.items() for leaf, s in p.items()})
    shapes.update({f"model.norm.{leaf}": s for leaf, s in norm.items()})
    if not cfg.tied:
        shapes["lm_head.weight"] = (cfg.vocab_size, d)
    return shapes


def base_param_count(cfg):
    """Number of parameters of the base model (tied embeddings counted once)."""
    return sum(prod(s) for s in base_shapes(cfg).values())


class ParamCount(NamedTuple):
    trainable: int
    base: int
    percent: float  # 100 * trainable / base

    def __str__(self):
        return f"{self.trainable:,} trainable ({self.percent:.3g}% of {self.base:,})"


def _leaves(tree):
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _leaves(v)]
    return [tree]


def adapter_size(cfg, spec):
    """Parameters of one adapter described by ``spec`` (a dict with "kind"; patterns allowed)."""
    kind = get_kind(spec["kind"])
    spec = make_spec(cfg, spec["kind"], **{k: v for k, v in spec.items() if k in kind.fields})
    return sum(prod(s) for s in _leaves(kind.shapes(cfg, spec)))


def count_params(cfg, method):
    """``ParamCount(trainable, base, percent)`` for a method name (``METHODS``), an adapter spec
    ``{"kind": ..., ...}``, a dict ``{name: spec}``, or Adapter(s) -- from shapes only."""
    from .methods import METHODS
    if isinstance(method, str):
        if method not in METHODS:
            raise KeyError(f"unknown method {method!r}; valid: {sorted(METHODS)}")
        specs = list(METHODS[method].adapters.values())
    elif isinstance(method, dict) and "kind" in method:
        specs = [method]
    elif isinstance(method, dict) and all(isinstance(v, dict) for v in method.values()):
        specs = list(method.values())
    else:
        specs = [a.spec for a in as_adapters(method).values()]
    base = base_param_count(cfg)
    n = sum(adapter_size(cfg, s) for s in specs)
    return ParamCount(n, base, 100.0 * n / base)
