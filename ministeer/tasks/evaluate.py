"""Greedy decoding and exact-match accuracy, batched, without a KV cache.

Every method is scored the same way, as in the paper's evaluation (greedy decoding in
the official code, https://github.com/SprocketLab/steerling): feed ``<bos> prompt <sep>``, append the argmax token until ``<eos>``, and
compare the decoded completion with the reference string. Each step recomputes the
whole (right-padded) sequence; causal attention means the padding after a row's
current end never changes that row's next-token logits. For a one-token answer this
is exactly "argmax at the answer position, then ``<eos>``".

Exact match needs no decoding at all (``accuracy(..., forced=True)``): feed the reference and
check the argmax at every answer position in one pass (``forced_exact_match``).
"""
import numpy as np  # host side: decoding bookkeeping

from ..backend import to_numpy
from .extract import official_correct, official_max_new
from .tokenizer import TOKENIZER


def greedy_complete(logits_fn, prompts, max_new, tokenizer=TOKENIZER, n_ctx=None, batch_size=512,
                    same_length_batches=False):
    """Greedy completions (strings) of ``prompts``.

    logits_fn -- ``(tokens [B, T], prompt_lengths [B]) -> logits [B, T, V]``, e.g.
                 ``lambda t, n: forward(params, t, cfg)``. ``prompt_lengths`` counts
                 ``<bos> prompt <sep>``; position-restricted adapters (ReFT's first/last
                 prompt tokens) need it, the rest ignore it.
    max_new   -- the most tokens to generate per prompt, ``<eos>`` included.
    same_length_batches -- decode prompts of one token length per batch. Rows of a batch are
                 padded to its longest row, so only then does every unfinished row's newest
                 token sit at the input's last position, which is what an adapter with
                 ``positions="last"`` (``train_method(..., intervene_last=True)``) edits.
                 Other causal models give the same completions either way.
    """
    if same_length_batches:
        sizes = [len(tokenizer.encode(p)) for p in prompts]
        groups = [[i for i, n in enumerate(sizes) if n == size] for size in sorted(set(sizes))]
    else:
        groups = [list(range(len(prompts)))]
    out = [None] * len(prompts)
    for rows in groups:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            texts = _complete_chunk(logits_fn, [prompts[i] for i in chunk], max_new, tokenizer, n_ctx)
            for i, text in zip(chunk, texts):
                out[i] = text
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


def forced_exact_match(logits_fn, examples, tokenizer=TOKENIZER, n_ctx=None, batch_size=512):
    """Per example: would greedy decoding write exactly the reference and then ``<eos>``? One
    teacher-forced pass per batch instead of one pass per generated token.

    Feed ``<bos> prompt <sep> reference <eos>``. Greedy decoding writes the reference iff the
    argmax at ``<sep>`` is the reference's first token, the argmax at that token is its second,
    and so on, with ``<eos>`` as the argmax at its last token: as long as the argmaxes agree
    with the reference, greedy decoding has fed exactly these tokens, so it sees these logits.
    Valid for every ``logits_fn`` whose logits at position t depend only on the tokens up to t
    and on ``prompt_lengths`` (causal attention; adapters at fixed prompt positions), so not for
    adapters with ``positions="last"``, which edit whichever position comes last."""
    max_new = max(len(e.completion) for e in examples) + 1  # as ``accuracy``, so the same n_ctx error
    out = []
    for start in range(0, len(examples), batch_size):
        out += _forced_chunk(logits_fn, examples[start:start + batch_size], tokenizer, n_ctx, max_new)
    return out


def _forced_chunk(logits_fn, examples, tokenizer, n_ctx, max_new):
    heads = [[tokenizer.bos_id] + tokenizer.encode(e.prompt) + [tokenizer.sep_id] for e in examples]
    answers = [tokenizer.encode(e.completion) + [tokenizer.eos_id] for e in examples]
    lengths = np.array([len(h) for h in heads])
    if n_ctx is not None and lengths.max() + max_new > n_ctx:
        raise ValueError(f"prompt length {lengths.max()} + max_new {max_new} exceeds n_ctx={n_ctx}")
    buf = np.full((len(heads), max(len(h) + len(a) for h, a in zip(heads, answers))), tokenizer.pad_id,
                  dtype=np.int64)
    for b, (h, a) in enumerate(zip(heads, answers)):
        buf[b, :len(h) + len(a)] = h + a
    predicted = to_numpy(logits_fn(buf, lengths)).argmax(-1)  # [B, T]: the greedy choice after each position
    # the choices at <sep> and at each reference token must be the next reference token (then <eos>)
    return [bool((predicted[b, n - 1:n - 1 + len(a)] == buf[b, n:n + len(a)]).all())
            for b, (n, a) in enumerate(zip(lengths, answers))]


def accuracy(logits_fn, examples, tokenizer=TOKENIZER, n_ctx=None, return_predictions=False, match="exact",
             forced=False, same_length_batches=False):
    """Fraction of ``examples`` whose greedy completion equals the reference exactly.

    ``max_new`` is the longest reference plus one (for ``<eos>``), so a correct answer
    must also stop: an answer that runs on past its reference never matches.
    ``match="official"``: the official code's scoring instead -- the task's own
    ``max_new_tokens`` and regex answer extraction (``extract.py``).
    ``forced=True``: the same exact-match verdicts from one teacher-forced pass
    (``forced_exact_match``, for causal ``logits_fn`` only); 4-13x faster, no predictions.
    ``same_length_batches=True``: decode as ``greedy_complete`` says, for adapters with
    ``positions="last"``; it cannot be combined with ``forced``.
    """
    if not examples:
        raise ValueError("accuracy needs at least one example")
    if match not in ("exact", "official"):
        raise ValueError(f"match={match!r}; expected 'exact' or 'official'")
    if forced:
        if same_length_batches:
            raise ValueError("forced=True scores every answer position in one pass, where an adapter with "
                             "positions='last' edits only the final one: decode (forced=False) instead")
        if match != "exact" or return_predictions:
            raise ValueError("forced=True scores exact matches without decoding: it has no predictions to "
                             "return and cannot apply match='official'")
        return float(np.mean(forced_exact_match(logits_fn, examples, tokenizer, n_ctx)))
    if match == "official":
        max_new = official_max_new(examples, n_ctx, tokenizer)
        correct = lambda p, e: official_correct(e.task, p, e.completion)
    else:
        max_new = max(len(e.completion) for e in examples) + 1
        correct = lambda p, e: p == e.completion
    preds = greedy_complete(logits_fn, [e.prompt for e in examples], max_new, tokenizer, n_ctx,
                            same_length_batches=same_length_batches)
    acc = float(np.mean([correct(p, e) for p, e in zip(preds, examples)]))
    return (acc, preds) if return_predictions else acc
