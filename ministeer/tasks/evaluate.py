"""Greedy decoding and exact-match accuracy, batched, without a KV cache.

Every method is scored the same way, as in the paper's evaluation (greedy decoding in
the official code, https://github.com/SprocketLab/steerling): feed ``<bos> prompt <sep>``, append the argmax token until ``<eos>``, and
compare the decoded completion with the reference string. Each step recomputes the
whole (right-padded) sequence; causal attention means the padding after a row's
current end never changes that row's next-token logits. For a one-token answer this
is exactly "argmax at the answer position, then ``<eos>``".
"""
import numpy as np  # host side: decoding bookkeeping

from ..backend import to_numpy
from .extract import official_correct, official_max_new
from .tokenizer import TOKENIZER


def greedy_complete(logits_fn, prompts, max_new, tokenizer=TOKENIZER, n_ctx=None, batch_size=512):
    """Greedy completions (strings) of ``prompts``.

    logits_fn -- ``(tokens [B, T], prompt_lengths [B]) -> logits [B, T, V]``, e.g.
                 ``lambda t, n: forward(params, t, cfg)``. ``prompt_lengths`` counts
                 ``<bos> prompt <sep>``; position-restricted adapters (ReFT's first/last
                 prompt tokens) need it, the rest ignore it.
    max_new   -- the most tokens to generate per prompt, ``<eos>`` included.
    """
    out = []
    for start in range(0, len(prompts), batch_size):
        out += _complete_chunk(logits_fn, prompts[start:start + batch_size], max_new, tokenizer, n_ctx)
    return out


def _complete_chunk(logits_fn, prompts, max_new, tokenizer, n_ctx):
    heads = [[tokenizer.bos_id] + tokenizer.encode(p) + [tokenizer.sep_id] for p in prompts]
    B = len(heads)
    lengths = np.array([len(h) for h in heads])
    width = int(lengths.max()) + max_new
    if n_ctx is not None and width > n_ctx:
        raise ValueError(f"prompt length {lengths.max()} + max_new {max_new} exceeds n_ctx={n_ctx}")
    buf = np.full((B, width), tokenizer.pad_id, dtype=np.int64)
    for b, h in enumerate(heads):
        buf[b, :len(h)] = h
    done = np.zeros(B, dtype=bool)
    rows = np.arange(B)
    prompt_lengths = lengths.copy()
    for _ in range(max_new):
        logits = to_numpy(logits_fn(buf[:, :int(lengths.max())], prompt_lengths))  # [B, T, V]
        nxt = logits[rows, lengths - 1].argmax(-1)
        live = ~done
        buf[rows[live], lengths[live]] = nxt[live]
        lengths = lengths + live
        done = done | (nxt == tokenizer.eos_id)
        if done.all():
            break
    return [tokenizer.decode(buf[b, len(heads[b]):lengths[b]]) for b in range(B)]


def accuracy(logits_fn, examples, tokenizer=TOKENIZER, n_ctx=None, return_predictions=False, match="exact"):
    """Fraction of ``examples`` whose greedy completion equals the reference exactly.

    ``max_new`` is the longest reference plus one (for ``<eos>``), so a correct answer
    must also stop: an answer that runs on past its reference never matches.
    ``match="official"``: the official code's scoring instead -- the task's own
    ``max_new_tokens`` and regex answer extraction (``extract.py``).
    """
    if not examples:
        raise ValueError("accuracy needs at least one example")
    if match not in ("exact", "official"):
        raise ValueError(f"match={match!r}; expected 'exact' or 'official'")
    if match == "official":
        max_new = official_max_new(examples, n_ctx, tokenizer)
        correct = lambda p, e: official_correct(e.task, p, e.completion)
    else:
        max_new = max(len(e.completion) for e in examples) + 1
        correct = lambda p, e: p == e.completion
    preds = greedy_complete(logits_fn, [e.prompt for e in examples], max_new, tokenizer, n_ctx)
    acc = float(np.mean([correct(p, e) for p, e in zip(preds, examples)]))
    return (acc, preds) if return_predictions else acc
