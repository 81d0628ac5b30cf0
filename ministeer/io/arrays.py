"""Named arrays plus JSON metadata, written atomically (``atomic.py``), read without pickle.

Three layers, each built on the one above it:

* ``save_arrays`` / ``load_arrays``: ``{name: array}`` plus a JSON-able metadata dict, as
  ``.safetensors`` or ``.npz`` (chosen by the suffix). The safetensors format (an 8-byte
  header length, a JSON header, raw little-endian bytes) is simple enough to read and
  write here in NumPy, so it needs no extra package and also reads ``bfloat16``
  checkpoints. ``.npz`` is read with ``allow_pickle=False``; its metadata is a JSON
  string stored as a uint8 array under ``__metadata__``.
* ``save_model`` / ``load_model``: a parameter tree and its ``Config`` (as JSON metadata).
* ``io.hf.load_pretrained`` / ``io.hf.save_pretrained`` build on these for a local Hugging Face
  folder (``config.json`` + ``model.safetensors``), ``LlamaForCausalLM`` and ``GPT2LMHeadModel``.

Every write goes through ``atomic.atomic_write``, so a crash never leaves a half-written file. ministeer's files carry a SHA-256
of their data and metadata, checked on load. Every load error is a ``CheckpointError``
that names the file and, where it applies, the tensor. What is promised, in one page:
docs/guarantees.md. Checked in ``tests/test_io.py``, ``tests/test_loads.py`` (sizes before
memory) and ``tests/test_reliability.py``.
"""
import hashlib
import json
import math
import os
import zipfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np  # host side: checkpoints live on the host

from ..backend import from_numpy, to_numpy
from ..model import Config, param_shapes
from ..tree import flatten, unflatten
from .atomic import atomic_write

_META_KEY = "__metadata__"
# One scheme for the format tags: "ministeer.<what>/<version>" (io.state, io.adapters too). A model
# file is recognised by its config, so files tagged "ministeer.model" (the shipped base) still load.
MODEL_FORMAT = "ministeer.model/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match what was asked for."""

# ---------------------------------------------------------------- safetensors, in NumPy
# file = u64 little-endian n | n bytes of JSON header | data bytes
# header = {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}}
# offsets are relative to the start of the data bytes; the tensors tile the data exactly
# (no gap, no overlap, nothing after the last one), as the ``safetensors`` package requires.


