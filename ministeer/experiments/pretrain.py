"""The base model: pretrained on every task in eight of its (notation, style) pairs.

The paper adapts pretrained LLMs that already have latent skills. Here the stand-in
is a small Llama-style model (RMSNorm, RoPE, SwiGLU, as the theory assumes) trained
on every task in formats 1..8 (``tasks/generators.py``), on the train split only. The
benchmark pair (format 9, the *boxed* answer style) is never shown: adapting the base to
it is the analogue of fine-tuning an LLM on a benchmark whose skill it already has but
whose answer format it does not write. ``gates.py`` checks that (seen pairs >= 90%; the
held-out pair answered under the official extraction but not in its format; linear probe).

``ministeer pretrain`` writes to ``runs/pretrain/base.npz`` (and its card ``base.json``)
and never into the package unless asked (``--ship``). It saves the training state every
``--save-every`` steps (``fit``'s checkpoints, in ``checkpoints/`` beside the output), and
the same command run again resumes an interrupted run bitwise; a resume from another start
(``--init-from`` another file, or none) or with other settings is refused. While it runs, the
output folder is locked: a second ``pretrain`` into it stops at once. With the same seeds,
machine and library versions it reproduces the shipped ``ministeer/data/base.npz``
bit for bit; ``tests/test_experiments.py`` checks the shipped file against its card.
"""
import argparse
import hashlib
import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np  # host side: fingerprints and card numbers

from ..backend import to_numpy
from ..io import CheckpointError, load_model, save_model, write_json_atomic
from ..tree import flatten
from ..model import Config, forward, init_params, loss_fn
from ..tasks import PRETRAINED, TASK_NAMES, TOKENIZER, accuracy, batch_sampler, examples
from ..train import SCHEDULES, fit
from ..usage import (Parser, UsageError, check_writable, existing_file, folder_lock, non_negative_float,
                     non_negative_int, positive_float, positive_int)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BASE_PATH = DATA_DIR / "base.npz"
CARD_PATH = DATA_DIR / "base.json"
RUN_PATH = Path("runs/pretrain/base.npz")
BASE_CONFIG = Config.llama(vocab_size=TOKENIZER.vocab_size, d_model=64, n_layers=4, n_heads=4, n_kv_heads=2,
                           d_mlp=192, n_ctx=96, dtype="float32")
# the lookup (boolq) and the arithmetic (gsm, listops) take longest to learn: they get more of the mixture
TASK_WEIGHTS = {"listops": 1.5, "boolq": 2.0, "winogrande": 1.0, "gsm": 1.5}
DEFAULTS = dict(steps=2000, batch_size=32, lr=3e-3, warmup=100, schedule="cosine", weight_decay=0.01,
                clip=1.0, init_seed=0, data_seed=0, per_task_format=1500, task_weights=TASK_WEIGHTS)
FINGERPRINT_PROMPT = "max(3,min(4,7),2)|num"


def mixture(data_seed, per_task_format, task_weights=TASK_WEIGHTS):
    """Train-split examples of every task in every seen pair (``PRETRAINED``, formats 1..8),
    ``task_weights[task] * per_task_format`` of each.

    Each format draws its own problems (seed mixed with the format), so the pool covers
    more of the train split than one problem set rendered eight ways."""
    pool = []
    for task in TASK_NAMES:
        for fmt in PRETRAINED:
            n = int(task_weights[task] * per_task_format)
            pool += examples(task, "train", n, seed=1000 * data_seed + fmt, fmt=fmt)
    return pool


