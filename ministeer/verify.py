"""``ministeer verify``: check every claim of the paper on fresh random models (and a checkpoint).

Runs the claim runners of ``ministeer/theory/claims.py`` on a tiny Llama-style and a
tiny GPT-2-style model with seeded random weights, prints one row per claim and model

    | claim | statement | source | model | measured figure | pass/fail |

(a claim about random matrices alone gets one row), then, per claim, what would make it
fail. The source is the claim's provenance (the paper, the authors' blog, the official
code, or derived here; see docs/index.md).

and exits 1 if any claim fails. ``--model DIR`` also runs the model-dependent claims
on a local Hugging Face checkpoint (``ministeer.io.hf.load_pretrained``); ``--json PATH``
writes the same table as JSON.
"""
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .io import CheckpointError, atomic_write
from .theory.claims import CLAIMS, Model, random_model, run_claim
from .usage import Parser, UsageError, check_writable, existing_dir


def _checkpoint_model(folder, seed, n_tokens):
    from .io.hf import load_pretrained
    params, cfg = load_pretrained(folder)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, cfg.vocab_size, (1, min(n_tokens, cfg.n_ctx)))
    return Model(cfg, params, tokens, rng, label=f"checkpoint {folder}")


def verify(seed=0, model_dir=None, claims=None, n_tokens=4):
    """Rows ``{claim, statement, source, fails_if, model, figure, value, passed, seconds}``, one per (claim, model)."""
    numbers = sorted(CLAIMS) if claims is None else list(claims)
    models = [lambda: random_model("llama", seed), lambda: random_model("gpt2", seed + 1)]
    if model_dir is not None:
        checkpoint = _checkpoint_model(model_dir, seed, n_tokens)
        models.append(lambda: checkpoint)
    rows = []
    for number in numbers:
        claim = CLAIMS[number]
        needs_model = claim.needs_model
        for i, make in enumerate(models):
            if i > 0 and not needs_model:
                continue  # pure linear algebra on random matrices: one run says it all
            model = make()  # fresh, so every claim sees the same seeded weights and RNG
            if not needs_model:
                model.label = "random matrices"
            model.rng = np.random.default_rng([seed, number, i])
            start = time.perf_counter()
            m = run_claim(number, model)
            rows.append(dict(claim=number, statement=claim.statement, source=claim.source, fails_if=claim.fails_if,
                             model=model.label, figure=m.figure,
                             value=None if math.isnan(m.value) else m.value, passed=m.passed,
                             seconds=round(time.perf_counter() - start, 3)))
    return rows


def table(rows):
    """The rows as a Markdown table, then what would make each claim fail."""
    lines = ["| claim | statement | source | model | measured figure | pass/fail |", "|---|---|---|---|---|---|"]
    for r in rows:
        value = "nan" if r["value"] is None else f"{r['value']:.4g}"
        lines.append(f"| {r['claim']} | {r['statement']} | {r['source']} | {r['model']} | {r['figure']} = {value} | "
                     f"{'pass' if r['passed'] else 'FAIL'} |")
    lines.append("\nWhat would make each claim fail:")
    seen = {}
    for r in rows:
        seen.setdefault(r["claim"], r["fails_if"])
    lines += [f"- claim {n}: {text}" for n, text in seen.items()]
    return "\n".join(lines)


def main(argv=()):
    parser = Parser(prog="ministeer verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed for the random models and updates")
    parser.add_argument("--model", metavar="DIR", type=existing_dir,
                        help="also run on a local Hugging Face checkpoint folder")
    parser.add_argument("--json", metavar="PATH", help="write the table as JSON to PATH ('-': stdout)")
    parser.add_argument("--claims", metavar="N", type=int, nargs="+", choices=sorted(CLAIMS),
                        help="run only these claims")
    args = parser.parse_args(argv)
    if args.json:
        check_writable(args.json, "--json")
    start = time.perf_counter()
    try:
        rows = verify(args.seed, args.model, args.claims)
    except CheckpointError as err:  # a bad --model folder is the user's input: one line, exit 2
        raise UsageError(f"--model: {err}") from None
    print(table(rows))
    failed = sorted({r["claim"] for r in rows if not r["passed"]})
    seconds = time.perf_counter() - start
    print(f"\n{len(rows) - sum(not r['passed'] for r in rows)}/{len(rows)} checks passed in {seconds:.1f} s"
          + (f"; FAILED claims: {failed}" if failed else ""))
    if args.json:
        report = json.dumps({"seed": args.seed, "model": args.model, "passed": not failed, "failed_claims": failed,
                             "seconds": round(seconds, 3), "rows": rows}, indent=2)
        if args.json == "-":
            print(report)
        else:
            atomic_write(args.json, lambda tmp: Path(tmp).write_text(report + "\n"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
