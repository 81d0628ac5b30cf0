"""Adapter files: each adapter's arrays and its JSON spec, in one atomic file.

Array keys read like PEFT's (``lora/model.layers.0.self_attn.q_proj/lora_A``); the metadata
stores each adapter's spec and the exact path of every array, so the pytree is rebuilt
exactly (list indices stay ints), and the adapters' order, which is their hook order. Written
by ``arrays.save_arrays`` (``.safetensors`` or ``.npz``, no pickle).

This module knows the file, not the methods: it reads and writes ``{name: (spec, params)}``.
``adapters.save_adapters`` / ``load_adapters`` wrap it with ``Adapter`` objects and check the
arrays against their spec and the model. Bitwise round trip: tests/test_adapters_io.py.
"""
from ..tree import from_paths, leaf_paths
from .arrays import CheckpointError, load_arrays, save_arrays

FORMAT = "ministeer.adapters/1"
OLD_FORMATS = ("ministeer-adapters/1",)  # still read


def _key(name, path):
    return "/".join([name, *map(str, path)])


def save_adapter_file(path, adapters):
    """Write ``{name: (spec, params)}``, in hook order, to ``path`` (.safetensors or .npz)."""
    arrays, meta = {}, {"format": FORMAT, "adapters": {}, "order": list(adapters)}
    for name, (spec, params) in adapters.items():
        if "/" in name:
            raise ValueError(f"adapter name {name!r} must not contain '/'")
        leaves = leaf_paths(params)
        arrays.update({_key(name, p): leaf for p, leaf in leaves})
        meta["adapters"][name] = {"spec": spec, "paths": [list(p) for p, _ in leaves]}
    save_arrays(path, arrays, meta)


def load_adapter_file(path):
    """``{name: (spec, params)}`` in the saved order. A ``CheckpointError`` for a file that holds
    no adapters, a missing array, or damaged metadata."""
    arrays, meta = load_arrays(path)
    where = repr(str(path))
    if meta.get("format") not in (FORMAT, *OLD_FORMATS):
        raise CheckpointError(f"{where} is not an adapter file (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    out = {}
    try:
        for name in meta["order"]:  # hook order matters; the JSON header sorts dict keys
            entry = meta["adapters"][name]
            missing = [_key(name, p) for p in entry["paths"] if _key(name, p) not in arrays]
            if missing:
                raise CheckpointError(f"{where}: adapter {name!r} lacks arrays {missing[:5]}")
            out[name] = (entry["spec"], from_paths((tuple(p), arrays[_key(name, p)]) for p in entry["paths"]))
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{where}: damaged adapter metadata ({type(err).__name__}: {err})") from None
    return out
