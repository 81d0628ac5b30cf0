"""Safe saving and loading: named arrays plus JSON metadata, written atomically, read without pickle.

Format: ``.safetensors`` when the ``safetensors`` package is installed (the metadata
goes in its header), else ``.npz`` read with ``allow_pickle=False`` (the metadata is
a JSON string stored as a uint8 array under ``__metadata__``). Both are chosen by the
file's suffix. A write goes to a temporary file in the same folder and is then
renamed over the target, so a crash never leaves a half-written checkpoint.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np  # host side: checkpoints live on the host

from .backend import from_numpy, to_numpy
from .tree import named_leaves

_META_KEY = "__metadata__"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match what was asked for."""


def _atomic_write(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_arrays(path, arrays, metadata=None):
    """Write ``{name: array}`` and a JSON-able ``metadata`` dict to ``path`` atomically."""
    host = {name: np.ascontiguousarray(to_numpy(a)) for name, a in arrays.items()}
    meta = json.dumps(metadata or {}, sort_keys=True)
    if str(path).endswith(".safetensors"):
        from safetensors.numpy import save_file
        _atomic_write(path, lambda tmp: save_file(host, tmp, metadata={"json": meta}))
    elif str(path).endswith(".npz"):
        if _META_KEY in host:
            raise ValueError(f"array name {_META_KEY!r} is reserved")
        blob = np.frombuffer(meta.encode(), dtype=np.uint8)
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **host, **{_META_KEY: blob})
        _atomic_write(path, write)
    else:
        raise ValueError(f"unknown checkpoint format for {str(path)!r}: use .safetensors or .npz")


def load_arrays(path, to_backend=True):
    """``(arrays, metadata)`` from a file written by ``save_arrays`` (or any safetensors file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {str(path)!r}")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open
            with safe_open(str(path), framework="numpy") as f:
                meta = json.loads((f.metadata() or {}).get("json", "{}"))
                arrays = {k: f.get_tensor(k) for k in f.keys()}
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files if k != _META_KEY}
                meta = json.loads(bytes(f[_META_KEY]).decode()) if _META_KEY in f.files else {}
        else:
            raise CheckpointError(f"unknown checkpoint format {path.suffix!r}: use .safetensors or .npz")
    except CheckpointError:
        raise
    except Exception as err:  # truncated, corrupt or foreign files
        raise CheckpointError(f"could not read checkpoint {str(path)!r}: {type(err).__name__}: {err}") from err
    if to_backend:
        arrays = {k: from_numpy(v) for k, v in arrays.items()}
    return arrays, meta


def flatten_tree(tree):
    """``{dotted name: array}`` for a nested params/adapters dict."""
    return dict(named_leaves(tree))


def unflatten_tree(flat):
    """Inverse of ``flatten_tree``: integer path parts become list indices."""
    root = {}
    for name, value in flat.items():
        node, parts = root, name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value  # noqa: builds a fresh container, not traced
    return _lists_from_digit_dicts(root)


def _lists_from_digit_dicts(node):
    if not isinstance(node, dict):
        return node
    node = {k: _lists_from_digit_dicts(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node):
        return [node[str(i)] for i in range(len(node))]
    return node
