"""Save and load a set of adapters: arrays plus their JSON specs, in one atomic file.

Array keys read like PEFT's (``lora/model.layers.0.self_attn.q_proj/lora_A``); the metadata
stores each adapter's spec and the exact path of every array, so the pytree is rebuilt
exactly (list indices stay ints). Uses ``ministeer.io.save_arrays`` (``.safetensors`` or
``.npz``, no pickle). Bitwise round trip: tests/test_adapters_io.py.
"""
from ..io import CheckpointError, load_arrays, save_arrays
from .core import Adapter, as_adapters

FORMAT = "ministeer-adapters/1"


def _paths(tree, prefix=()):
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in _paths(v, prefix + (k,))]
    if isinstance(tree, (list, tuple)):
        return [p for i, v in enumerate(tree) for p in _paths(v, prefix + (i,))]
    return [(prefix, tree)]


def _key(name, path):
    return "/".join([name, *map(str, path)])


def save_adapters(path, adapters):
    """Write ``{name: Adapter}`` (or one Adapter / a list) to ``path`` (.safetensors or .npz)."""
    arrays, meta = {}, {"format": FORMAT, "adapters": {}, "order": list(as_adapters(adapters))}
    for name, a in as_adapters(adapters).items():
        if "/" in name:
            raise ValueError(f"adapter name {name!r} must not contain '/'")
        leaves = _paths(a.params)
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
        entry, params = meta["adapters"][name], None
        for p in entry["paths"]:
            params = _insert(params, p, arrays[_key(name, p)])
        out[name] = Adapter(entry["spec"], params)
    return out


def _insert(node, path, leaf):
    if not path:
        return leaf
    head = path[0]
    if isinstance(head, int):
        node = [] if node is None else node
        if head == len(node):
            node.append(None)  # host-side container being built, never traced
        node[head] = _insert(node[head], path[1:], leaf)
        return node
    node = {} if node is None else node
    node[head] = _insert(node.get(head), path[1:], leaf)
    return node
