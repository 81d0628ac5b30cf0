"""One training loop for every method: AdamW on any pytree of trainable arrays.

``fit`` knows nothing about models or adapters. You give it an ``objective(trainable,
batch) -> scalar`` that closes over whatever is frozen, the initial ``trainable``
pytree and a source of batches. Full fine-tuning passes the whole parameter dict;
LoRA, steering and ReFT pass only their adapter arrays; joint adaptation passes both.
Frozen arrays never reach the optimizer, so they come back bitwise unchanged.
"""
import itertools
import math
import numbers
import time
from dataclasses import dataclass, field

from autograd import value_and_grad

from .backend import raw, to_numpy
from .io.state import load_state, resolve_resume, save_state
from .tree import named_leaves, tree_leaves, tree_map, tree_with_leaves


class TrainingDiverged(FloatingPointError):
    """The loss, a gradient or the parameters became NaN or inf.

    ``.step`` is the step that went wrong; ``.last_good`` holds the newest trainables that
    are all finite *and* whose loss was seen to be finite (the parameters that step
    ``.good_step`` started from).
    """

    def __init__(self, message, step, last_good, good_step=None):
        super().__init__(message)
        self.step, self.last_good, self.good_step = step, last_good, good_step


@dataclass
class FitResult:
    params: dict  # the trained pytree (same structure as the input)
    losses: list = field(default_factory=list)  # one float per step
    seconds: float = 0.0


SCHEDULES = ("constant", "linear", "cosine")


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

# ---------------------------------------------------------------- checking what fit is given


