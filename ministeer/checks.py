"""Input checks for ``model.forward`` and ``model.loss_fn``: plumbing, kept out of ``model.py``.

Bad input gets a clear error before any arithmetic: a parameter tree that does not fit the
config (``check_tree``), token ids of the wrong type, shape or range (``check_tokens``), and
targets or masks that would silently change the loss (``check_batch``). Each reads at most
one small array back from the device. ``cfg`` is any object with ``vocab_size`` and ``n_ctx``.
Tests: tests/test_model.py, tests/test_reliability.py.
"""
import numpy as np  # host side: lists given as tokens
from autograd.tracer import getval

from .backend import as_backend_array, raw, to_numpy


def check_tree(params, expected):
    """Raise a ``ValueError`` naming the first tensor of ``params`` that is missing, unexpected or
    mis-shaped against ``expected`` (``{path tuple: shape}``, in layout order). A walk over ~10
    leaves per layer and one dict comparison: no array is read."""
    found = {}
    _leaf_shapes(params, (), found)
    if found == expected:
        return
    name = lambda path: ".".join(map(str, path))
    for path, shape in expected.items():  # layout order: the first problem a forward pass would meet
        if path not in found:
            raise ValueError(f"params do not fit the config: missing {name(path)!r} (expected shape "
                             f"{list(shape)}); {len(found)} tensors given, {len(expected)} expected")
        if found[path] != shape:
            raise ValueError(f"params do not fit the config: {name(path)!r} has shape {list(found[path])}, "
                             f"the config needs {list(shape)}")
    extra = [name(p) for p in found if p not in expected]
    raise ValueError(f"params do not fit the config: unexpected tensors {extra[:5]}"
                     + (f" and {len(extra) - 5} more" if len(extra) > 5 else ""))


def _leaf_shapes(node, path, out):
    node = getval(node)  # autograd boxes a differentiated dict or list as a whole
    if isinstance(node, dict):
        for key, sub in node.items():
            _leaf_shapes(sub, path + (key,), out)
    elif isinstance(node, (list, tuple)):
        for i, sub in enumerate(node):
            _leaf_shapes(sub, path + (i,), out)
    else:
        out[path] = tuple(getattr(node, "shape", ()))  # host-side bookkeeping, not traced


def check_tokens(tokens, cfg):
    """Validate token ids and put them on the active backend as [B, T] integers."""
    tokens = _token_array(tokens, cfg)
    low, high = to_numpy(raw.stack([raw.min(tokens), raw.max(tokens)]))  # one explicit device->host copy
    _check_range("token ids", low, high, cfg)
    return tokens


def _token_array(tokens, cfg):
    """Tokens as [B, T] integers on the backend; shape and dtype checked, values not (no sync)."""
    tokens = as_backend_array(_host_array(tokens, "tokens") if isinstance(tokens, (list, tuple)) else tokens)
    if tokens.dtype.kind not in "iu":
        raise TypeError(f"tokens must be integers, got dtype {tokens.dtype}")
    if tokens.ndim == 1:
        tokens = tokens[None, :]
    if tokens.ndim != 2 or 0 in tokens.shape:
        raise ValueError(f"tokens must have shape [batch, pos] with batch, pos >= 1, got {tokens.shape}")
    if tokens.shape[1] > cfg.n_ctx:
        raise ValueError(f"sequence length {tokens.shape[1]} exceeds the context length n_ctx={cfg.n_ctx}")
    return tokens


def _host_array(x, what):
    try:
        return np.asarray(x)
    except ValueError:  # nested lists of unequal lengths
        raise ValueError(f"{what} must be a rectangular array [batch, pos]; rows of unequal length given") from None


def _as_rows(x, what, like):
    """``x`` on the backend as [B, T]; a 1-D ``x`` is one row (as for tokens)."""
    x = as_backend_array(_host_array(x, what) if isinstance(x, (list, tuple)) else x)
    x = x[None, :] if x.ndim == 1 else x
    if x.shape != like:
        raise ValueError(f"{what} has shape {tuple(x.shape)}, expected {tuple(like)} (the shape of tokens)")
    return x


def check_batch(tokens, cfg, targets=None, mask=None):
    """``(inputs [B, T], targets [B, T], weights [B, T] or None)``, validated with one device->host copy.

    Targets outside [0, vocab_size) would drop out of the loss (or read another row); a mask of
    another shape would broadcast into a sum; an all-zero mask would give 0/0.
    """
    tokens = _token_array(tokens, cfg)
    if targets is None:
        if tokens.shape[1] < 2:
            raise ValueError(f"next-token loss needs at least 2 tokens per row, got shape {tuple(tokens.shape)}")
        mask = None if mask is None else _as_rows(mask, "mask", tokens.shape)[:, 1:]
        tokens, targets = tokens[:, :-1], tokens[:, 1:]
    else:
        targets = _as_rows(targets, "targets", tokens.shape)
        if targets.dtype.kind not in "iu":
            raise TypeError(f"targets must be integers, got dtype {targets.dtype}")
        mask = None if mask is None else _as_rows(mask, "mask", tokens.shape)
    if mask is not None and mask.dtype.kind not in "biuf":
        raise TypeError(f"mask must be bool or numeric, got dtype {mask.dtype}")
    stats = [raw.min(tokens), raw.max(tokens), raw.min(targets), raw.max(targets)]
    if mask is not None:
        m = mask.astype(raw.float64)
        stats += [raw.min(m), raw.sum(m), raw.all(raw.isfinite(m))]
    stats = to_numpy(raw.stack([raw.asarray(x, dtype=raw.float64) for x in stats]))  # one copy to the host
    _check_range("token ids", stats[0], stats[1], cfg)
    _check_range("targets", stats[2], stats[3], cfg)
    if mask is not None:
        if not stats[6] or stats[4] < 0:
            raise ValueError(f"mask values must be finite and >= 0, got min {stats[4]}")
        if stats[5] == 0:
            raise ValueError("mask selects no position (all zeros after the shift): the mean loss would be 0/0")
    return tokens, targets, mask


def _check_range(what, low, high, cfg):
    if low < 0 or high >= cfg.vocab_size:
        raise ValueError(f"{what} must lie in [0, {cfg.vocab_size}), got min {int(low)}, max {int(high)}")
