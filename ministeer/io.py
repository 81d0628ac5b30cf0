"""Safe saving and loading: named arrays plus JSON metadata, written atomically, read without pickle.

Three layers, each built on the one above it:

* ``save_arrays`` / ``load_arrays``: ``{name: array}`` plus a JSON-able metadata dict, as
  ``.safetensors`` or ``.npz`` (chosen by the suffix). The safetensors format (an 8-byte
  header length, a JSON header, raw little-endian bytes) is simple enough to read and
  write here in NumPy, so it needs no extra package and also reads ``bfloat16``
  checkpoints. ``.npz`` is read with ``allow_pickle=False``; its metadata is a JSON
  string stored as a uint8 array under ``__metadata__``.
* ``save_model`` / ``load_model``: a parameter tree and its ``Config`` (as JSON metadata).
* ``hf.load_pretrained`` / ``hf.save_pretrained`` build on these for a local Hugging Face
  folder (``config.json`` + ``model.safetensors``), ``LlamaForCausalLM`` and ``GPT2LMHeadModel``.

Every write goes to a temporary file in the same folder and is then renamed over the
target, so a crash never leaves a half-written file. Every load error is a
``CheckpointError`` that names the file and, where it applies, the tensor.
Checked in ``tests/test_io.py``.
"""
import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np  # host side: checkpoints live on the host

from .backend import from_numpy, to_numpy
from .model import Config, param_shapes
from .tree import flatten, unflatten