def _is_real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_count(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= 0


def check_settings(steps, lr, weight_decay, betas, eps, schedule, warmup, clip, group_lr):
    """Raise a ``ValueError`` naming the first setting that would make AdamW meaningless."""
    def need(ok, what):
        if not ok:
            raise ValueError(what)
    need(_is_count(steps), f"steps must be an int >= 0, got {steps!r}")
    need(_is_count(warmup), f"warmup must be an int >= 0, got {warmup!r}")
    need(schedule in SCHEDULES, f"schedule={schedule!r}; expected one of {SCHEDULES}")
    for name, value in [("lr", lr)] + [(f"group_lr[{k!r}]", v) for k, v in (group_lr or {}).items()]:
        need(_is_real(value) and math.isfinite(value) and value >= 0, f"{name} must be a finite number >= 0, "
             f"got {value!r}")
    need(_is_real(weight_decay) and math.isfinite(weight_decay) and weight_decay >= 0,
         f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    need(isinstance(betas, (tuple, list)) and len(betas) == 2 and all(_is_real(b) and 0 <= b < 1 for b in betas),
         f"betas must be two numbers in [0, 1), got {betas!r} (beta = 1 never forgets and divides by 0)")
    need(_is_real(eps) and math.isfinite(eps) and eps >= 0, f"eps must be a finite number >= 0, got {eps!r}")
    need(clip is None or (_is_real(clip) and math.isfinite(clip) and clip > 0),
         f"clip must be None or a finite number > 0, got {clip!r} (clip <= 0 would reverse or stop every step)")


def _first_nonfinite(tree):
    """Name of the first leaf holding NaN or inf, or ``None``: one device->host copy."""
    named = named_leaves(tree)
    if not named:
        return None
    flags = to_numpy(raw.stack([raw.all(raw.isfinite(raw.asarray(a))) for _, a in named]))
    bad = [name or "trainable" for (name, _), ok in zip(named, flags) if not ok]  # "": a bare array
    return bad[0] if bad else None


def _batches(data, start):
    """Batches from step ``start`` on; a finished source just stops (``fit`` names the problem)."""
    if callable(data):  # the data order is a function of the step: resuming calls it at ``start``
        step = start
        while True:
            yield data(step)
            step += 1
    if iter(data) is data:  # a one-shot iterator cannot be cycled
        yield from itertools.islice(data, start, None)
        return
    skip = start
    while True:  # a re-iterable (a list) is cycled
        n = 0
        for batch in data:
            n += 1
            if skip:
                skip -= 1
                continue
            yield batch
        if n == 0:
            return


def _next_batch(source, step, steps):
    try:
        return next(source)
    except StopIteration:
        if step == 0:
            raise ValueError("data yielded no batch: it is empty") from None
        raise ValueError(f"data ran out after {step} batches, but steps={steps}: pass a function "
                         "step -> batch, a list (it is cycled), or enough batches") from None


def _diverged(loss, grads, step, trainable, previous, lr):
    """Raise ``TrainingDiverged`` naming the actual cause; ``previous`` = (params, step) whose loss was finite."""
    good, good_step = previous if previous is not None else (None, None)
    fallback = (good, good_step) if good is not None else (trainable, step)  # finite, loss not yet seen
    bad_param = _first_nonfinite(trainable)
    if bad_param is not None and good is not None:
        raise TrainingDiverged(f"the update of step {good_step} made {bad_param!r} non-finite (the step was "
                               f"too large for lr={lr}: lower it or clip gradients with fit(..., clip=1.0)); "
                               f".last_good holds the parameters before it", good_step, good, good_step)
    if bad_param is not None:
        raise TrainingDiverged(f"parameter {bad_param!r} is non-finite at step {step}, before any update "
                               "(from the initial values or the projection)", step, None)
    if not math.isfinite(loss):
        cause = ("with finite parameters at the first step: the objective or the batch produces it, not "
                 "the learning rate" if good is None else
                 "with finite parameters: check the batch, or lower the learning rate or clip gradients "
                 "(fit(..., clip=1.0))")
        raise TrainingDiverged(f"loss became {loss} at step {step} {cause}. Last good params are in "
                               ".last_good", step, *fallback)
    for name, g in named_leaves(grads):
        if not bool(raw.all(raw.isfinite(g))):
            why = ("the objective is numerically unstable at these parameters" if good is None else
                   f"the parameters grew too large (lower lr={lr} or clip gradients) or the objective is "
                   "numerically unstable")
            raise TrainingDiverged(f"gradient of {name!r} became non-finite at step {step} although the loss "
                                   f"{loss} is finite: {why}", step, *fallback)

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

    def __init__(self, trainable, lrs, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, moments=None, step=0):
        """``moments=(m, v)``, trees shaped like ``trainable``, and ``step`` (updates already
        done) continue a run from a checkpoint; by default both moments start at zero."""
        leaves = tree_leaves(trainable)
        self.shapes = [raw.shape(p) for p in leaves]
        small = {}  # dtype -> indices of its small leaves, in tree order
        for i, p in enumerate(leaves):
            if p.size < SEPARATE:
                small.setdefault(p.dtype, []).append(i)
        self.groups = list(small.values()) + [[i] for i, p in enumerate(leaves) if p.size >= SEPARATE]
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        if moments is None:
            self.m = [raw.zeros(sum(leaves[i].size for i in idx), dtype=leaves[idx[0]].dtype) for idx in self.groups]
            self.v = [raw.zeros_like(buf) for buf in self.m]
        else:  # concatenate copies, so the update never writes into the caller's arrays
            m, v = (tree_leaves(t) for t in moments)
            self.m = [raw.concatenate([raw.ravel(m[i]) for i in idx]) for idx in self.groups]
            self.v = [raw.concatenate([raw.ravel(v[i]) for i in idx]) for idx in self.groups]
        lr_leaves = tree_leaves(lrs)
        self.lrs = [[lr_leaves[i] for i in idx] for idx in self.groups]
        self.step_count = step

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
            self._unpack(self._update(p, g, m, v, c1, c2, self._lr(k, factor)), idx, new)
        return tree_with_leaves(trainable, new)

    def moments(self, like):
        """(m, v) as trees shaped like ``like`` (views of the buffers), e.g. for a checkpoint."""
        trees = []
        for buffers in (self.m, self.v):
            out = [None] * len(self.shapes)
            for buf, idx in zip(buffers, self.groups):
                self._unpack(buf, idx, out)
            trees.append(tree_with_leaves(like, out))
        return tuple(trees)

    def _unpack(self, flat, idx, out):
        """Write the leaves of group ``idx`` (views into ``flat``) into the list ``out``."""
        offset = 0
        for i in idx:
            n = math.prod(self.shapes[i])
            out[i] = flat[offset:offset + n].reshape(self.shapes[i])
            offset += n

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


# ---------------------------------------------------------------- the loop


def fit(objective, trainable, data, *, steps, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8,
        schedule="constant", warmup=0, clip=None, group_lr=None, project=None, progress=False,
        callback=None, checkpoint_dir=None, checkpoint_every=None, keep=2, resume=None, run=None,
        pass_step=False):
    """Minimize ``objective(trainable, batch)`` with AdamW for ``steps`` steps.

    data      -- a function ``step -> batch`` (deterministic given its own seed) or an
                 iterable of batches: a list is cycled, a one-shot iterator must last ``steps``.
    lr, schedule, warmup -- peak learning rate and its schedule (see ``learning_rate``).
    weight_decay -- decoupled (AdamW) decay, applied to every trainable leaf.
    clip      -- clip the global gradient norm to this value.
    group_lr  -- ``{top-level key: lr}``: separate learning rates, e.g. for joint adaptation.
    project   -- ``(trainable, step) -> trainable`` applied before every step, for hard
                 constraints such as the joint-orth projection.
    progress  -- show a tqdm bar with the loss (if tqdm is installed).
    callback  -- ``(step, loss, trainable)`` called after every step.
    checkpoint_dir, checkpoint_every, keep -- write a training-state checkpoint to
                 ``checkpoint_dir/step-<n>.safetensors`` every ``checkpoint_every`` steps and
                 after the last one, keeping the newest ``keep`` (``ministeer.io.state``).
    resume    -- a checkpoint file, or a folder (its newest), to continue from; ``True``: the
                 newest in ``checkpoint_dir`` if there is one, else start afresh. The
                 continued run is bitwise the uninterrupted one.
    run       -- JSON-able description of what is trained (method spec, seeds), stored in
                 each checkpoint; resuming under a different one is refused.
    pass_step -- call ``objective(trainable, batch, step)``: for an objective whose random
                 draws or penalty schedule follow the optimizer step (``adapters.objective``),
                 so a resumed run draws what the uninterrupted one drew at each step.
    Raises ``ValueError`` for meaningless settings or data, and ``TrainingDiverged`` (with
    the step, the cause and the last finite params) on NaN/inf.
    """
    check_settings(steps, lr, weight_decay, betas, eps, schedule, warmup, clip, group_lr)
    if checkpoint_every is not None and not (_is_count(checkpoint_every) and checkpoint_every > 0):
        raise ValueError(f"checkpoint_every must be an int >= 1, got {checkpoint_every!r}")
    if not (_is_count(keep) and keep > 0):
        raise ValueError(f"keep must be an int >= 1, got {keep!r}")
    if checkpoint_every is not None and checkpoint_dir is None:
        raise ValueError("checkpoint_every needs checkpoint_dir= (where to write)")
    settings = dict(steps=steps, lr=lr, weight_decay=weight_decay, betas=list(betas), eps=eps, schedule=schedule,
                    warmup=warmup, clip=clip, group_lr=group_lr)
    bad = _first_nonfinite(trainable)
    if bad is not None:
        raise ValueError(f"the initial trainable {bad!r} holds NaN or inf: nothing can be learned from it")
    value_and_grad_fn = value_and_grad(objective)
    lrs = _lr_tree(trainable, lr, group_lr)
    start, losses, moments = 0, [], None
    resume_from = resolve_resume(resume, checkpoint_dir)
    if resume_from is not None:
        start, trainable, m, v, losses = load_state(resume_from, trainable, settings, run)
        moments = (m, v)
    optimizer = AdamW(trainable, lrs, betas, eps, weight_decay, moments=moments, step=start)
    save = (lambda n: save_state(checkpoint_dir, n, trainable, *optimizer.moments(trainable), result.losses,
                                 settings, run, keep)) if checkpoint_dir is not None else None
    bar = _progress_bar(steps, start) if progress else None
    result, clock, source = FitResult(trainable, losses), time.perf_counter(), _batches(data, start)
    previous = None  # (params, step) of the newest step whose loss and gradients were finite
    for step in range(start, steps):
        if project is not None:
            trainable = project(trainable, step)
        batch = _next_batch(source, step, steps)
        loss, grads = value_and_grad_fn(trainable, batch, step) if pass_step else value_and_grad_fn(trainable, batch)
        loss, finite = _read_back(loss, grads)
        if not finite:
            _diverged(loss, grads, step, trainable, previous, lr)  # names the cause and raises
        previous = (trainable, step)
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
        if save is not None and checkpoint_every is not None and (step + 1) % checkpoint_every == 0 \
                and step + 1 < steps:
            save(step + 1)
    if previous is not None and _first_nonfinite(trainable) is not None:  # the last update is checked too
        _diverged(float("nan"), None, steps, trainable, previous, lr)
    if save is not None and steps > start:
        save(steps)
    if bar is not None:
        bar.close()
    if project is not None:  # so the returned params satisfy the constraint too
        trainable = project(trainable, steps)
    result.params, result.seconds = trainable, time.perf_counter() - clock
    return result


def _progress_bar(steps, start=0):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=steps, initial=start, leave=False, dynamic_ncols=True)
