"""Which token positions an activation adapter edits: all, the last, pyreft's ``f<k>+l<k>``, or a list/mask.

``check_positions`` validates a spec's ``positions`` field when the adapter is built;
``position_mask`` turns it into a float mask [B, T] at call time (1 where the adapter edits).
Tests: tests/test_adapters_core.py.
"""
import numpy as np  # host side only: validating specs

from ..backend import as_backend_array, raw


def check_positions(positions):
    """Validate a positions spec; returns it in JSON form (a bool mask becomes a list)."""
    if positions is None or isinstance(positions, str):
        if positions not in (None, "last") and parse_first_last(positions) == (0, 0):
            raise ValueError(f"positions={positions!r} selects no position (f0 / l0 edit nothing); "
                             "use e.g. 'f1+l1', or None for every position")
        return positions
    arr = np.asarray(positions)
    if arr.dtype == bool and arr.ndim in (1, 2):
        return arr.tolist()
    if arr.dtype.kind in "iu" and arr.ndim == 1 and arr.size:
        return [int(i) for i in arr]
    raise ValueError(f"positions={positions!r}; expected None (all), 'last', 'f<k>+l<k>' (pyreft), "
                     "a list of ints, or a bool mask [T] or [B, T]")


def parse_first_last(text):
    """pyreft's position notation: ``"f1+l1"`` -> (1, 1), ``"l3"`` -> (0, 3), ``"f7"`` -> (7, 0)."""
    first = last = 0
    for part in text.split("+"):
        if len(part) < 2 or part[0] not in "fl" or not part[1:].isdigit():
            raise ValueError(f"positions={text!r}; expected pyreft notation like 'f1+l1', 'l1' or 'f7+l7'")
        first, last = (int(part[1:]), last) if part[0] == "f" else (first, int(part[1:]))
    return first, last


def position_mask(positions, batch, n_pos, prompt_lengths=None):
    """Float mask [B, T] (1 where the adapter edits) built with ``raw``; ``None`` means every position.

    ``"f<k>+l<k>"`` counts from the ends of the *prompt* when ``prompt_lengths`` ([B] or int)
    is given (pyreft's semantics), else from the ends of the sequence. A bool mask may be longer
    than the sequence (it is cut), a list of ints may not.
    """
    if positions is None:
        return None
    t = raw.arange(n_pos)[None, :]  # [1, T]
    if isinstance(positions, str) and positions == "last":
        return raw.broadcast_to(1.0 * (t == n_pos - 1), (batch, n_pos))
    if isinstance(positions, str):
        first, last = parse_first_last(positions)
        P = raw.asarray(n_pos if prompt_lengths is None else prompt_lengths).reshape(-1, 1)  # [B or 1, 1]
        P = raw.minimum(P, n_pos)
        chosen = (t < raw.minimum(first, P)) | ((t >= P - last) & (t < P))
        return raw.broadcast_to(1.0 * chosen, (batch, n_pos))
    arr = np.asarray(positions)
    if arr.dtype == bool:  # longer masks are cut: loss_fn feeds tokens[:, :-1], generation grows T
        if arr.shape[-1] < n_pos or (arr.ndim == 2 and arr.shape[0] != batch):
            raise ValueError(f"position mask has shape {arr.shape}; this input needs [{n_pos}] or [{batch}, {n_pos}]")
        return raw.broadcast_to(1.0 * as_backend_array(arr[..., :n_pos]), (batch, n_pos))
    if arr.min() < -n_pos or arr.max() >= n_pos:
        raise ValueError(f"positions {arr.tolist()} out of range for a sequence of {n_pos} tokens")
    hit = (t == as_backend_array(arr % n_pos)[:, None]).any(axis=0)  # [T]
    return raw.broadcast_to(1.0 * hit, (batch, n_pos))


def prompt_lengths_from_mask(mask):
    """Index of the first supervised (completion) token in each row; rows without one get T."""
    m = as_backend_array(mask) > 0
    return raw.where(m.any(axis=1), raw.argmax(m, axis=1), m.shape[1])
