"""The base model's gates: does it already have each skill, so that adapting is elicitation?

Four checks per task, recorded in the card (``base.json``) by ``ministeer pretrain`` and
re-checked against the shipped checkpoint by ``tests/test_experiments.py``:

1. **seen** -- mean exact-match accuracy over the 8 pretrained (notation, style) pairs
   (``PRETRAINED``) >= 90% (validation split). The worst single pair is recorded too.
2. **held_out** -- the benchmark pair (format 9, test split) *answered* zero-shot: accuracy
   under the official code's answer extraction (``tasks/extract.py``) > 0%. The base
   writes the right answer, in a style it knows.
3. **headroom** -- the benchmark pair in its own format, zero-shot: exact match at least 30
   points below the seen pairs. There is something to elicit (format 0, made of pretrained
   parts, has none: the base composes it by itself at 92-98%, docs/results.md).
4. **probe** -- a ridge classifier on the residual stream at the last prompt token
   (``<sep>``), best layer, reads the problem's ``label`` (ListOps value, BoolQ yes/no,
   Winogrande answer name, GSM first total). On the benchmark pair it must come within
   10 points of its mean over the seen pairs: the answer is computed inside the model
   whichever format asks for it.

Format 0 (notation 0 with style 0, never pretrained as a pair either) is measured and recorded, not gated.
"""
import json
from pathlib import Path

import numpy as np  # host side: probes are least-squares fits on cached activations

from ..backend import to_numpy
from ..io import load_model, write_json_atomic
from ..model import forward, run_with_cache
from ..tasks import BENCHMARK, PRETRAINED, TASK_NAMES, accuracy, encode, examples
from ..usage import close, progress_bar, tick

SEEN_MIN, HELD_OUT_MIN, HEADROOM_MIN, PROBE_GAP_MAX = 0.90, 0.0, 0.30, 0.10
THRESHOLDS = dict(seen_min=SEEN_MIN, held_out_above=HELD_OUT_MIN, headroom_min=HEADROOM_MIN,
                  probe_gap_max=PROBE_GAP_MAX)
GATED = (*PRETRAINED, BENCHMARK)  # the formats gated; format 0 is recorded alongside
FULL = dict(n_acc=100, n_probe_train=600, n_probe_test=300)  # the card's numbers


def pair_accuracies(params, cfg, task, n, seed=0):
    """``{fmt: accuracy}`` for 0, the pretrained formats and the benchmark: pretrained ones on
    the validation split, the never-pretrained ones (0, ``BENCHMARK``) on the test split."""
    logits_fn = lambda tokens, _: forward(params, tokens, cfg)
    split = lambda fmt: "val" if fmt in PRETRAINED else "test"
    return {fmt: accuracy(logits_fn, examples(task, split(fmt), n, seed=seed, fmt=fmt), n_ctx=cfg.n_ctx,
                          forced=True) for fmt in (0, *GATED)}


def last_prompt_features(params, cfg, exs):
    """``[n_layers, N, d]``: the residual stream after each block at each prompt's ``<sep>``."""
    batch = encode(exs)
    _, cache = run_with_cache(params, batch["tokens"], cfg, names="blocks.*.hook_resid_post")
    where = np.array([len(e.prompt) + 1 for e in exs])  # <bos> prompt <sep>: <sep> sits at len + 1
    rows = np.arange(len(exs))
    return np.stack([to_numpy(cache[f"blocks.{l}.hook_resid_post"])[rows, where].astype(np.float64)
                     for l in range(cfg.n_layers)])


def ridge_probe_accuracy(x_train, y_train, x_test, y_test, ridge=1e-2):
    """Accuracy of a one-vs-all ridge classifier (least squares onto one-hot labels)."""
    mean, scale = x_train.mean(0), x_train.std(0) + 1e-8  # standardize on the training rows only
    a = np.hstack([(x_train - mean) / scale, np.ones((len(x_train), 1))])
    b = np.hstack([(x_test - mean) / scale, np.ones((len(x_test), 1))])
    classes = np.unique(y_train)
    onehot = (y_train[:, None] == classes[None, :]).astype(np.float64)
    w = np.linalg.solve(a.T @ a + ridge * len(a) * np.eye(a.shape[1]), a.T @ onehot)
    return float(np.mean(classes[(b @ w).argmax(1)] == y_test))