def pretrain(cfg=BASE_CONFIG, progress=True, callback=None, init=None, checkpoint_dir=None, save_every=None,
             **overrides):
    """``(params, FitResult)`` for the base model with the ``DEFAULTS`` (or ``overrides``).

    init -- start from these weights instead of ``init_params(cfg, init_seed)``: a second
            stage continues a first one (fresh optimizer state and schedule).
    checkpoint_dir, save_every -- ``fit``'s training-state checkpoints (weights, Adam moments,
            step): a run interrupted at any step and started again with the same folder
            continues where it stopped, bitwise equal to the uninterrupted run. The run
            description in each checkpoint holds the start's ``fingerprint``, so a resume
            from another start is refused (``CheckpointError``)."""
    h = {**DEFAULTS, **overrides}
    unknown = set(h) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown pretraining settings {sorted(unknown)}; valid: {sorted(DEFAULTS)}")
    pool = mixture(h["data_seed"], h["per_task_format"], h["task_weights"])
    data = batch_sampler(pool, h["batch_size"], seed=h["data_seed"])
    objective = lambda params, batch: loss_fn(params, batch["tokens"], cfg, mask=batch["mask"])
    start = init_params(cfg, h["init_seed"]) if init is None else init
    result = fit(objective, start, data, steps=h["steps"], lr=h["lr"],
                 weight_decay=h["weight_decay"], schedule=h["schedule"], warmup=h["warmup"], clip=h["clip"],
                 progress=progress, callback=callback, checkpoint_dir=checkpoint_dir,
                 checkpoint_every=save_every if checkpoint_dir else None, resume=True if checkpoint_dir else None,
                 run={"pretrain": h, "init": "init_params" if init is None else "sha256:" + fingerprint(init)})
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


