"""The first-order equivalence on one block: a weight update's effect on the block output
equals the JVP shift, up to an error that falls like eps^2 (docs/02, eqs. (2.5)-(2.9)).

Updates every weight of block 0 by eps * (a random direction as large as the weights),
and compares the updated block output with "base output + eps * JVP". Prints the
remainder for each eps and its log-log slope (2 means second order), and how much of
the shift is attention's, which a post-MLP steer could not write (docs/04, eq. (4.3)).
With matplotlib installed, ``--plot FILE.png`` draws the eps-scaling plot.

    python examples/first_order_block.py [--plot scaling.png] [--smoke]
"""
import numpy as np

from _common import parser
from ministeer import Config, init_params
from ministeer.theory import first_order


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--plot", metavar="PNG", help="save the eps-scaling plot here (needs matplotlib)")
    p.add_argument("--preset", choices=("llama", "gpt2"), default="llama")
    args = p.parse_args(argv)
    make = Config.llama if args.preset == "llama" else Config.gpt2
    cfg = make(vocab_size=32, d_model=16 if args.smoke else 64, n_heads=4, n_layers=1, n_ctx=16,
               **({"n_kv_heads": 2, "d_mlp": 64 if args.smoke else 256} if args.preset == "llama" else {}))
    params = init_params(cfg, seed=0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (2, 8))
    delta = first_order.random_update(params, "model.layers.0.*", seed=1)
    epsilons = np.logspace(-1, -4, 4 if args.smoke else 10)

    errs, floor, slope = first_order.site_remainders(params, delta, tokens, cfg, "blocks.0.post_block", epsilons)
    _, shift = first_order.first_order_shift(params, delta, tokens, cfg, "blocks.0.post_block")
    print(f"{'eps':>9}  {'|exact shift|':>14}  {'R(eps) = |exact - eps*JVP|':>27}")
    for eps, err in zip(epsilons, errs):
        exact = first_order.exact_shift(params, delta, tokens, cfg, "blocks.0.post_block", eps=eps)
        print(f"{eps:9.1e}  {np.linalg.norm(exact):14.3e}  {err:27.3e}")
    print(f"log-log slope of R: {slope:.3f}   (2 = the error is second order: first-order equivalence)")

    # the part of the block-output shift that travels the skip path (attention's write)
    _, attn_shift = first_order.first_order_shift(params, delta, tokens, cfg, "blocks.0.hook_attn_out")
    share = np.linalg.norm(attn_shift) / np.linalg.norm(shift)
    print(f"|attention part of the shift| / |block shift| = {share:.2f}: post-MLP steering cannot write it")

    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: skipping the plot (pip install matplotlib)")
            return 0
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
        ax.loglog(epsilons, errs, "o-", label=f"R(eps), slope {slope:.2f}")
        ax.loglog(epsilons, errs[0] * (epsilons / epsilons[0]) ** 2, "k--", lw=0.8, label="eps^2")
        ax.axhline(floor, color="grey", lw=0.6, ls=":", label="float64 floor")
        ax.set_xlabel("update size eps")
        ax.set_ylabel("|T(theta + eps d) - T(theta) - eps JVP|")
        ax.set_title("Block 0: weight update vs post-block shift")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=150)
        print(f"wrote {args.plot}")
    assert abs(slope - 2) < 0.2, slope  # docs/02 eq. (2.8)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
