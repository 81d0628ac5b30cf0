"""Joint adaptation: LoRA and post-block steering trained together, with and without the
orthogonality projection (docs/06, eqs. (6.1)-(6.3)).

Trains, on the same teacher-imitation task and budget of steps: LoRA alone, post-block
steering alone, naive joint training, and joint training with the projection on the
adapter's read map (the official code, D <- D (I - V V^T)) or its write map
(U <- (I - V V^T) U). For each joint run it reports the overlap between what the LoRA'd
down projections write (col B_down) and what the adapter reads (|D V|) and writes
(|V^T U|), relative to |D| and |U|: the projection drives one of them to zero.

    python examples/joint_adaptation.py [--steps 100] [--smoke]
"""
import numpy as np

from _common import parser, teacher_task
from ministeer import Config, init_params
from ministeer import adapters as A
from ministeer.adapters.joint import column_basis

METHODS = ("lora", "postblock_silu", "joint_naive", "joint_orth_input", "joint_orth_output")


def overlaps(adapters, cfg):
    """Mean over layers of |D V| / |D| and |V^T U| / |U|, V = orthonormal basis of col(B_down)."""
    read, write = [], []
    for layer in range(cfg.n_layers):
        V = column_basis(adapters["lora"].params[f"model.layers.{layer}.mlp.down_proj"]["lora_B"])
        steer = adapters["steer"].params[f"blocks.{layer}.hook_resid_post"]
        read.append(np.linalg.norm(steer["D"] @ V) / np.linalg.norm(steer["D"]))
        write.append(np.linalg.norm(V.T @ steer["U"]) / max(np.linalg.norm(steer["U"]), 1e-300))
    return float(np.mean(read)), float(np.mean(write))


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=100)
    args = p.parse_args(argv)
    steps = 2 if args.smoke else args.steps
    cfg = Config.llama(vocab_size=32, d_model=32, n_heads=4, n_kv_heads=2, d_mlp=64, n_layers=2, n_ctx=16)
    params = init_params(cfg, seed=0, std=0.3)
    _, data, evaluate = teacher_task(cfg, params, scale=0.1)

    print(f"{'method':18s} {'params':>7}  {'loss':>6}  {'agree':>6}  {'|DV|/|D|':>9}  {'|V^T U|/|U|':>11}")
    for method in METHODS:
        adapters, result = A.train_method(method, params, cfg, data, steps=steps, lr=5e-3)
        agree = evaluate(lambda t: A.adapted_forward(params, adapters, t, cfg))
        line = f"{method:18s} {A.count_params(cfg, method).trainable:7d}  {result.losses[-1]:6.3f}  {agree:6.3f}"
        if "lora" in adapters and "steer" in adapters:
            read, write = overlaps(adapters, cfg)
            line += f"  {read:9.2e}  {write:11.2e}"
            if method == "joint_orth_input":
                assert read < 1e-10, read     # eq. (6.2): D B_down = 0
            if method == "joint_orth_output":
                assert write < 1e-10, write   # eq. (6.3): V^T U = 0
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
