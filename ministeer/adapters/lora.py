"""LoRA with PEFT semantics, as a weight adapter.

LoRA (Hu et al. 2021; PEFT ``LoraConfig``): for each target linear ``W`` [out, in]
(HF layout, ``y = W x``) the effective weight is

    W_eff = W + s * B @ A,   A: [r, in] (``lora_A``),  B: [out, r] (``lora_B``),
    s = alpha / r   (rsLoRA: alpha / sqrt(r)).

``B`` starts at zero, so the adapter is an exact no-op at init; ``A`` is
kaiming-uniform(a=sqrt 5), i.e. U(-1/sqrt(in), 1/sqrt(in)), as PEFT. This is the
weight-update side of the paper's comparison (the paper's LoRA baseline: r=8 on q,k,v,o,gate,up,down).
``W_eff`` is built inside the traced forward, so merging is the same arithmetic:
``merge_lora`` equals the unmerged forward bitwise (tests/test_adapters_lora.py).
"""
import fnmatch

import numpy as np  # host side only: initialization

from ..model import param_shapes
from ..sites import check_layers
from ..tree import get_path, set_path
from .core import Adapter, Kind, check_rank, check_scale, init_adapter, make_spec, register

SHORT_NAMES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
               "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}


def linear_modules(cfg):
    """``{module path: (out, in)}`` for every linear layer of ``cfg``, in forward order."""
    return {name.removesuffix(".weight"): shape for name, shape in param_shapes(cfg).items()
            if name.endswith("proj.weight") or name == "lm_head.weight"}


def resolve_targets(cfg, targets, layers=None):
    """Module paths for ``targets``: ``"all-linear"`` (every block linear, as PEFT), short names
    (q, k, v, o, gate, up, down), HF names (``q_proj``) or paths/globs (``model.layers.*.mlp.down_proj``)."""
    modules = linear_modules(cfg)
    targets = [targets] if isinstance(targets, str) else list(targets)
    chosen = []
    for t in targets:
        t = t.removesuffix(".weight")
        if t == "all-linear":
            hits = [p for p in modules if p.startswith("model.layers.")]
        elif t in SHORT_NAMES:
            hits = [p for p in modules if p.endswith("." + SHORT_NAMES[t])]
        else:
            hits = [p for p in modules if fnmatch.fnmatchcase(p, t) or p.rsplit(".", 1)[-1] == t]
        if not hits:
            short = [s for s, n in SHORT_NAMES.items() if any(p.endswith("." + n) for p in modules)]
            raise KeyError(f"unknown LoRA target {t!r} for this config; valid: 'all-linear', short names "
                           f"{short}, or module paths such as {sorted({p.split('.', 3)[-1] for p in modules})} "
                           f"under 'model.layers.<l>.'" + (", and 'lm_head'" if "lm_head" in modules else ""))
        chosen += hits
    if layers is not None:
        check_layers(cfg, layers)
        chosen = [p for p in chosen if p.startswith("model.layers.") and int(p.split(".")[2]) in layers]
    chosen = [p for p in modules if p in set(chosen)]  # forward order, no duplicates
    if not chosen:
        raise ValueError(f"LoRA targets {targets} with layers {layers} select no module")
    return chosen


def scaling(spec):
    """PEFT's ``s``: alpha / r, or alpha / sqrt(r) with rsLoRA."""
    r = spec["r"]
    return float(spec["alpha"]) / (r ** 0.5 if spec["rslora"] else r)


def _resolve(cfg, spec):
    if not isinstance(spec["rslora"], bool):
        raise ValueError(f"rslora must be True or False, got {spec['rslora']!r}")
    return {**spec, "r": check_rank(spec["r"], "LoRA rank r"), "alpha": check_scale(spec["alpha"], "LoRA alpha"),
            "modules": resolve_targets(cfg, spec["targets"], spec["layers"])}


def _shapes(cfg, spec):
    modules = linear_modules(cfg)
    return {p: {"lora_A": (spec["r"], modules[p][1]), "lora_B": (modules[p][0], spec["r"])} for p in spec["modules"]}


def _init(cfg, spec, rng):
    out = {}
    for path, s in _shapes(cfg, spec).items():
        bound = 1.0 / s["lora_A"][1] ** 0.5  # kaiming-uniform with a = sqrt(5)
        out[path] = {"lora_A": rng.uniform(-bound, bound, s["lora_A"]), "lora_B": np.zeros(s["lora_B"])}
    return out


def delta_weight(spec, p):
    """``s * B @ A`` [out, in] for one module (PEFT's ``get_delta_weight``)."""
    return scaling(spec) * (p["lora_B"] @ p["lora_A"])


def _weights(spec, lora_params, params):
    for path in spec["modules"]:
        W = get_path(params, path + ".weight")
        params = set_path(params, path + ".weight", W + delta_weight(spec, lora_params[path]))
    return params


register(Kind("lora", dict(r=8, alpha=8.0, targets="all-linear", layers=None, rslora=False),
              _resolve, _shapes, _init, weights=_weights))


def lora(cfg, r=8, alpha=8.0, targets="all-linear", layers=None, rslora=False, seed=0):
    """A LoRA adapter (PEFT defaults: r=8, lora_alpha=8, so s=1; targets every block linear)."""
    return init_adapter(cfg, make_spec(cfg, "lora", r=r, alpha=alpha, targets=targets, layers=layers,
                                       rslora=rslora), seed)


def merge_lora(params, adapter):
    """Base params with ``W <- W + s B A`` for every target (a new tree; ``params`` untouched)."""
    _check_lora(adapter)
    return _weights(adapter.spec, adapter.params, params)


def unmerge_lora(params, adapter):
    """Undo ``merge_lora``: ``W <- W - s B A``. Equal to the original W up to one rounding
    of (W + s B A), i.e. to ~1 ulp of |W| + |s B A| (tests/test_adapters_lora.py)."""
    _check_lora(adapter)
    for path in adapter.spec["modules"]:
        W = get_path(params, path + ".weight")
        params = set_path(params, path + ".weight", W - delta_weight(adapter.spec, adapter.params[path]))
    return params


def _check_lora(adapter):
    if not isinstance(adapter, Adapter) or adapter.kind != "lora":
        raise TypeError(f"expected a LoRA Adapter, got {adapter!r}")
