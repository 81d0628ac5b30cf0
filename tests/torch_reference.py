"""ministeer's training recipe, ported to PyTorch: an outside reference for tests/test_torch_reference.py.

Written from the recipe's description, not from ministeer's code paths: torch's autograd gives
the gradients, ``torch.optim.AdamW`` the update, ``F.cross_entropy`` the loss. Only what the
recipe *defines* is transcribed: the Llama-style block (RMSNorm, rotary positions, grouped-query
attention, SwiGLU, pre-norm, untied unembedding), the post-block steering vector, the
completion-only loss (targets shifted left, weighted by the mask), the learning-rate schedule,
the clipping and the teacher-forced exact-match scoring.

Two places where the recipe is not torch's or Hugging Face's default, kept as ministeer has them:

* warmup: step s < warmup runs at ``lr (s + 1) / warmup`` (``train.learning_rate``); the
  Hugging Face ``get_linear_schedule_with_warmup`` runs ``lr s / warmup``, so its first step is 0.
* clipping: ``scale = min(1, clip / (norm + 1e-12))``; ``torch.nn.utils.clip_grad_norm_`` (the
  Trainer's) adds 1e-6 instead, which scales a clipped gradient by about 1 - 1e-6 / norm: AdamW's
  normalization all but cancels that (with 1e-6 here the test below still passes).

Called only by the test, after ``pytest.importorskip("torch")``: the suite runs without torch
(pytest-markdown-docs still imports this file for its docstrings, hence the guarded import).
"""
import math

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate(x, theta):
    """Rotary positions on x [B, T, heads, dh]: pairs (i, i + dh/2) turn by t / theta^(2i/dh)."""
    T, dh = x.shape[1], x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], -1)[:, None, :]  # [T, 1, dh]
    x1, x2 = x[..., :dh // 2], x[..., dh // 2:]
    return x * angles.cos() + torch.cat([-x2, x1], -1) * angles.sin()


def forward(w, tokens, cfg, vector=None):
    """Logits [B, T, V]; ``w`` maps Hugging Face names to tensors; ``vector`` [L, d] is added
    to every block's output (the post-block steering vector)."""
    B, T = tokens.shape
    H, K, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_model // cfg.n_heads
    h = w["model.embed_tokens.weight"][tokens]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg.n_layers):
        p = lambda name: w[f"model.layers.{l}.{name}.weight"]
        x = rms_norm(h, p("input_layernorm"), cfg.norm_eps)
        q = rotate((x @ p("self_attn.q_proj").T).view(B, T, H, dh), cfg.rope_theta).transpose(1, 2)
        k = rotate((x @ p("self_attn.k_proj").T).view(B, T, K, dh), cfg.rope_theta).transpose(1, 2)
        v = (x @ p("self_attn.v_proj").T).view(B, T, K, dh).transpose(1, 2)
        k, v = k.repeat_interleave(H // K, 1), v.repeat_interleave(H // K, 1)  # query head j reads kv j // (H/K)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        z = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v  # [B, H, T, dh]
        h = h + z.transpose(1, 2).reshape(B, T, H * dh) @ p("self_attn.o_proj").T
        x = rms_norm(h, p("post_attention_layernorm"), cfg.norm_eps)
        h = h + (F.silu(x @ p("mlp.gate_proj").T) * (x @ p("mlp.up_proj").T)) @ p("mlp.down_proj").T
        if vector is not None:
            h = h + vector[l]
    return rms_norm(h, w["model.norm.weight"], cfg.norm_eps) @ w["lm_head.weight"].T


def completion_loss(logits, tokens, mask):
    """Mean cross-entropy of token t+1 from position t, weighted by mask[t+1] (the completion)."""
    V = logits.shape[-1]
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), reduction="none")
    weights = mask[:, 1:].reshape(-1)
    return (weights * ce).sum() / weights.sum()


def schedule(step, steps, warmup):
    """The lr factor: linear warmup from 1 / warmup, then linear decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 1.0 - (step - warmup) / max(1, steps - warmup)


def train(w, cfg, batches, *, lr, warmup, clip, method):
    """Train ``method`` ("full": every weight; "vector": a post-block vector from 0) on ``batches``
    (dicts of numpy tokens and mask) with AdamW (no decay). Returns (weights, vector, losses)."""
    w = {name: t.clone().requires_grad_(method == "full") for name, t in w.items()}
    vector = torch.zeros(cfg.n_layers, cfg.d_model, dtype=torch.float64, requires_grad=method == "vector")
    trained = list(w.values()) if method == "full" else [vector]
    opt = torch.optim.AdamW(trained, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule(s, len(batches), warmup))
    losses = []
    for batch in batches:
        tokens, mask = torch.as_tensor(batch["tokens"]), torch.as_tensor(batch["mask"], dtype=torch.float64)
        loss = completion_loss(forward(w, tokens, cfg, vector), tokens, mask)
        opt.zero_grad()
        loss.backward()
        norm = torch.sqrt(sum((t.grad ** 2).sum() for t in trained))
        scale = torch.clamp(clip / (norm + 1e-12), max=1.0)
        for t in trained:
            t.grad.mul_(scale)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return w, vector, losses


def exact_match(w, cfg, vector, heads, answers, pad_id):
    """Per example: is every greedy choice from <sep> on the reference's next token, then <eos>?
    ``heads``: ``<bos> prompt <sep>`` ids; ``answers``: completion ids + ``<eos>``."""
    width = max(len(h) + len(a) for h, a in zip(heads, answers))
    buf = torch.full((len(heads), width), pad_id, dtype=torch.long)
    for b, (h, a) in enumerate(zip(heads, answers)):
        buf[b, :len(h) + len(a)] = torch.tensor(h + a)
    with torch.no_grad():
        predicted = forward(w, buf, cfg, vector).argmax(-1)
    return [bool((predicted[b, len(h) - 1:len(h) - 1 + len(a)] == buf[b, len(h):len(h) + len(a)]).all())
            for b, (h, a) in enumerate(zip(heads, answers))]
