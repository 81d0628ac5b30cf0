"""Save and load a set of adapters: arrays plus their JSON specs, in one atomic file.

Array keys read like PEFT's (``lora/model.layers.0.self_attn.q_proj/lora_A``); the metadata
stores each adapter's spec and the exact path of every array, so the pytree is rebuilt
exactly (list indices stay ints). Uses ``ministeer.io.save_arrays`` (``.safetensors`` or
``.npz``, no pickle). Bitwise round trip: tests/test_adapters_io.py.
"""
from ..io import CheckpointError, load_arrays, save_arrays
from ..tree import from_paths, leaf_paths
from .core import Adapter, as_adapters, check_adapter

FORMAT = "ministeer-adapters/1"


def _key(name, path):
    return "/".join([name, *map(str, path)])


def save_adapters(path, adapters, cfg=None):
    """Write ``{name: Adapter}`` (or one Adapter / a list) to ``path`` (.safetensors or .npz).

    An adapter whose arrays disagree with its own spec is refused (checked fully against
    ``cfg`` when given, else its rank).
    """
    arrays, meta = {}, {"format": FORMAT, "adapters": {}, "order": list(as_adapters(adapters))}
    for name, a in as_adapters(adapters).items():
        if "/" in name:
            raise ValueError(f"adapter name {name!r} must not contain '/'")
        _check(name, a, cfg, ValueError)
        leaves = leaf_paths(a.params)
        arrays.update({_key(name, p): leaf for p, leaf in leaves})
        meta["adapters"][name] = {"spec": a.spec, "paths": [list(p) for p, _ in leaves]}
    save_arrays(path, arrays, meta)


def load_adapters(path, cfg=None):
    """``{name: Adapter}`` as saved. A ``CheckpointError`` for a file that holds no adapters, a
    missing array, or arrays that disagree with their spec (with ``cfg``: with the model too)."""
    arrays, meta = load_arrays(path)
    where = repr(str(path))
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an adapter file (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    out = {}
    try:
        for name in meta["order"]:  # hook order matters; the JSON header sorts dict keys
            entry = meta["adapters"][name]
            missing = [_key(name, p) for p in entry["paths"] if _key(name, p) not in arrays]
            if missing:
                raise CheckpointError(f"{where}: adapter {name!r} lacks arrays {missing[:5]}")
            out[name] = Adapter(entry["spec"], from_paths((tuple(p), arrays[_key(name, p)]) for p in entry["paths"]))
            _check(name, out[name], cfg, CheckpointError, where + ": ")
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{where}: damaged adapter metadata ({type(err).__name__}: {err})") from None
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
