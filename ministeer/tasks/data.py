"""Splits, padded batches with completion masks, and exact-match accuracy.

``examples(task, split, n, seed, fmt)`` draws ``n`` distinct problems whose key hashes
into ``split`` (train 80%, val 10%, test 10%, by SHA-256 of the key), so the three
splits are disjoint for every seed and format. A key may cover several problems (a
Winogrande fact and its option-swapped twin): they are distinct items of one split. A batch is a dict::

    {"tokens": int [B, T], "mask": float [B, T]}

right-padded with ``<pad>``, where ``mask[b, t] = 1`` marks a completion token
(``<eos>`` included). ``model.loss_fn(params, tokens, cfg, mask=mask)`` shifts the
targets itself, so the loss is on predicting exactly the completion.
"""
import hashlib
from dataclasses import dataclass

import numpy as np  # host side: data is built on the host, then handed to the model

from .generators import BENCHMARK, get_task
from .tokenizer import TOKENIZER

SPLITS = {"train": range(0, 8), "val": range(8, 9), "test": range(9, 10)}  # tenths of the hash space


@dataclass(frozen=True)
class Example:
    task: str
    fmt: int
    prompt: str
    completion: str
    key: str  # the split key (format-free identity)
    label: int = None  # what a linear probe reads (``generators.*.label``)


def split_of(key):
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 10
    return next(name for name, tenths in SPLITS.items() if bucket in tenths)


def examples(task, split, n, seed=0, fmt=BENCHMARK, patience=20000):
    """``n`` distinct examples of ``task`` (a name) in ``split``, deterministic in ``seed``;
    in the benchmark pair unless ``fmt`` says otherwise (``generators.FORMATS``).

    Raises ``ValueError`` when ``patience`` draws in a row bring no new example, i.e. the
    split holds fewer than ``n`` distinct problems.
    """
    if split not in SPLITS:
        raise KeyError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    gen = get_task(task)
    if not 0 <= fmt < gen.n_formats:
        raise ValueError(f"task {task!r} has formats 0..{gen.n_formats - 1}, got fmt={fmt}")
    # the seed is mixed with the task and split names so that each stream is independent
    rng = np.random.default_rng([seed, *hashlib.sha256(f"{task}/{split}".encode()).digest()[:4]])
    out, seen, misses = [], set(), 0
    while len(out) < n:
        problem = gen.sample(rng)
        key = gen.key(problem)  # the split key; twins (e.g. option-swapped) share it and are distinct items
        if repr(problem) in seen or split_of(key) != split:
            misses += 1
            if misses > patience:
                raise ValueError(f"could only draw {len(out)} distinct {split} examples of {task!r}, asked for {n}")
            continue
        misses = 0
        seen.add(repr(problem))
        prompt, completion = gen.render(problem, fmt)
        out.append(Example(task, fmt, prompt, completion, key, gen.label(problem)))
    return out


def encode(batch_examples, tokenizer=TOKENIZER, length=None):
    """Right-padded ``{"tokens", "mask"}`` for a list of examples (length = longest, or ``length``)."""
    rows = [tokenizer.encode_example(e.prompt, e.completion) for e in batch_examples]
    T = max(len(ids) for ids, _ in rows) if length is None else length
    if any(len(ids) > T for ids, _ in rows):
        raise ValueError(f"an example has {max(len(i) for i, _ in rows)} tokens, more than length={T}")
    tokens = np.full((len(rows), T), tokenizer.pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), T))
    for b, (ids, n_prompt) in enumerate(rows):
        tokens[b, :len(ids)] = ids
        mask[b, n_prompt:len(ids)] = 1.0
    return {"tokens": tokens, "mask": mask}


def batch_sampler(pool, batch_size, seed=0, tokenizer=TOKENIZER):
    """``step -> batch``: a fresh permutation of ``pool`` per epoch, deterministic in ``seed``."""
    if not pool:
        raise ValueError("batch_sampler needs a non-empty pool of examples")
    per_epoch = max(1, len(pool) // batch_size)
    orders = {}

    def data(step):
        epoch, i = divmod(step, per_epoch)
        if epoch not in orders:
            orders.clear()
            orders[epoch] = np.random.default_rng([seed, epoch]).permutation(len(pool))
        idx = orders[epoch][i * batch_size:(i + 1) * batch_size]
        if len(idx) < batch_size:  # pool smaller than a batch: sample with replacement
            idx = np.random.default_rng([seed, epoch, i]).integers(0, len(pool), batch_size)
        return encode([pool[j] for j in idx], tokenizer)
    return data
