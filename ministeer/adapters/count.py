"""Parameter counts from the config alone: no array is allocated.

Adapter shapes come from the same ``Kind.shapes`` that initialization uses, so the count
is the size of what ``init_adapter`` would build (checked in tests/test_adapters_count.py,
which also checks the closed forms: post-block 2 r d L, vector d L, LoRA r (in + out) per
module). On Llama-3.2-1B shapes this reproduces the paper's percentages
(arXiv 2603.00425 and the authors' blog post "Activation Steering vs. Finetuning"):
post-block r=8 0.042%, vector 0.003%, rank 1 0.005%, LoRA r=8 all-linear 0.45%.

``percent`` follows PEFT's "trainable%" (``print_trainable_parameters``): trainable divided
by *all* parameters of the adapted model, base + adapter (full fine-tuning adds none, so it
is 100%). LoRA r=8 on Llama-3.2-1B: 0.4540%, the paper's 0.45%. ``percent_of_base`` divides
by the base alone (0.4561% there, which would round to 0.46%).
"""
from math import prod
from typing import NamedTuple

from ..model import param_shapes
from ..tree import leaf_paths
from .core import as_adapters, get_kind, make_spec

_is_shape = lambda node: isinstance(node, tuple)


def base_param_count(cfg):
    """Number of parameters of the base model (tied embeddings counted once)."""
    return sum(prod(s) for s in param_shapes(cfg).values())


class ParamCount(NamedTuple):
    trainable: int
    base: int
    percent: float          # PEFT's convention: 100 * trainable / (base + added parameters)
    percent_of_base: float  # 100 * trainable / base

    def __str__(self):
        return (f"{self.trainable:,} trainable ({self.percent:.3g}% of base + adapter, "
                f"{self.percent_of_base:.3g}% of the base's {self.base:,})")


def adapter_size(cfg, spec):
    """Parameters of one adapter described by ``spec`` (a dict with "kind"; patterns allowed)."""
    kind = get_kind(spec["kind"])
    spec = make_spec(cfg, spec["kind"], **{k: v for k, v in spec.items() if k in kind.fields})
    return sum(prod(s) for _, s in leaf_paths(kind.shapes(cfg, spec), is_leaf=_is_shape))


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
    added = sum(adapter_size(cfg, s) for s in specs if s["kind"] != "full")  # full FT trains the base itself
    return ParamCount(n, base, 100.0 * n / (base + added), 100.0 * n / base)
