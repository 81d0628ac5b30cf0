"""Greedy generation with hooks active.

Each new token is the argmax of the logits at the last position of a *full* forward
pass over the prompt plus everything generated so far. There is no key/value cache.
That costs O(T^2) forwards, which is nothing at this library's sizes, and it keeps
every hook's meaning simple:

* Positions are absolute. Position ``p`` is the same token in every step, so a hook
  restricted to positions (``x[:, :3] + v``, a mask, "the prompt") acts on the same
  tokens before and after tokens are appended.
* A hook sees the whole sequence at every step. A hook on the *last* position
  (``x[:, -1]``) therefore steers the newest token only; earlier tokens are
  recomputed unsteered at the next step. With a KV cache they would keep the keys and
  values computed while they were last, so the two schemes differ. This one is what
  ``forward`` on the final sequence computes, which is what the tests check.

Checked in ``tests/test_generate.py``.
"""
from .backend import as_backend_array, raw
from .model import check_tokens, forward


def generate(params, prompt_tokens, cfg, max_new_tokens, hooks=None, stop_token=None):
    """Append ``max_new_tokens`` greedy tokens to ``prompt_tokens`` and return the whole sequence.

    prompt_tokens -- [B, T] integer ids (a batch of prompts of equal length) or one [T] prompt;
                     the result has the same rank: [B, T + n] or [T + n].
    hooks         -- as for ``forward``; active at every step.
    stop_token    -- a row that emits it keeps emitting it (padding), and generation ends
                     early once every row has emitted it.
    Raises ``ValueError`` if ``T + max_new_tokens`` exceeds the context length ``cfg.n_ctx``.
    """
    prompt_tokens = as_backend_array(prompt_tokens)
    tokens = check_tokens(prompt_tokens, cfg)  # [B, T]
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    if tokens.shape[1] + max_new_tokens > cfg.n_ctx:
        raise ValueError(f"prompt length {tokens.shape[1]} + max_new_tokens {max_new_tokens} exceeds the "
                         f"context length n_ctx={cfg.n_ctx}; positions beyond it have no embedding")
    if stop_token is not None and not 0 <= stop_token < cfg.vocab_size:
        raise ValueError(f"stop_token must lie in [0, {cfg.vocab_size}), got {stop_token}")
    stopped = raw.zeros(tokens.shape[0], dtype=bool)
    for _ in range(max_new_tokens):
        logits = forward(params, tokens, cfg, hooks)  # [B, T, V], recomputed in full
        next_token = raw.argmax(logits[:, -1], axis=-1).astype(tokens.dtype)  # [B]
        if stop_token is not None:
            next_token = raw.where(stopped, stop_token, next_token).astype(tokens.dtype)
            stopped = stopped | (next_token == stop_token)
        tokens = raw.concatenate([tokens, next_token[:, None]], axis=1)  # [B, T + 1]
        if stop_token is not None and bool(raw.all(stopped)):
            break
    return tokens[0] if prompt_tokens.ndim == 1 else tokens
