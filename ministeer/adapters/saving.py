"""Save and load a set of adapters: arrays plus their JSON specs, in one atomic file.

Array keys read like PEFT's (``lora/model.layers.0.self_attn.q_proj/lora_A``); the metadata
stores each adapter's spec and the exact path of every array, so the pytree is rebuilt
exactly (list indices stay ints). Uses ``ministeer.io.save_arrays`` (``.safetensors`` or
``.npz``, no pickle). Bitwise round trip: tests/test_adapters_io.py.
"""
from ..io import CheckpointError, load_arrays, save_arrays
from ..tree import from_paths, leaf_paths
from .core import Adapter, as_adapters

FORMAT = "ministeer-adapters/1"


def _key(name, path):
    return "/".join([name, *map(str, path)])


def save_adapters(path, adapters):
    """Write ``{name: Adapter}`` (or one Adapter / a list) to ``path`` (.safetensors or .npz)."""
    arrays, meta = {}, {"format": FORMAT, "adapters": {}, "order": list(as_adapters(adapters))}
    for name, a in as_adapters(adapters).items():
        if "/" in name:
            raise ValueError(f"adapter name {name!r} must not contain '/'")
        leaves = leaf_paths(a.params)
        arrays.update({_key(name, p): leaf for p, leaf in leaves})
        meta["adapters"][name] = {"spec": a.spec, "paths": [list(p) for p, _ in leaves]}
    save_arrays(path, arrays, meta)


def load_adapters(path):
    """``{name: Adapter}`` as saved; raises ``CheckpointError`` for a file that holds no adapters."""
    arrays, meta = load_arrays(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an adapter file (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    out = {}
    for name in meta["order"]:  # hook order matters; the JSON header sorts dict keys
        entry = meta["adapters"][name]
        out[name] = Adapter(entry["spec"], from_paths((tuple(p), arrays[_key(name, p)]) for p in entry["paths"]))
    return out