_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100_000_000  # the safetensors package's limit


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


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def _is_count(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def read_safetensors(path):
    """``(arrays, metadata)``; every structural defect is a ``CheckpointError`` naming the file."""
    data = Path(path).read_bytes()
    where = repr(str(path))
    if len(data) < 8:
        raise CheckpointError(f"{where} is too short to be a safetensors file ({len(data)} bytes)")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8 or n > _MAX_HEADER:
        raise CheckpointError(f"{where}: header of {n} bytes does not fit in a {len(data)}-byte file "
                              "(truncated or not a safetensors file)")
    try:
        header = json.loads(data[8:8 + n], object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{where}: corrupt safetensors header ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: corrupt safetensors header (a JSON {type(header).__name__}, not an object)")
    body = memoryview(data)[8 + n:]
    metadata = header.pop(_META_KEY, None)
    metadata = {} if metadata is None else metadata  # absent or null: none; 0, "" or [] are corrupt
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{where}: __metadata__ must map strings to strings, got {metadata!r:.200}")
    arrays, ranges = {}, []
    for name, info in header.items():
        try:
            code, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{where}: malformed header entry for {name!r}: {info!r}") from None
        if not all(map(_is_count, (*shape, begin, end))):
            raise CheckpointError(f"{where}: malformed header entry for {name!r}: {info!r}")
        itemsize = 2 if code == "BF16" else np.dtype(_DTYPES[code]).itemsize if code in _DTYPES else None
        if itemsize is None:
            raise CheckpointError(f"{where}: tensor {name!r} has unsupported dtype {code}")
        if not begin <= end <= len(body) or end - begin != itemsize * math.prod(shape):
            raise CheckpointError(f"{where}: tensor {name!r} ({code}, shape {list(shape)}) has byte range "
                                  f"[{begin}, {end}) outside or inconsistent with the {len(body)} data bytes "
                                  "(truncated or corrupt file)")
        ranges.append((begin, end, name))
        chunk = body[begin:end]
        if code == "BF16":
            arrays[name] = _bfloat16_to_float32(chunk, shape)
        else:  # a native-byte-order copy that owns its memory
            stored = np.dtype(_DTYPES[code])
            arrays[name] = np.frombuffer(chunk, stored).astype(stored.newbyteorder("=")).reshape(shape)
    _check_tiling(sorted(ranges), len(body), where)
    return arrays, metadata


def _check_tiling(ranges, n_bytes, where):
    """The tensors' byte ranges must cover the data exactly once, in some order."""
    covered = 0
    for begin, end, name in ranges:
        if begin != covered:
            what = "overlaps the tensor before it" if begin < covered else f"leaves a gap of {begin - covered} bytes"
            raise CheckpointError(f"{where}: tensor {name!r} at bytes [{begin}, {end}) {what} (corrupt file)")
        covered = end
    if covered != n_bytes:
        raise CheckpointError(f"{where}: {n_bytes - covered} bytes after the last tensor (corrupt file)")

# ---------------------------------------------------------------- named arrays + metadata
# ministeer's files carry, beside the caller's JSON metadata, a SHA-256 over that JSON and
# every tensor's name, dtype, shape and bytes; loading recomputes it. Files without the
# marker (the safetensors files of other tools, ministeer 0.1's files) load unverified.

_FORMAT = "2"  # the "ministeer_format" marker of files that carry a digest


def digest(host, meta_json):
    """SHA-256 (hex) over the metadata JSON and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(meta_json.encode())
    for name in sorted(host):
        a = np.asarray(host[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def save_arrays(path, arrays, metadata=None):
    """Write ``{name: array}`` and a JSON-able ``metadata`` dict to ``path`` atomically, with a digest."""
    host = {name: np.asarray(to_numpy(a), order="C") for name, a in arrays.items()}  # keeps 0-d arrays 0-d
    if _META_KEY in host:
        raise ValueError(f"array name {_META_KEY!r} is reserved")
    meta = json.dumps(metadata or {}, sort_keys=True, allow_nan=False)
    outer = {"ministeer_format": _FORMAT, "json": meta, "sha256": digest(host, meta)}
    if str(path).endswith(".safetensors"):
        atomic_write(path, lambda tmp: write_safetensors(tmp, host, outer))
    elif str(path).endswith(".npz"):
        blob = np.frombuffer(json.dumps(outer).encode(), dtype=np.uint8)
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **host, **{_META_KEY: blob})
        atomic_write(path, write)
    else:
        raise ValueError(f"unknown checkpoint format for {str(path)!r}: use .safetensors or .npz")


def load_arrays(path, to_backend=True):
    """``(arrays, metadata)`` from a file written by ``save_arrays`` (or any safetensors file).

    The digest of a ministeer-written file is verified: any changed bit is a ``CheckpointError``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {str(path)!r}")
    try:
        if path.suffix == ".safetensors":
            arrays, outer = read_safetensors(path)
        elif path.suffix == ".npz":
            check_npz_sizes(path)  # before anything is decompressed
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files if k != _META_KEY}
                outer = json.loads(bytes(f[_META_KEY]).decode()) if _META_KEY in f.files else {}
            if not isinstance(outer, dict):
                raise CheckpointError(f"{str(path)!r}: metadata is not a JSON object")
            if not _has_marker(outer):  # ministeer 0.1: the metadata itself
                outer = {"json": json.dumps(outer)}
        else:
            raise CheckpointError(f"unknown checkpoint format {path.suffix!r}: use .safetensors or .npz")
        meta = _verified_metadata(outer, arrays, repr(str(path)))
    except CheckpointError:
        raise
    except Exception as err:  # truncated, corrupt or foreign files
        raise CheckpointError(f"could not read checkpoint {str(path)!r}: {type(err).__name__}: {err}") from err
    if to_backend:
        arrays = {k: from_numpy(v) for k, v in arrays.items()}
    return arrays, meta


def _has_marker(outer):
    """Written by this version? One flipped bit damages one key, and either survivor still says so;
    another tool's lone "sha256" key is not mistaken for ours."""
    return "ministeer_format" in outer or {"sha256", "json"} <= set(outer)


def _verified_metadata(outer, arrays, source):
    """The caller's metadata dict, after checking the digest when the file carries one."""
    if _has_marker(outer):
        if outer.get("ministeer_format") != _FORMAT or "sha256" not in outer or "json" not in outer:
            raise CheckpointError(f"{source}: damaged ministeer header (expected ministeer_format={_FORMAT!r}, "
                                  f"'json' and 'sha256'; found {sorted(outer)})")
        if digest(arrays, outer["json"]) != outer["sha256"]:
            raise CheckpointError(f"{source}: SHA-256 mismatch: the file's data or metadata changed after it "
                                  "was written (corrupt file)")
    meta = json.loads(outer.get("json", "{}"))
    if not isinstance(meta, dict):
        raise CheckpointError(f"{source}: metadata is not a JSON object")
    return meta


# ---------------------------------------------------------------- .npz: sizes before data
# A member's .npy header (shape, dtype) is read from its first bytes; the data is only
# decompressed once every header fits the bytes the file holds.

_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_MAX_INFLATION, _INFLATION_SLACK = 100, 1 << 24  # a deflated member expands at most 100x, plus 16 MiB


def check_npz_sizes(path):
    """Refuse an ``.npz`` whose members claim more bytes than they hold, from the headers alone.

    Each member's declared array size (shape x itemsize) must fit its uncompressed size, and
    a compressed member may expand at most ``_MAX_INFLATION`` times (plus ``_INFLATION_SLACK``):
    a decompression bomb is refused before it is decompressed. ministeer writes ``.npz``
    uncompressed, so its own files are never near the limit.
    """
    where = repr(str(path))
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename
            if info.file_size > _MAX_INFLATION * info.compress_size + _INFLATION_SLACK:
                raise CheckpointError(f"{where}: member {name!r} declares {info.file_size} bytes uncompressed from "
                                      f"{info.compress_size} compressed (more than {_MAX_INFLATION}x: a "
                                      "decompression bomb or a corrupt file)")
            with z.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version not in _NPY_HEADERS:
                    raise CheckpointError(f"{where}: member {name!r} has .npy format version {version}; "
                                          f"readable: {sorted(_NPY_HEADERS)}")
                shape, _, dtype = _NPY_HEADERS[version](f)
            declared = math.prod(shape) * dtype.itemsize
            if dtype.hasobject or min(shape, default=0) < 0 or declared > info.file_size:
                raise CheckpointError(f"{where}: member {name!r} declares shape {list(shape)} of {dtype} "
                                      f"({declared} bytes) but holds {info.file_size} bytes (corrupt file)")


# ---------------------------------------------------------------- a model: params + Config


_LISTED = 5  # an error names this many tensors of each kind, then counts the rest


def first_few(names):
    """``names`` for an error message: the first few, then how many more."""
    return f"{names[:_LISTED]}" + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def check_arrays(arrays, expected, source):
    """Raise a ``CheckpointError`` naming the missing, unexpected or mis-shaped tensors (a few of each, then a count)."""
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    wrong = [f"{n}: {list(arrays[n].shape)} in file, expected {list(expected[n])}"
             for n in sorted(set(arrays) & set(expected)) if tuple(arrays[n].shape) != tuple(expected[n])]
    more = f"; and {len(wrong) - _LISTED} more" if len(wrong) > _LISTED else ""
    problems = ([f"missing tensors: {first_few(missing)}"] if missing else []) + \
               ([f"unexpected tensors: {first_few(extra)}"] if extra else []) + \
               ([f"wrong shapes: {'; '.join(wrong[:_LISTED])}{more}"] if wrong else [])
    if problems:
        raise CheckpointError(f"{source} does not match the config: " + " | ".join(problems))


def check_layer_count(cfg, n_tensors, source, field="n_layers", shapes=param_shapes):
    """Refuse a config whose layers alone need more tensors than the file holds.

    Runs before ``shapes(cfg)`` lists every tensor, so a config claiming a million layers
    costs two one- and two-layer listings, not a million-layer one.
    """
    per_layer = len(shapes(cfg.replace(n_layers=2))) - len(shapes(cfg.replace(n_layers=1)))
    if cfg.n_layers * per_layer > n_tensors:
        raise CheckpointError(f"{source}: config {field}={cfg.n_layers} needs at least {cfg.n_layers * per_layer} "
                              f"tensors ({per_layer} per layer), but the file holds {n_tensors}")


def config_from_dict(d, source):
    """``Config(**d)`` with unknown keys and invalid values reported as ``CheckpointError``."""
    known = {f.name for f in fields(Config)}
    if not isinstance(d, dict) or set(d) - known:
        unknown = sorted(set(d) - known) if isinstance(d, dict) else d
        raise CheckpointError(f"{source}: config has unknown fields {unknown}; valid: {sorted(known)}")
    if known - set(d):  # a default would silently change the model: every field must be stored
        raise CheckpointError(f"{source}: config lacks fields {sorted(known - set(d))}")
    try:
        return Config(**d)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: invalid config: {err}") from None


def save_model(path, params, cfg):
    """Save a parameter tree and its ``Config`` (JSON metadata) to ``.safetensors`` or ``.npz``."""
    check_arrays(flatten(params), param_shapes(cfg), "params")
    save_arrays(path, flatten(params), metadata={"format": MODEL_FORMAT, "config": asdict(cfg)})


def load_model(path):
    """``(params, cfg)`` from a file written by ``save_model``; bitwise what was saved."""
    arrays, meta = load_arrays(path, to_backend=False)
    if "config" not in meta:
        raise CheckpointError(f"{str(path)!r} has no model config in its metadata: not written by save_model "
                              "(for a Hugging Face folder use load_pretrained)")
    cfg = config_from_dict(meta["config"], repr(str(path)))
    check_layer_count(cfg, len(arrays), repr(str(path)))
    check_arrays(arrays, param_shapes(cfg), repr(str(path)))
    wrong_dtype = sorted(n for n, a in arrays.items() if a.dtype != np.dtype(cfg.dtype))
    if wrong_dtype:
        raise CheckpointError(f"{str(path)!r}: tensors {wrong_dtype} are not {cfg.dtype} as the config says")
    return unflatten({k: from_numpy(v) for k, v in arrays.items()}), cfg

