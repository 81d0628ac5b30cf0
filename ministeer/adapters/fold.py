"""Folding adapters into the base weights, exactly where the algebra allows it.

An activation adapter whose shift is affine in the activation, ``delta(h) = P Q h + c`` at
every position, can be absorbed by a linear layer next to its site (the paper's
"weight update as activation shift" correspondence read backwards, docs/02-weight-updates-as-shifts.md):

* right after a linear ``y = W x + b`` (``hook_attn_out`` <- o_proj, ``hook_mlp_out`` <- down_proj,
  ``attn.hook_q/k/v``, ``mlp.hook_pre/pre_linear``):  W <- (I + PQ) W,  b <- (I + PQ) b + c;
* right before one (``ln1/ln2.hook_normalized`` -> q,k,v / gate,up; ``mlp.hook_post`` -> down_proj;
  ``attn.hook_z`` -> o_proj):  W <- W (I + PQ),  b <- b + W c;
* on the residual stream (``hook_resid_mid/post``, ``hook_resid_pre`` of layer > 0) only a constant
  shift folds, into the bias of the linear whose output was just added to the stream.

Everything else raises ``FoldError`` with a one-sentence reason: position-restricted shifts,
nonlinear adapters, input-dependent shifts after a skip connection, no bias to absorb a constant.
Tests: tests/test_adapters_fold.py (gpt2 ``hook_attn_out`` vector == o_proj bias update, 1e-12).
"""
from ..sites import split_name
from ..tree import get_path, set_path
from .core import as_adapters, get_kind
from .lora import merge_lora


class FoldError(ValueError):
    """This adapter's effect is not reproduced by any update of the base weights."""


def _producers(cfg):
    return {"hook_attn_out": ["self_attn.o_proj"], "hook_mlp_out": ["mlp.down_proj"],
            "attn.hook_q": ["self_attn.q_proj"], "attn.hook_k": ["self_attn.k_proj"],
            "attn.hook_v": ["self_attn.v_proj"], "mlp.hook_pre_linear": ["mlp.up_proj"],
            "mlp.hook_pre": ["mlp.gate_proj" if cfg.mlp == "swiglu" else "mlp.up_proj"]}


def _consumers(cfg):
    return {"ln1.hook_normalized": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
            "ln2.hook_normalized": (["mlp.gate_proj"] if cfg.mlp == "swiglu" else []) + ["mlp.up_proj"],
            "mlp.hook_post": ["mlp.down_proj"], "attn.hook_z": ["self_attn.o_proj"]}


def _resid_bias_owner(layer, suffix):
    """The linear whose output is the last thing added to the stream before this site."""
    if suffix == "hook_resid_mid":
        return layer, "self_attn.o_proj"
    if suffix == "hook_resid_post":
        return layer, "mlp.down_proj"
    if suffix == "hook_resid_pre" and layer > 0:
        return layer - 1, "mlp.down_proj"
    return None


def _affine_parts(name, adapter, site):
    spec = adapter.spec
    if spec.get("positions") is not None:
        raise FoldError(f"cannot fold {name!r}: it edits only some positions (positions={spec['positions']!r}), "
                        "but a weight or bias update acts on every position alike.")
    kind = get_kind(adapter.kind)
    if kind.affine is None:  # LoFiT, JoLA: per-head edits of attn.hook_z (an o_proj update in principle)
        raise FoldError(f"cannot fold {name!r}: ministeer has no folding rule for {adapter.kind!r} adapters "
                        f"(they edit per-head outputs at {spec['sites'][0] if spec['sites'] else 'no site'!r}).")
    parts = kind.affine(spec, adapter.params[site])
    if parts is None:
        raise FoldError(f"cannot fold {name!r}: its activation {spec.get('activation')!r} makes the shift a "
                        "nonlinear function of the activation, which no weight matrix reproduces.")
    return parts  # (P, Q, c): delta(h) = P (Q h) + c; P, Q or c may be None


def _need_bias(name, site, path, params):
    if "bias" not in get_path(params, path):
        raise FoldError(f"cannot fold {name!r} at {site!r}: its constant shift needs a bias in {path}, "
                        "and this model has none (Config.bias=False).")


def _fold_producer(params, path, P, Q, c, name, site):
    W = get_path(params, path + ".weight")  # [out, in]; out = the site's width
    shape = W.shape[:1]
    if P is not None:
        params = set_path(params, path + ".weight", W + P @ (Q @ W))
    if c is not None or "bias" in get_path(params, path):
        _need_bias(name, site, path, params)
        b = get_path(params, path + ".bias")
        b = b + P @ (Q @ b) if P is not None else b
        params = set_path(params, path + ".bias", b if c is None else b + c.reshape(shape))
    return params


def _fold_consumer(params, path, P, Q, c, name, site):
    W = get_path(params, path + ".weight")  # [out, in]; in = the site's width
    if c is not None:
        _need_bias(name, site, path, params)
        params = set_path(params, path + ".bias", get_path(params, path + ".bias") + W @ c.reshape(-1))
    if P is not None:
        params = set_path(params, path + ".weight", W + (W @ P) @ Q)
    return params


def fold(params, adapters, cfg):
    """Base params with every adapter absorbed (``full`` replaces, LoRA merges, affine
    all-position shifts fold); raises ``FoldError`` if any adapter cannot be folded exactly.

    Adapters at the same site fold in hook order: producer-side left-multiplies, so in order;
    consumer-side right-multiplies, so in reverse.
    """
    adapters = as_adapters(adapters)
    for a in adapters.values():
        if a.kind == "full":
            params = a.params
    for a in adapters.values():
        if a.kind == "lora":
            params = merge_lora(params, a)
    producer, consumer = [], []
    for name, a in adapters.items():
        if get_kind(a.kind).delta is None:
            continue
        for site in a.spec["sites"]:
            (producer if split_name(site)[1] not in _consumers(cfg) else consumer).append((name, a, site))
    for name, a, site in producer + consumer[::-1]:
        params = _fold_one(params, cfg, name, a, site)
    return params


def _fold_one(params, cfg, name, adapter, site):
    P, Q, c = _affine_parts(name, adapter, site)
    layer, suffix = split_name(site)
    prefix = f"model.layers.{layer}."
    if suffix in _producers(cfg):
        for mod in _producers(cfg)[suffix]:
            params = _fold_producer(params, prefix + mod, P, Q, c, name, site)
        return params
    if suffix in _consumers(cfg):
        for mod in _consumers(cfg)[suffix]:
            params = _fold_consumer(params, prefix + mod, P, Q, c, name, site)
        return params
    owner = _resid_bias_owner(layer, suffix) if layer is not None else None
    if owner is None:
        raise FoldError(f"cannot fold {name!r} at {site!r}: no linear layer sits directly before or after "
                        "this site to absorb the edit.")
    if P is not None:
        raise FoldError(f"cannot fold {name!r} at {site!r}: it reads the residual stream after the skip "
                        "connection, and the skip path passes through no weight that could carry an "
                        "input-dependent shift.")
    path = f"model.layers.{owner[0]}.{owner[1]}"
    _need_bias(name, site, path, params)
    return set_path(params, path + ".bias", get_path(params, path + ".bias") + c)
