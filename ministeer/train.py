"""One training loop for every method: AdamW on any pytree of trainable arrays.

``fit`` knows nothing about models or adapters. You give it an ``objective(trainable,
batch) -> scalar`` that closes over whatever is frozen, the initial ``trainable``
pytree and a source of batches. Full fine-tuning passes the whole parameter dict;
LoRA, steering and ReFT pass only their adapter arrays; joint adaptation passes both.
Frozen arrays never reach the optimizer, so they come back bitwise unchanged.
"""
import math
import time
from dataclasses import dataclass, field

from autograd import value_and_grad

from .backend import raw, to_numpy
from .tree import named_leaves, tree_leaves, tree_map


class TrainingDiverged(FloatingPointError):
    """The loss or a gradient became NaN or inf. ``.last_good`` holds the last finite trainables."""

    def __init__(self, message, step, last_good):
        super().__init__(message)
        self.step, self.last_good = step, last_good


@dataclass
class FitResult:
    params: dict  # the trained pytree (same structure as the input)
    losses: list = field(default_factory=list)  # one float per step
    seconds: float = 0.0


def learning_rate(step, steps, lr, schedule="constant", warmup=0):
    """lr at ``step`` (0-based): linear warmup, then constant, linear or cosine decay to 0."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    if schedule == "constant":
        return lr
    if schedule == "linear":
        return lr * (1.0 - progress)
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"schedule={schedule!r}; expected 'constant', 'linear' or 'cosine'")


def _norm_on_device(grads):
    return raw.sqrt(sum(raw.sum(g * g) for g in tree_leaves(grads)))


def global_norm(grads):
    return float(to_numpy(_norm_on_device(grads)))


def _read_back(loss, grads):
    """(loss, all finite?) as host values with one device->host copy: the step's only sync."""
    values = [raw.asarray(loss, dtype=raw.float64)]
    values += [raw.all(raw.isfinite(g)).astype(raw.float64) for g in tree_leaves(grads)]
    host = to_numpy(raw.stack(values))
    return float(host[0]), math.isfinite(host[0]) and bool(host[1:].all())


def _lr_tree(trainable, lr, group_lr):
    """Per-leaf learning rates: ``group_lr`` maps a top-level key of ``trainable`` to its lr."""
    unknown = set(group_lr or {}) - set(trainable if isinstance(trainable, dict) else {})
    if unknown:
        raise KeyError(f"group_lr names {sorted(unknown)}, not top-level keys of trainable: "
                       f"{sorted(trainable) if isinstance(trainable, dict) else '(not a dict)'}")
    if not group_lr:
        return tree_map(lambda _: lr, trainable)
    return {k: tree_map(lambda _: group_lr.get(k, lr), v) for k, v in trainable.items()}


def _batches(data):
    if callable(data):
        step = 0
        while True:
            yield data(step)
            step += 1
    while True:  # a finite iterable is cycled
        yield from data


def _check_finite(loss, grads, step, last_good):
    if not math.isfinite(loss):
        raise TrainingDiverged(f"loss became {loss} at step {step}; lower the learning rate or "
                               "clip gradients (fit(..., clip=1.0)). Last finite params are in .last_good",
                               step, last_good)
    for name, g in named_leaves(grads):
        if not bool(raw.all(raw.isfinite(g))):
            raise TrainingDiverged(f"gradient of {name!r} became non-finite at step {step}", step, last_good)


def fit(objective, trainable, data, *, steps, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8,
        schedule="constant", warmup=0, clip=None, group_lr=None, project=None, progress=False,
        callback=None):
    """Minimize ``objective(trainable, batch)`` with AdamW for ``steps`` steps.

    data      -- a function ``step -> batch`` (deterministic given its own seed) or an
                 iterable of batches, cycled.
    lr, schedule, warmup -- peak learning rate and its schedule (see ``learning_rate``).
    weight_decay -- decoupled (AdamW) decay, applied to every trainable leaf.
    clip      -- clip the global gradient norm to this value.
    group_lr  -- ``{top-level key: lr}``: separate learning rates, e.g. for joint adaptation.
    project   -- ``(trainable, step) -> trainable`` applied before every step, for hard
                 constraints such as the joint-orth projection.
    progress  -- show a tqdm bar with the loss (if tqdm is installed).
    callback  -- ``(step, loss, trainable)`` called after every step.
    Raises ``TrainingDiverged`` (with the step and the last finite params) on NaN/inf.
    """
    value_and_grad_fn = value_and_grad(objective)
    lrs = _lr_tree(trainable, lr, group_lr)
    m = tree_map(raw.zeros_like, trainable)
    v = tree_map(raw.zeros_like, trainable)
    b1, b2 = betas
    bar = _progress_bar(steps) if progress else None
    result, start, source = FitResult(trainable), time.perf_counter(), _batches(data)
    for step in range(steps):
        if project is not None:
            trainable = project(trainable, step)
        loss, grads = value_and_grad_fn(trainable, next(source))
        loss, finite = _read_back(loss, grads)
        if not finite:
            _check_finite(loss, grads, step, trainable)  # names the culprit and raises
        if clip is not None:  # the scale stays on the device
            scale = raw.minimum(1.0, clip / (_norm_on_device(grads) + 1e-12))
            grads = tree_map(lambda g: g * scale.astype(g.dtype), grads)
        factor = learning_rate(step, steps, 1.0, schedule, warmup)
        m = tree_map(lambda m_, g: b1 * m_ + (1.0 - b1) * g, m, grads)
        v = tree_map(lambda v_, g: b2 * v_ + (1.0 - b2) * g * g, v, grads)
        c1, c2 = 1.0 - b1 ** (step + 1), 1.0 - b2 ** (step + 1)
        trainable = tree_map(
            lambda p, m_, v_, lr_: p - (lr_ * factor) * ((m_ / c1) / (raw.sqrt(v_ / c2) + eps)
                                                        + weight_decay * p),
            trainable, m, v, lrs)
        result.losses.append(loss)
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update(1)
        if callback is not None:
            callback(step, loss, trainable)
    if bar is not None:
        bar.close()
    if project is not None:  # so the returned params satisfy the constraint too
        trainable = project(trainable, steps)
    result.params, result.seconds = trainable, time.perf_counter() - start
    return result


def _progress_bar(steps):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=steps, leave=False, dynamic_ncols=True)
