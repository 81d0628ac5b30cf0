"""The learning rates ``ministeer compare --sweep`` chooses from, per method, on this project's toy
benchmark (a 0.2M-parameter base trained for a few hundred steps): the benchmark's tuning, not
part of any method. A method is its adapters and training (``adapters.METHODS``); its grid here
is where a validation sweep looks, and why the grid reaches as far as it does.
"""
# Per family of method. The paper sweeps 5 values per method for 1B-8B
# models trained for an epoch; this 0.2M-parameter model trained for a few hundred steps needs
# larger steps. 5 points over a 20-30x span, placed so that the values chosen on the toy
# benchmark fall inside (``ministeer compare`` flags a chosen value at an edge).
FULL_GRID = (1e-4, 3e-4, 1e-3, 2e-3, 4e-3, 1e-2, 2e-2)
LORA_GRID = (2e-3, 5e-3, 1e-2, 2e-2, 5e-2)
STEER_GRID = (5e-3, 1e-2, 2e-2, 5e-2, 1e-1)
# One more point past each edge that a sweep chose (docs/results.md, "learning rates"). The
# first sweeps: full FT both ways (above), LoRA r=1 and r=2, LoReFT, the vector and pre-MLP
# upwards, SiLU downwards; then LoReFT and the vector upwards again (at 0% accuracy at every
# rate, where the validation loss decides), post-block linear downwards. The --all sweep:
# post-block r=2 and r=4 upwards on BoolQ, and pre-MLP
# upwards again on ListOps; the rank sweep shares one grid, so r=1 gets the point too. Then
# every method still at an edge, all at 0% accuracy with the validation loss still falling:
# the ReFT family (one grid), the vector, LoFiT and JoLA, upwards until the loss turns.
LORA_LOW_RANK_GRID = LORA_GRID + (1e-1,)
REFT_GRID = STEER_GRID + (2e-1, 5e-1, 1.0)
VECTOR_GRID = (1e-2, 2e-2, 5e-2, 1e-1, 2e-1, 5e-1, 1.0, 2.0, 5.0)
LOFIT_GRID = STEER_GRID + (2e-1, 5e-1, 1.0, 2.0, 5.0)
JOLA_GRID = STEER_GRID + (2e-1, 5e-1)
SILU_GRID = (2e-3,) + STEER_GRID
LINEAR_GRID = SILU_GRID
RANK_SWEEP_GRID = STEER_GRID + (2e-1,)
PREMLP_GRID = STEER_GRID + (2e-1, 5e-1)

GRIDS = {
    "full": FULL_GRID,
    "lora": LORA_GRID,
    "lora_r1": LORA_LOW_RANK_GRID,
    "lora_r2": LORA_LOW_RANK_GRID,
    "loreft": REFT_GRID,
    "direft": REFT_GRID,
    "postblock_linear": LINEAR_GRID,
    "postblock_silu": SILU_GRID,
    "postblock_vector": VECTOR_GRID,
    "postblock_r1": RANK_SWEEP_GRID,
    "postblock_r2": RANK_SWEEP_GRID,
    "postblock_r4": RANK_SWEEP_GRID,
    "attnout_r8": STEER_GRID,
    "premlp_r8": PREMLP_GRID,
    "postmlp_r8": STEER_GRID,
    "joint_naive": LORA_GRID,
    "joint_orth_input": LORA_GRID,
    "joint_orth_output": LORA_GRID,
    "nodireft": REFT_GRID,
    "submodules_r8": STEER_GRID,
    "loreft_all": REFT_GRID,
    "lofit": LOFIT_GRID,
    "jola": JOLA_GRID,
    "joint_orth_official": LORA_GRID,
}


def grid_of(method):
    """The rates a sweep scores for ``method``; a clear error for a method without a grid."""
    if method not in GRIDS:
        raise KeyError(f"no learning-rate grid for method {method!r} (experiments/grids.py); "
                       f"methods with one: {sorted(GRIDS)}")
    return GRIDS[method]
