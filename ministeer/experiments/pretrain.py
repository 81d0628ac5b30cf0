"""The base model: pretrained on a broad mixture of the four tasks' skills and formats.

The paper adapts pretrained LLMs that already have latent skills. Here the stand-in
is a small Llama-style model (RMSNorm, RoPE, SwiGLU, as the theory assumes) trained
on every task in its *non-benchmark* formats (1 and 2, see ``tasks/generators.py``),
on the train split only. Adapting it to format 0 of one task is then the analogue of
fine-tuning an LLM on a benchmark: the skill is there, the format and the finishing
are not.

``ministeer pretrain`` regenerates ``ministeer/data/base.npz`` and its card
``ministeer/data/base.json`` bit-for-bit from the seeds (on the same machine and
library versions); ``tests/test_experiments.py`` checks that the shipped checkpoint
matches its card.
"""
import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np  # host side: fingerprints and card numbers

from ..backend import to_numpy
from ..io import load_arrays, save_arrays
from ..tree import flatten, unflatten
from ..model import Config, forward, init_params, loss_fn
from ..tasks import TASK_NAMES, TOKENIZER, accuracy, batch_sampler, examples, get_task
from ..train import fit

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BASE_PATH = DATA_DIR / "base.npz"
CARD_PATH = DATA_DIR / "base.json"
BASE_CONFIG = Config.llama(vocab_size=TOKENIZER.vocab_size, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2,
                           d_mlp=128, n_ctx=64, dtype="float32")
DEFAULTS = dict(steps=5000, batch_size=32, lr=3e-3, warmup=100, schedule="cosine", weight_decay=0.01,
                clip=1.0, init_seed=0, data_seed=0, per_task_format=4000)
FINGERPRINT_PROMPT = "max(3,min(4,7),2)"


def mixture(data_seed, per_task_format):
    """Train-split examples of every task in every non-benchmark format (1..n-1)."""
    pool = []
    for task in TASK_NAMES:
        for fmt in range(1, get_task(task).n_formats):
            pool += examples(task, "train", per_task_format, seed=data_seed, fmt=fmt)
    return pool


def pretrain(cfg=BASE_CONFIG, progress=True, **overrides):
    """``(params, FitResult)`` for the base model with the ``DEFAULTS`` (or ``overrides``)."""
    h = {**DEFAULTS, **overrides}
    pool = mixture(h["data_seed"], h["per_task_format"])
    data = batch_sampler(pool, h["batch_size"], seed=h["data_seed"])
    objective = lambda params, batch: loss_fn(params, batch["tokens"], cfg, mask=batch["mask"])
    result = fit(objective, init_params(cfg, h["init_seed"]), data, steps=h["steps"], lr=h["lr"],
                 weight_decay=h["weight_decay"], schedule=h["schedule"], warmup=h["warmup"], clip=h["clip"],
                 progress=progress)
    return result.params, result


def fingerprint(params):
    """SHA-256 over the weights' bytes, in sorted dotted-name order."""
    digest = hashlib.sha256()
    for name, leaf in sorted(flatten(params).items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(to_numpy(leaf)).tobytes())
    return digest.hexdigest()


def probe_logits(params, cfg):
    """Next-token logits after ``<bos> FINGERPRINT_PROMPT <sep>``: a behavioural fingerprint."""
    ids = [TOKENIZER.bos_id] + TOKENIZER.encode(FINGERPRINT_PROMPT) + [TOKENIZER.sep_id]
    return to_numpy(forward(params, np.array([ids]), cfg))[0, -1].astype(float)


def base_accuracies(params, cfg, n=200, seed=0):
    """Validation accuracy of the base model on every task and format."""
    logits_fn = lambda tokens, _: forward(params, tokens, cfg)
    return {task: {str(fmt): accuracy(logits_fn, examples(task, "val", n, seed=seed, fmt=fmt), n_ctx=cfg.n_ctx)
                   for fmt in range(get_task(task).n_formats)} for task in TASK_NAMES}


def code_version():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=DATA_DIR, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_base(params, cfg, card, path=BASE_PATH, card_path=CARD_PATH):
    save_arrays(path, flatten(params), metadata={"config": asdict(cfg)})
    Path(card_path).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def load_base(path=BASE_PATH):
    """``(params, cfg)`` of the shipped base model (or a checkpoint written by ``save_base``)."""
    arrays, meta = load_arrays(path)
    if "config" not in meta:
        raise ValueError(f"{str(path)!r} has no config in its metadata; was it written by save_base?")
    return unflatten(arrays), Config(**meta["config"])


def load_card(path=CARD_PATH):
    return json.loads(Path(path).read_text())


def main(argv=()):
    parser = argparse.ArgumentParser(prog="ministeer pretrain", description=__doc__.split("\n")[0])
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out", default=str(BASE_PATH), help="checkpoint path (.npz); the card goes next to it")
    args = parser.parse_args(argv)
    hparams = {k: getattr(args, k) for k in DEFAULTS}
    print(f"pretraining {BASE_CONFIG.n_layers}x{BASE_CONFIG.d_model} on {len(TASK_NAMES)} tasks, {hparams}")
    params, result = pretrain(progress=True, **hparams)
    print(f"done in {result.seconds:.0f} s; final loss (mean of last 50) {np.mean(result.losses[-50:]):.4f}")
    card = dict(config=asdict(BASE_CONFIG), hparams=hparams, pretrain_formats="1..n-1 (format 0 held out)",
                seconds=round(result.seconds, 1), final_loss=float(np.mean(result.losses[-50:])),
                command=" ".join(["ministeer pretrain", *argv]), code_version=code_version(),
                sha256=fingerprint(params), probe_prompt=FINGERPRINT_PROMPT,
                probe_logits=[round(float(x), 4) for x in probe_logits(params, BASE_CONFIG)],
                val_accuracy=base_accuracies(params, BASE_CONFIG),
                versions={"python": sys.version.split()[0], "numpy": np.__version__})
    out = Path(args.out)
    save_base(params, BASE_CONFIG, card, out, out.with_suffix(".json"))
    print(json.dumps(card["val_accuracy"], indent=1))
    print(f"wrote {out} and {out.with_suffix('.json')}")
