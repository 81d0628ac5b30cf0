"""Translate a trained LoRA into per-layer post-block shifts (docs/02, eqs. (2.10)-(2.11)).

Trains a rank-4 LoRA to imitate a "fine-tuned" teacher, merges it into the weights, and
turns the merged update into post-block steering hooks on the *frozen base* model by the
first-order map (one JVP of each block, on the steered stream). Then it scales the update
by eps and reports how much of the gap between base and LoRA-tuned logits the translation
closes ("recovery", which tends to 1 as eps -> 0 with an error falling like eps^2) and how
often the argmax token agrees with the LoRA-tuned model.

    python examples/lora_to_post_block.py [--steps 150] [--smoke]
"""

from _common import parser, teacher_task
from ministeer import Config, forward, init_params
from ministeer import adapters as A
from ministeer.theory import translate


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args(argv)
    steps = 2 if args.smoke else args.steps
    cfg = Config.llama(vocab_size=32, d_model=32, n_heads=4, n_kv_heads=2, d_mlp=64, n_layers=2, n_ctx=16)
    params = init_params(cfg, seed=0, std=0.3)
    _, data, evaluate = teacher_task(cfg, params, scale=0.1)

    adapters, result = A.train_method("lora", params, cfg, data, steps=steps, lr=1e-2, r=4)
    if args.smoke:  # two steps barely move B from zero: make the update visible
        adapters = {k: a.with_params({m: {**p, "lora_B": p["lora_B"] + 0.05} for m, p in a.params.items()})
                    for k, a in adapters.items()}
    merged = A.adapted_params(params, adapters)  # W + (alpha / r) B A in every target
    delta = translate.lora_update(adapters["lora"])  # {"model.layers.0.self_attn.q_proj.weight": s B A, ...}
    print(f"LoRA r=4: {A.count_params(cfg, adapters).trainable} params, trained {steps} steps, "
          f"final loss {result.losses[-1]:.3f}; the update touches {len(delta)} weight matrices")
    print(f"agreement with the teacher: base {evaluate(lambda t: forward(params, t, cfg)):.3f}, "
          f"LoRA {evaluate(lambda t: forward(merged, t, cfg)):.3f}, "
          f"translated steer {evaluate(lambda t: forward(params, t, cfg, hooks=translate.translated_hooks(params, delta, cfg))):.3f}")

    tokens = data(10_000)["tokens"]
    epsilons = (1.0, 0.5, 0.25) if args.smoke else (2.0, 1.0, 0.5, 0.25, 0.1)
    print(f"\n{'eps':>5}  {'|z_base - z_LoRA|':>18}  {'|z_steer - z_LoRA|':>19}  {'recovery':>8}  {'argmax agree':>12}")
    for row in translate.translation_report(params, delta, tokens, cfg, epsilons=epsilons):
        print(f"{row['eps']:5.2f}  {row['base_gap']:18.4f}  {row['error_vs_ft']:19.2e}  "
              f"{row['recovery']:8.4f}  {row['agreement']:12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
