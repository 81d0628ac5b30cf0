"""Save and load a set of adapters (``io.adapters`` holds the file format).

Saving refuses an adapter whose arrays disagree with its own spec (fully checked against
``cfg`` when given, else its rank); loading checks the same, so a file edited by hand or
written for another model is a ``CheckpointError`` naming the adapter and the array.
"""
from ..io.adapters import load_adapter_file, save_adapter_file
from ..io.arrays import CheckpointError
from ..tree import leaf_paths
from .core import Adapter, as_adapters, check_adapter


def save_adapters(path, adapters, cfg=None):
    """Write ``{name: Adapter}`` (or one Adapter / a list) to ``path`` (.safetensors or .npz)."""
    adapters = as_adapters(adapters)
    for name, a in adapters.items():
        _check(name, a, cfg, ValueError)
    save_adapter_file(path, {name: (a.spec, a.params) for name, a in adapters.items()})


def load_adapters(path, cfg=None):
    """``{name: Adapter}`` as saved; with ``cfg``, every array is checked against the model too."""
    out = {name: Adapter(spec, params) for name, (spec, params) in load_adapter_file(path).items()}
    for name, a in out.items():
        try:
            _check(name, a, cfg, CheckpointError, repr(str(path)) + ": ")
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"{str(path)!r}: damaged adapter metadata ({type(err).__name__}: {err})") from None
    return out


def _check(name, adapter, cfg, error, prefix=""):
    """With ``cfg``: every shape (``check_adapter``). Without: each kind's arrays all carry the
    rank ``r`` of the spec as a dimension (LoRA's A [r, in] and B [out, r], the steering
    adapter's D and U, ReFT's R, W and b), so ``r=4`` over ``r=2`` arrays is caught."""
    try:
        if cfg is not None:
            check_adapter(cfg, name, adapter)
            return
        r = adapter.spec.get("r")
        for path, leaf in leaf_paths(adapter.params):
            if r is not None and r not in tuple(leaf.shape):
                raise ValueError(f"adapter {name!r} ({adapter.kind}): array {'/'.join(map(str, path))} has shape "
                                 f"{list(leaf.shape)}, which does not carry the spec's rank r={r}")
    except ValueError as err:
        raise error(prefix + str(err)) from None