_META_KEY = "__metadata__"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match what was asked for."""


def atomic_write(path, write):
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

# ---------------------------------------------------------------- safetensors, in NumPy
# file = u64 little-endian n | n bytes of JSON header | data bytes
# header = {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}}
# offsets are relative to the start of the data bytes.


_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


def write_safetensors(path, host, metadata):
    header, offset = {}, 0
    host = {name: a.astype(a.dtype.newbyteorder("<"), copy=False) for name, a in host.items()}
    for name, a in host.items():
        if a.dtype not in _CODES:
            raise ValueError(f"cannot store {name!r} of dtype {a.dtype} in safetensors; "
                             f"supported: {sorted(str(d) for d in _CODES)}")
        header[name] = {"dtype": _CODES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    header[_META_KEY] = metadata
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for a in host.values():
            f.write(a.tobytes())  # C order


def _bfloat16_to_float32(raw_bytes, shape):
    """bfloat16 is the top half of a float32: shift the 16 bits up."""
    return (np.frombuffer(raw_bytes, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)


def read_safetensors(path):
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise CheckpointError(f"{str(path)!r} is too short to be a safetensors file ({len(data)} bytes)")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise CheckpointError(f"{str(path)!r}: header of {n} bytes does not fit in a {len(data)}-byte file "
                              "(truncated or not a safetensors file)")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{str(path)!r}: corrupt safetensors header ({err})") from None
    body = memoryview(data)[8 + n:]
    metadata = header.pop(_META_KEY, None) or {}
    arrays = {}
    for name, info in header.items():
        try:
            code, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{str(path)!r}: malformed header entry for {name!r}: {info!r}") from None
        itemsize = 2 if code == "BF16" else np.dtype(_DTYPES[code]).itemsize if code in _DTYPES else None
        if itemsize is None:
            raise CheckpointError(f"{str(path)!r}: tensor {name!r} has unsupported dtype {code}")
        if not 0 <= begin <= end <= len(body) or end - begin != itemsize * int(np.prod(shape)):
            raise CheckpointError(f"{str(path)!r}: tensor {name!r} ({code}, shape {list(shape)}) has byte range "
                                  f"[{begin}, {end}) outside or inconsistent with the {len(body)} data bytes "
                                  "(truncated or corrupt file)")
        chunk = body[begin:end]
        if code == "BF16":
            arrays[name] = _bfloat16_to_float32(chunk, shape)
        else:  # a native-byte-order copy that owns its memory
            stored = np.dtype(_DTYPES[code])
            arrays[name] = np.frombuffer(chunk, stored).astype(stored.newbyteorder("=")).reshape(shape)
    return arrays, metadata

# ---------------------------------------------------------------- named arrays + metadata


def save_arrays(path, arrays, metadata=None):
    """Write ``{name: array}`` and a JSON-able ``metadata`` dict to ``path`` atomically."""
    host = {name: np.asarray(to_numpy(a), order="C") for name, a in arrays.items()}  # keeps 0-d arrays 0-d
    if _META_KEY in host:
        raise ValueError(f"array name {_META_KEY!r} is reserved")
    meta = json.dumps(metadata or {}, sort_keys=True)
    if str(path).endswith(".safetensors"):
        atomic_write(path, lambda tmp: write_safetensors(tmp, host, {"json": meta}))
    elif str(path).endswith(".npz"):
        blob = np.frombuffer(meta.encode(), dtype=np.uint8)
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **host, **{_META_KEY: blob})
        atomic_write(path, write)
    else:
        raise ValueError(f"unknown checkpoint format for {str(path)!r}: use .safetensors or .npz")


def load_arrays(path, to_backend=True):
    """``(arrays, metadata)`` from a file written by ``save_arrays`` (or any safetensors file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {str(path)!r}")
    try:
        if path.suffix == ".safetensors":
            arrays, header_meta = read_safetensors(path)
            meta = json.loads(header_meta.get("json", "{}"))
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


# ---------------------------------------------------------------- a model: params + Config


def check_arrays(arrays, expected, source):
    """Raise a ``CheckpointError`` naming every missing, unexpected or mis-shaped tensor."""
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    wrong = [f"{n}: {list(arrays[n].shape)} in file, expected {list(expected[n])}"
             for n in sorted(set(arrays) & set(expected)) if tuple(arrays[n].shape) != tuple(expected[n])]
    problems = ([f"missing tensors: {missing}"] if missing else []) + \
               ([f"unexpected tensors: {extra}"] if extra else []) + \
               ([f"wrong shapes: {'; '.join(wrong)}"] if wrong else [])
    if problems:
        raise CheckpointError(f"{source} does not match the config: " + " | ".join(problems))


def config_from_dict(d, source):
    """``Config(**d)`` with unknown keys and invalid values reported as ``CheckpointError``."""
    known = {f.name for f in fields(Config)}
    if not isinstance(d, dict) or set(d) - known:
        unknown = sorted(set(d) - known) if isinstance(d, dict) else d
        raise CheckpointError(f"{source}: config has unknown fields {unknown}; valid: {sorted(known)}")
    try:
        return Config(**d)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: invalid config: {err}") from None


def save_model(path, params, cfg):
    """Save a parameter tree and its ``Config`` (JSON metadata) to ``.safetensors`` or ``.npz``."""
    check_arrays(flatten(params), param_shapes(cfg), "params")
    save_arrays(path, flatten(params), metadata={"format": "ministeer.model", "config": asdict(cfg)})


def load_model(path):
    """``(params, cfg)`` from a file written by ``save_model``; bitwise what was saved."""
    arrays, meta = load_arrays(path, to_backend=False)
    if "config" not in meta:
        raise CheckpointError(f"{str(path)!r} has no model config in its metadata: not written by save_model "
                              "(for a Hugging Face folder use load_pretrained)")
    cfg = config_from_dict(meta["config"], repr(str(path)))
    check_arrays(arrays, param_shapes(cfg), repr(str(path)))
    wrong_dtype = sorted(n for n, a in arrays.items() if a.dtype != np.dtype(cfg.dtype))
    if wrong_dtype:
        raise CheckpointError(f"{str(path)!r}: tensors {wrong_dtype} are not {cfg.dtype} as the config says")
    return unflatten({k: from_numpy(v) for k, v in arrays.items()}), cfg

