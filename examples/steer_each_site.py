"""Steering at each site compared: pre-MLP, post-MLP and post-block, at equal parameter count.

A "fine-tuned" teacher is the base model plus a random update of every weight (attention
and MLP). First the theory, exactly: the per-layer oracle shift reproduces the teacher's
logits to rounding whether it is written after the block (eq. (4.5)) or at the MLP output
(eq. (4.3)); what differs between the sites is what an adapter reads (docs/04, eq. (4.1)).
The MLP share of each block's change is printed as measured. Then practice:
a rank-8 adapter at each site (same number of parameters) is trained to imitate the
teacher, and we report its loss and its next-token agreement with the teacher.

At this toy scale the trained numbers are close and vary with the seed; the repeated,
multi-seed comparison is ``ministeer compare`` (docs/results.md).

    python examples/steer_each_site.py [--steps 200] [--smoke]
"""
import numpy as np

from _common import parser, teacher_task
from ministeer import Config, forward, init_params
from ministeer import adapters as A
from ministeer.theory import oracle, where

METHODS = ("premlp_r8", "postmlp_r8", "postblock_linear", "postblock_silu")


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    steps = 2 if args.smoke else args.steps
    cfg = Config.llama(vocab_size=32, d_model=32, n_heads=4, n_kv_heads=2, d_mlp=64, n_layers=2, n_ctx=16)
    params = init_params(cfg, seed=args.seed, std=0.3)
    teacher, data, evaluate = teacher_task(cfg, params, scale=0.1, seed=args.seed)
    tokens = data(0)["tokens"]

    print("The theory (exact, on the teacher's own stream):")
    for row in where.skip_coverage(params, teacher, tokens, cfg):
        print(f"  layer {row['layer']}: MLP share of the block change {row['share']:.2f} (measured)")
    for at in ("hook_resid_post", "hook_mlp_out"):
        steered = forward(params, tokens, cfg, hooks=oracle.oracle_hooks(params, teacher, cfg, at=at))
        print(f"  oracle written at {at}: max |logits - teacher logits| = "
              f"{np.abs(steered - forward(teacher, tokens, cfg)).max():.1e}")

    print(f"\nTrained adapters ({steps} steps each), next-token agreement with the teacher:")
    print(f"  {'base model':18s} {'':>9} {'':>8}  {evaluate(lambda t: forward(params, t, cfg)):.3f}")
    for method in METHODS:
        adapters, result = A.train_method(method, params, cfg, data, steps=steps, lr=1e-2, seed=args.seed)
        agreement = evaluate(lambda t: A.adapted_forward(params, adapters, t, cfg))
        print(f"  {method:18s} {A.count_params(cfg, method).trainable:6d} p  loss {result.losses[-1]:.3f}  {agreement:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
