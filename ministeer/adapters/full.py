"""Full fine-tuning as an adapter: every base weight is trainable.

Its parameters are the base tree itself, so ``adapted_params`` returns them in place of the
base and the forward is the plain one. It is the weight-space method the paper measures every
other method against (100% of the parameters; ``count_params`` reports PEFT's convention).
"""
from ..model import param_shapes
from .core import Adapter, Kind, register


def _full_shapes(cfg, spec):
    return {"base": param_shapes(cfg)}


def _full_init(cfg, spec, rng):
    raise TypeError("a full fine-tuning adapter starts from the base weights: use adapters.full(params)")


register(Kind("full", {}, lambda cfg, spec: spec, _full_shapes, _full_init))


def full(params):
    """Full fine-tuning as an adapter: its params are the whole base tree, shared, not copied
    (``fit`` returns new arrays and never mutates, so the base stays bitwise unchanged)."""
    return Adapter({"kind": "full"}, params)
