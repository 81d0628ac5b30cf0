"""What an adapted model writes when it is wrong: retrain runs of `ministeer compare` and read
their greedy completions.

A cell of the results table is one number per seed. This script retrains the runs behind a
cell (same method, task, seed and settings, at the shipped rate; it counts the items where its
greedy decoding and `compare`'s teacher-forced scoring disagree, which should be none) and
decodes the test problems greedily,
then sorts the wrong answers: not in the boxed format at all, in the format with a wrong
answer, and, on BoolQ, whose answer restates a fact and then gives a verdict, the right fact
with the wrong verdict against a wrong fact.

    python examples/what_it_writes.py --method postblock_silu --task boolq --seeds 0 1 2 3 4

prints one line per seed and a few wrong completions beside their references.
"""
import re
from collections import Counter

from _common import parser

from ministeer import adapters as A
from ministeer.experiments import compare
from ministeer.experiments.pretrain import load_base
from ministeer.experiments.rates import load_lrs, lookup_lr
from ministeer.tasks import TASK_NAMES, TOKENIZER, greedy_complete
from ministeer.usage import non_negative_int

BOXED = re.compile(r"^\[(.+)\]$")


def kind_of_error(task, output, reference):
    """``None`` for a right answer, else which kind of wrong: "format" (not ``[...]``), "fact"
    or "verdict" (BoolQ: which half of ``[fact verdict]`` differs first), or "answer"."""
    if output == reference:
        return None
    got, want = BOXED.fullmatch(output), BOXED.fullmatch(reference)
    if got is None:
        return "format"
    if task == "boolq":  # "[d1 false]": the fact, a space, the verdict
        got_fact, want_fact = got.group(1).rpartition(" ")[0], want.group(1).rpartition(" ")[0]
        return "verdict" if got_fact == want_fact else "fact"
    return "answer"


def read_run(method, task, seed, settings, lr):
    """``(compare's verdicts, [(prompt, output, reference)])`` of one retrained run: the
    teacher-forced verdicts ``compare`` records, and the greedy completions."""
    params, cfg = load_base()
    adapters, _ = compare.adapt(method, task, seed, lr, settings, init_seed=seed)
    logits_fn = lambda tokens, n: A.adapted_forward(params, adapters, tokens, cfg, prompt_lengths=n)
    test = compare.problems(task, "test", seed, settings)
    forced = compare.forced_exact_match(logits_fn, test, n_ctx=cfg.n_ctx)
    # one token past the longest reference: an answer that runs on past it is not cut to a match
    max_new = max(len(TOKENIZER.encode(ex.completion)) for ex in test) + 1
    outputs = greedy_complete(logits_fn, [ex.prompt for ex in test], max_new, n_ctx=cfg.n_ctx)
    return forced, [(ex.prompt, out, ex.completion) for ex, out in zip(test, outputs)]


def main():
    p = parser(__doc__)
    p.add_argument("--method", default="postblock_silu", choices=sorted(A.METHODS))
    p.add_argument("--task", default="boolq", choices=TASK_NAMES)
    p.add_argument("--seeds", type=non_negative_int, nargs="+", help="default: 0 and 1 (--smoke: 0)")
    p.add_argument("--show", type=non_negative_int, default=3, help="wrong completions to print per seed")
    args = p.parse_args()
    settings = compare.Settings(**compare.QUICK) if args.smoke else compare.Settings()
    seeds = args.seeds or ([0] if args.smoke else [0, 1])
    lr = lookup_lr(load_lrs(), args.method, args.task)
    print(f"{args.method} on {args.task}, lr {lr}, {settings.steps} steps, {settings.n_test} test problems per seed")
    for seed in seeds:
        forced, rows = read_run(args.method, args.task, seed, settings, lr)
        kinds = Counter(kind_of_error(args.task, out, ref) for _, out, ref in rows)
        right = kinds.pop(None, 0)
        disagree = sum(bool(f) != (out == ref) for f, (_, out, ref) in zip(forced, rows))
        print(f"seed {seed}: {right} of {len(rows)} right; wrong: "
              + (", ".join(f"{n} {kind}" for kind, n in kinds.most_common()) or "none")
              + f"; items where decoding and compare's scoring disagree: {disagree}")
        for prompt, out, ref in [r for r in rows if r[1] != r[2]][:args.show]:
            print(f"    {prompt!r}: wrote {out!r}, reference {ref!r}")


if __name__ == "__main__":
    main()
