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


# ---------------------------------------------------------------- AdamW
# m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
# p <- p - lr * (m / c1 / (sqrt(v / c2) + eps) + wd * p),  c_i = 1 - b_i^step   (train.1)
# The update is elementwise, so the small leaves of one dtype run as one flat buffer: ~10
# ufunc calls per step instead of ~10 per leaf (LoRA and steering have 100+ tiny leaves).
# A leaf of SEPARATE elements or more keeps a buffer of its own: packing it would cost a
# copy, and a buffer larger than the cache makes each of the ~10 passes go to memory
# (measured in docs/performance.md, "The optimizer"). Every element sees the same
# operations in the same order as the per-leaf form (``adamw_reference``), so the results
# are bitwise equal (tests/test_adamw.py).
SEPARATE = 1 << 15


def adamw_reference(p, g, m, v, step, lr, b1, b2, eps, weight_decay):
    """(train.1) on one array: the readable per-leaf form the flat update must equal."""
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    c1, c2 = 1.0 - b1 ** step, 1.0 - b2 ** step
    return p - lr * ((m / c1) / (raw.sqrt(v / c2) + eps) + weight_decay * p), m, v


class AdamW:
    """The optimizer state of ``fit``: first and second moments, a flat buffer per group of leaves."""

    def __init__(self, trainable, lrs, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        leaves = tree_leaves(trainable)
        self.shapes = [raw.shape(p) for p in leaves]
        small = {}  # dtype -> indices of its small leaves, in tree order
        for i, p in enumerate(leaves):
            if p.size < SEPARATE:
                small.setdefault(p.dtype, []).append(i)
        self.groups = list(small.values()) + [[i] for i, p in enumerate(leaves) if p.size >= SEPARATE]
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.m = [raw.zeros(sum(leaves[i].size for i in idx), dtype=leaves[idx[0]].dtype) for idx in self.groups]
        self.v = [raw.zeros_like(buf) for buf in self.m]
        lr_leaves = tree_leaves(lrs)
        self.lrs = [[lr_leaves[i] for i in idx] for idx in self.groups]
        self.step_count = 0

    @staticmethod
    def _pack(leaves, idx):
        if len(idx) == 1:  # a view: no copy
            return raw.ravel(leaves[idx[0]])
        return raw.concatenate([raw.ravel(leaves[i]) for i in idx])

    def _lr(self, k, factor):
        """The step size of every element of group k: a scalar when the group shares one lr."""
        lrs, idx, dt = self.lrs[k], self.groups[k], self.m[k].dtype
        if all(lr == lrs[0] for lr in lrs):
            return lrs[0] * factor
        sizes = [math.prod(self.shapes[i]) for i in idx]
        return raw.concatenate([raw.full(n, lr * factor, dtype=dt) for n, lr in zip(sizes, lrs)])

    def update(self, trainable, grads, factor=1.0):
        """One AdamW step; returns new trainables (fresh arrays: the inputs are never modified)."""
        self.step_count += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1 ** self.step_count, 1.0 - b2 ** self.step_count
        params, g_leaves = tree_leaves(trainable), tree_leaves(grads)
        new = [None] * len(params)
        for k, idx in enumerate(self.groups):
            p, g, m, v = self._pack(params, idx), self._pack(g_leaves, idx), self.m[k], self.v[k]
            p = self._update(p, g, m, v, c1, c2, self._lr(k, factor))
            offset = 0
            for i in idx:
                n = math.prod(self.shapes[i])
                new[i] = p[offset:offset + n].reshape(self.shapes[i])
                offset += n
        leaves = iter(new)
        return tree_map(lambda _: next(leaves), trainable)

    def _update(self, p, g, m, v, c1, c2, lr):
        """(train.1) in place on our own buffers m, v, operation for operation as adamw_reference."""
        b1, b2 = self.betas
        m *= b1
        m += (1.0 - b1) * g
        g2 = (1.0 - b2) * g
        g2 *= g
        v *= b2
        v += g2
        step = raw.sqrt(raw.divide(v, c2, out=g2), out=g2)
        step += self.eps
        step = raw.divide(m / c1, step, out=step)
        step += self.weight_decay * p
        step *= lr
        return raw.subtract(p, step, out=step)  # fresh: the caller may keep the old params


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
    optimizer = AdamW(trainable, lrs, betas, eps, weight_decay)
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
        trainable = optimizer.update(trainable, grads, factor)
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