def code_version():
    """The commit this code is at (``-dirty`` when tracked files differ from it), or "unknown"."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"], capture_output=True,
                             text=True, cwd=DATA_DIR, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_base(path=BASE_PATH):
    """``(params, cfg)`` of the shipped base model: ``io.load_model`` of its path."""
    return load_model(path)


def load_card(path=CARD_PATH):
    return json.loads(Path(path).read_text())


def task_weights(text):
    """``"boolq=6,gsm=1"`` -> ``TASK_WEIGHTS`` with those entries replaced (argparse type); 0 leaves a task out."""
    weights = dict(TASK_WEIGHTS)
    for item in filter(None, text.split(",")):
        task, _, value = item.partition("=")
        if task not in weights:
            raise argparse.ArgumentTypeError(f"unknown task {task!r}; valid: {sorted(weights)}")
        try:
            weights[task] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: expected TASK=NUMBER, e.g. boolq=6") from None
        if not (math.isfinite(weights[task]) and weights[task] >= 0):
            raise argparse.ArgumentTypeError(f"{item!r}: a weight must be a finite positive number, "
                                             "or 0 to leave the task out")
    if not any(weights.values()):
        raise argparse.ArgumentTypeError(f"{text!r} leaves every task out: at least one weight must be positive")
    return weights


def check_out(path):
    """Fail before training, not after: ``path`` must end in .npz/.safetensors and be writable."""
    check_writable(path, "--out", suffixes=(".npz", ".safetensors"))
    return Path(path)


def summary_line(losses):
    """The final loss, averaged over the last min(50, steps) steps, and saying so."""
    k = min(50, len(losses))
    mean = float(np.mean(losses[-k:]))
    return f"final loss (mean of last {k} step{'s' if k != 1 else ''}) {mean:.4f}", mean


# each setting's argparse type: a bad value is one line and exit 2, before any work
TYPES = dict(steps=positive_int, batch_size=positive_int, lr=positive_float, warmup=non_negative_int,
             schedule=str, weight_decay=non_negative_float, clip=positive_float, init_seed=non_negative_int,
             data_seed=non_negative_int, per_task_format=positive_int)


def main(argv=()):
    parser = Parser(prog="ministeer pretrain", description=__doc__.split("\n")[0])
    for key, value in DEFAULTS.items():
        if key != "task_weights":
            parser.add_argument(f"--{key.replace('_', '-')}", type=TYPES[key], default=value,
                                **({"choices": SCHEDULES} if key == "schedule" else {}))
    parser.add_argument("--task-weights", type=task_weights, default=TASK_WEIGHTS, metavar="TASK=W,...",
                        help=f"each task's share of the mixture, times --per-task-format (default {TASK_WEIGHTS}); "
                        "tasks not named keep their default")
    parser.add_argument("--out", default=str(RUN_PATH), help=f"checkpoint path (.npz or .safetensors; default "
                        f"{RUN_PATH}); the card goes next to it as .json")
    parser.add_argument("--ship", action="store_true", help=f"write to the shipped {BASE_PATH} instead of --out")
    parser.add_argument("--save-every", type=non_negative_int, default=500,
                        help="save the training state every N steps to OUT's folder/checkpoints (0: never); "
                        "running the same command again resumes from the newest, bitwise")
    parser.add_argument("--no-gates", action="store_true", help="skip the gate evaluation (gates.py) after training")
    parser.add_argument("--init-from", type=existing_file, help="continue from this checkpoint (a second stage; "
                        "its card is kept in the new card as 'previous_stage')")
    args = parser.parse_args(argv)
    out = check_out(BASE_PATH if args.ship else args.out)
    init, previous = start_from(args.init_from)  # every input is checked before the folder is touched
    with folder_lock(out.parent, "--out folder"):
        _pretrain_into(out, args, argv, init, previous)


def start_from(path):
    """``(weights, card without its gates)`` of the ``--init-from`` checkpoint, or ``(None, None)``."""
    if not path:
        return None, None
    try:
        init, cfg = load_model(path)
    except CheckpointError as err:
        raise UsageError(f"--init-from: {err}") from None
    if cfg != BASE_CONFIG:
        raise UsageError(f"--init-from {path!r} has config {cfg}, not {BASE_CONFIG}")
    card_before = Path(path).with_suffix(".json")
    previous = load_card(card_before) if card_before.exists() else None
    if previous is not None:
        previous.pop("gates", None)
        previous.pop("probe_logits", None)
    return init, previous


def _pretrain_into(out, args, argv, init, previous):
    """``main`` after every input is checked, holding the lock on ``out``'s folder."""
    hparams = {k: getattr(args, k) for k in DEFAULTS}
    what = ", ".join(f"{t} x{w:g}" for t, w in hparams["task_weights"].items() if w)
    if hparams["warmup"] > hparams["steps"]:
        print(f"warning: warmup ({hparams['warmup']}) exceeds steps ({hparams['steps']}): the learning rate "
              "never reaches its peak", file=sys.stderr)
    print(f"pretraining {BASE_CONFIG.n_layers}x{BASE_CONFIG.d_model} on {what} (8 seen formats each), "
          f"{hparams}; checkpoints every {args.save_every} steps to {out.parent}/", flush=True)
    version = code_version()  # now, not after training: the tree may move on during a long run
    checkpoints = out.parent / "checkpoints" if args.save_every else None
    try:
        params, result = pretrain(progress=True, init=init, checkpoint_dir=checkpoints, save_every=args.save_every,
                                  **hparams)
    except CheckpointError as err:  # the checkpoint to resume belongs to another start or settings
        raise UsageError(f"cannot resume from {checkpoints}/: {err}; to start this run afresh, "
                         "choose another --out or move that folder aside") from None
    text, final = summary_line(result.losses)
    print(f"done in {result.seconds:.0f} s; {text}", flush=True)
    card = dict(config=asdict(BASE_CONFIG), hparams=hparams,
                pretrain_formats="1..8 (format 9, the benchmark pair, and format 0 held out)",
                seconds=round(result.seconds, 1), final_loss=final,
                loss_curve=[round(float(np.mean(result.losses[i:i + 100])), 4)
                            for i in range(0, len(result.losses), 100)],
                command=" ".join(["ministeer pretrain", *argv]), code_version=version,
                sha256=fingerprint(params), probe_prompt=FINGERPRINT_PROMPT,
                probe_logits=[round(float(x), 4) for x in probe_logits(params, BASE_CONFIG)],
                versions={"python": sys.version.split()[0], "numpy": np.__version__})
    if init is not None:
        card["init_sha256"] = fingerprint(init)  # the start's weights, as the checkpoints record them
    if previous is not None:
        card["previous_stage"] = previous
    save_model(out, params, BASE_CONFIG)
    card_path = out.with_suffix(".json")
    write_json_atomic(card_path, card, indent=2, sort_keys=True)
    if not args.no_gates:
        from .gates import write_gates
        print(write_gates(out, card_path)["summary"])
    print(f"wrote {out} and {card_path}")
