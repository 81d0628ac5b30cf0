"""Training-state checkpoints: everything ``fit`` needs to continue a run bitwise.

A checkpoint after ``n`` finished steps holds

* the trainable arrays after ``n`` updates, and AdamW's two moment estimates ``m``, ``v``;
* ``n`` itself: it fixes the schedule position, Adam's bias correction and the data order
  (a ``step -> batch`` function is called at ``n, n+1, ...``; an iterable skips ``n`` batches);
* the losses so far, the optimizer settings, and ``run``, the caller's JSON description of
  what is trained (a method spec, seeds): resuming with different ones is refused.

It is one ``.safetensors`` file written by ``arrays.save_arrays``: atomic, fsynced, pickle-free,
with a SHA-256 verified on load. Files are named ``step-00000100.safetensors`` in a folder;
the newest ``keep`` are kept. What resume promises: docs/guarantees.md.
"""
import json
import re
from pathlib import Path

from ..tree import leaf_paths, tree_with_leaves
from .arrays import CheckpointError, load_arrays, save_arrays

FORMAT = "ministeer.train_state/1"
_NAME = re.compile(r"step-(\d{8})\.safetensors")


def checkpoint_path(folder, step):
    return Path(folder) / f"step-{step:08d}.safetensors"


def list_checkpoints(folder):
    """``[(step, path), ...]`` of the training-state checkpoints in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.fullmatch(p.name))]
    return sorted(found)


def latest_checkpoint(folder):
    """The newest checkpoint in ``folder``, or ``None`` if it holds none."""
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def _structure(tree):
    """``[[path, shape, dtype], ...]``: what a checkpoint must match to be restored into ``tree``."""
    return [[list(p), list(leaf.shape), str(leaf.dtype)] for p, leaf in leaf_paths(tree)]


def save_state(folder, step, trainable, m, v, losses, settings, run, keep):
    """Write the checkpoint after ``step`` finished steps; delete all but the newest ``keep``."""
    arrays = {}
    for part, tree in (("params", trainable), ("m", m), ("v", v)):
        arrays.update({f"{part}.{i:06d}": leaf for i, (_, leaf) in enumerate(leaf_paths(tree))})
    meta = {"format": FORMAT, "step": step, "losses": losses, "settings": settings, "run": run,
            "structure": _structure(trainable)}
    path = checkpoint_path(folder, step)
    save_arrays(path, arrays, meta)
    for _, old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _json_form(x):
    return json.loads(json.dumps(x))  # tuples -> lists, as after a round trip through a file


def load_state(path, trainable, settings, run):
    """``(step, trainable, m, v, losses)`` from ``path``, restored into the structure of ``trainable``.

    Refuses (``CheckpointError``) a file of another kind, one written for a different
    trainable tree, or with different optimizer settings or ``run``: resuming it would not
    continue the same run.
    """
    arrays, meta = load_arrays(path)
    where = repr(str(path))
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a training-state checkpoint (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    ours, theirs = _structure(trainable), meta["structure"]
    if ours != theirs:
        first = next((f"{a} here, {b} in the file" for a, b in zip(ours, theirs) if a != b),
                     f"{len(ours)} leaves here, {len(theirs)} in the file")
        raise CheckpointError(f"{where} was written for a different trainable tree ([path, shape, dtype]: {first})")
    for what, expected, stored in (("optimizer settings", settings, meta["settings"]), ("run", run, meta["run"])):
        expected = _json_form(expected)
        if expected != stored:
            keys = sorted(k for k in set(expected or {}) | set(stored or {})
                          if (expected or {}).get(k) != (stored or {}).get(k)) \
                if isinstance(expected, dict) and isinstance(stored, dict) else []
            raise CheckpointError(f"{where} belongs to another run: {what} differ"
                                  + (f" in {keys}: file {[stored.get(k) for k in keys]}, "
                                     f"now {[expected.get(k) for k in keys]}" if keys else
                                     f": file {stored!r}, now {expected!r}"))
    parts = {}
    for part in ("params", "m", "v"):
        parts[part] = tree_with_leaves(trainable, [arrays[f"{part}.{i:06d}"] for i in range(len(ours))])
    return meta["step"], parts["params"], parts["m"], parts["v"], list(meta["losses"])


def resolve_resume(resume, checkpoint_dir):
    """The file to resume from: ``resume`` itself, the newest in a folder, or (``True``)
    the newest in ``checkpoint_dir`` if there is one."""
    if resume is None or resume is False:
        return None
    if resume is True:
        if checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir= (the folder to look in)")
        return latest_checkpoint(checkpoint_dir)
    resume = Path(resume)
    if resume.is_dir():
        found = latest_checkpoint(resume)
        if found is None:
            raise CheckpointError(f"no training-state checkpoint (step-*.safetensors) in {str(resume)!r}")
        return found
    if not resume.is_file():
        raise CheckpointError(f"no checkpoint file at {str(resume)!r}")
    return resume