def probe_accuracy(params, cfg, task, fmt, n_train, n_test, seed=0):
    """Best-layer probe accuracy for ``task`` in format ``fmt`` (train split -> test split)."""
    fits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        exs = examples(task, split, n, seed=seed + 7, fmt=fmt)
        fits[split] = last_prompt_features(params, cfg, exs), np.array([e.label for e in exs])
    (xs_tr, y_tr), (xs_te, y_te) = fits["train"], fits["test"]
    return max(ridge_probe_accuracy(xs_tr[l], y_tr, xs_te[l], y_te) for l in range(cfg.n_layers))


def evaluate_gates(params, cfg, n_acc=100, n_probe_train=600, n_probe_test=300, tasks=TASK_NAMES):
    """``{task: {...numbers, "pass": {gate: bool}}}`` for every task (a progress bar per task on stderr)."""
    out, bar = {}, progress_bar(len(tasks), "gates (tasks evaluated)", unit="task")
    for task in tasks:
        acc = pair_accuracies(params, cfg, task, n_acc)
        seen = [acc[f] for f in PRETRAINED]
        answered = accuracy(lambda tokens, _: forward(params, tokens, cfg), examples(task, "test", n_acc),
                            n_ctx=cfg.n_ctx, match="official")
        probes = {f: probe_accuracy(params, cfg, task, f, n_probe_train, n_probe_test) for f in GATED}
        probe_seen = float(np.mean([probes[f] for f in PRETRAINED]))
        row = dict(accuracy={str(f): a for f, a in acc.items()}, seen_mean=float(np.mean(seen)),
                   seen_min=float(min(seen)), held_out_exact=acc[BENCHMARK], held_out_official=answered,
                   probe={str(f): p for f, p in probes.items()}, probe_seen_mean=probe_seen,
                   probe_held_out=probes[BENCHMARK])
        row["pass"] = verdicts(row)
        out[task] = row
        tick(bar)
    close(bar)
    return out


def verdicts(row):
    """``{gate: bool}`` from a task's numbers (the module docstring says what each gate means)."""
    return dict(seen=row["seen_mean"] >= SEEN_MIN, held_out=row["held_out_official"] > HELD_OUT_MIN,
                headroom=row["held_out_exact"] <= row["seen_mean"] - HEADROOM_MIN,
                probe=row["probe_held_out"] >= row["probe_seen_mean"] - PROBE_GAP_MAX)


def summary(gates):
    """A short table of the gates, one line per task."""
    lines = ["task        seen mean (min)  held-out official / exact  probe held-out / seen  gates"]
    for task, g in gates.items():
        ok = " ".join(f"{k}:{'ok' if v else 'FAIL'}" for k, v in g["pass"].items())
        lines.append(f"{task:<11} {100 * g['seen_mean']:5.1f} ({100 * g['seen_min']:5.1f})   "
                     f"{100 * g['held_out_official']:6.1f} / {100 * g['held_out_exact']:5.1f}         "
                     f"{100 * g['probe_held_out']:5.1f} / {100 * g['probe_seen_mean']:5.1f}"
                     f"          {ok}")
    return "\n".join(lines)


def write_gates(model_path, card_path, **sizes):
    """Evaluate the gates of the checkpoint at ``model_path`` and add them to its card."""
    params, cfg = load_model(model_path)
    sizes = {**FULL, **sizes}
    gates = evaluate_gates(params, cfg, **sizes)
    card = json.loads(Path(card_path).read_text())
    card["gates"] = dict(thresholds=THRESHOLDS, benchmark_format=BENCHMARK, sizes=sizes, tasks=gates,
                         all_pass=all(all(g["pass"].values()) for g in gates.values()))
    write_json_atomic(card_path, card, indent=2, sort_keys=True)
    return dict(gates=gates, summary=summary(gates))


def main(argv=()):
    import argparse
    parser = argparse.ArgumentParser(prog="python -m ministeer.experiments.gates", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="checkpoint (.npz); its card is the .json beside it")
    args = parser.parse_args(argv)
    print(write_gates(args.model, Path(args.model).with_suffix(".json"))["summary"])


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
