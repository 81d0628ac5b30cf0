"""How the tests are tested: hand-written semantic mutants, one at a time.

Each mutant is one plausible bug -- a sign, a transpose, a dropped term, an off-by-one, a
wrong default -- written as an exact text edit of one source file. For each mutant the
script edits a *copy* of the repository (the working tree is never touched), runs the
tests of that area, and calls the mutant killed if they fail. It prints one line per
mutant and the kill score; docs/testing-the-tests.md records the last run.

    python scripts/mutants.py                 # all mutants (about 10-20 min on 2 cores)
    python scripts/mutants.py --only rope_sign --only ln_eps2
    python scripts/mutants.py --list          # check every edit still applies, run nothing
    python scripts/mutants.py --json out.json --jobs 3   # three copies, three mutants at a time

Robust by construction: the copy lives in a temporary folder that is removed on exit,
Ctrl-C included, and each file is restored from memory after its mutant, in ``finally``.
A mutant whose text no longer matches exactly once is reported as STALE (not scored):
update it when the code moves.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The tests of each area (globs relative to the repository root). A mutant is run against
# its area's whole set, not against one hand-picked test.
# Listed fast and focused first: with -x the first failure ends the run.
AREAS = {
    "ops": ["tests/test_model_reference.py", "tests/test_ops.py", "tests/test_model.py"],
    "model": ["tests/test_model_reference.py", "tests/test_model_init_and_loss.py", "tests/test_model.py",
              "tests/test_fused.py"],
    "fused": ["tests/test_fused.py", "tests/test_model.py"],
    "sites": ["tests/test_adapters_defaults.py", "tests/test_model.py", "tests/test_adapters_core.py"],
    "adapters": ["tests/test_adapters_defaults.py", "tests/test_adapters_*.py"],
    "theory": ["tests/test_theory_helpers.py", "tests/test_claim_*.py", "tests/test_translate.py"],
    "train": ["tests/test_train_decay_schedule.py", "tests/test_train.py", "tests/test_adamw.py"],
    "tasks": ["tests/test_extract.py", "tests/test_tasks.py", "tests/test_evaluate.py", "tests/test_experiments.py"],
    "report": ["tests/test_stats.py", "tests/test_results_page.py", "tests/test_experiments.py"],
    "exercises": ["tests/test_exercises.py"],
    "safety": ["tests/test_safety.py"],
    "loading": ["tests/test_loads.py", "tests/test_io.py", "tests/test_hf.py"],
    # the newer methods and options: each area's own tests first, then the files they extend
    "heads": ["tests/test_adapters_head_options.py", "tests/test_adapters_lofit_jola.py"],
    "reft_joint": ["tests/test_adapters_reft_joint_options.py", "tests/test_adapters_reft.py",
                   "tests/test_adapters_joint.py", "tests/test_adapters_fold.py"],
    "positions": ["tests/test_positions.py", "tests/test_adapters_core.py", "tests/test_adapters_reft.py"],
    "checkpoints": ["tests/test_resume.py", "tests/test_train.py", "tests/test_io.py"],
    # test_experiments.py (2 min: the quick compare, the shipped base's gates) runs in the tasks and
    # report areas' baselines already; these two areas' own tests need no checkpoint and no training
    "compare": ["tests/test_compare_runs.py"],
    "gates": ["tests/test_gates.py"],
    "evaluate": ["tests/test_evaluate_options.py", "tests/test_evaluate.py"],
    "count": ["tests/test_adapters_count.py"],
    "methods": ["tests/test_methods_registry.py", "tests/test_adapters_train.py"],
    "fair": ["tests/test_adapters_fair.py", "tests/test_adapters_*.py"],  # baselines as their authors run them
}

# (name, area, file, old text, new text, what the bug is): one entry per mutant, which is why this
# file is long; each area's block names what it guards, docs/testing-the-tests.md says which test kills it
MUTANTS = [
    # ---------------------------------------------------------------- the fused block's backward
    ("fused_dw_transposed", "fused", "ministeer/fused.py", "dW = (x2.T @ g2).T if need_w", "dW = x2.T @ g2 if need_w",
     "a linear layer's weight gradient left transposed ([in, out], not [out, in])"),
    ("fused_skip_residual_grad", "fused", "ministeer/fused.py",
     'd_mid = g + norm(mlp(g), s["mid"], "post_attention_layernorm")',
     'd_mid = norm(mlp(g), s["mid"], "post_attention_layernorm")',
     "the MLP's residual gradient skipped: resid_mid gets only the norm's share"),
    ("fused_rms_no_mean", "fused", "ministeer/ops.py", "gw -= xhat * _mean_last(gw * xhat)  # in place", "gw = gw  # in place",
     "RMSNorm's VJP without its mean term (the fused block reuses it)"),
    ("fused_gqa_sum_axis", "fused", "ministeer/fused.py",
     "dz_5d = raw.transpose(dz, (0, 2, 1, 3)).reshape(B, K, H // K, T, dh)",
     "dz_5d = raw.swapaxes(raw.transpose(dz, (0, 2, 1, 3)).reshape(B, H // K, K, T, dh), 1, 2)",
     "GQA's head-sharing sum taken over the wrong heads (h % K instead of h // K)"),
    ("fused_qkv_order", "fused", "ministeer/fused.py", "norm(dx1v + dx1k + dx1q,", "norm(dx1q + dx1k + dx1v,",
     "q, k, v input gradients added in another order: equal in exact arithmetic, not bitwise"),
    ("fused_need_skips_norm", "fused", "ministeer/fused.py",
     'want_x1 = "h" in need or any(path[0] == "input_layernorm" for path in need)', 'want_x1 = "h" in need',
     "the input norm's gain gradient dropped when the block's input needs none"),
    ("fused_rope_vjp_forward", "fused", "ministeer/fused.py", "dq = dq * cos - ops._rotate_half(dq * sin)",
     "dq = dq * cos + ops._rotate_half(dq * sin)", "the fused RoPE VJP rotates forward, not back"),
    ("fused_bias_grad_mean", "fused", "ministeer/fused.py", "db = _sum_to_shape(g2, b.shape) if need_b",
     "db = _sum_to_shape(g2, b.shape) / g2.shape[0] if need_b", "a bias gradient averaged over the rows, not summed"),
    ("fused_gelu_slope_dropped", "fused", "ministeer/fused.py", 'd_up = d_hidden * ops._gelu_slope(s["up"])',
     "d_up = d_hidden", "the fused GELU MLP's backward skips gelu'(a)"),
    ("fused_tree_layers_reversed", "fused", "ministeer/fused.py", "for i in range(len(node))]",
     "for i in reversed(range(len(node)))]", "a tree traced whole has its layers read in reverse order"),
    ("get_path_reads_the_box", "fused", "ministeer/tree.py", "shape = getval(node)", "shape = node",
     "tree.get_path reads a boxed dict as a list: LoRA cannot merge into a tree differentiated whole"),
    ("set_path_reads_the_box", "fused", "ministeer/tree.py", "    shape = getval(tree)  #", "    shape = tree  #",
     "tree.set_path rebuilds a boxed list as a dict: LoRA cannot merge into a tree differentiated whole"),
    ("fused_ignores_inner_hooks", "fused", "ministeer/model.py",
     'INNER_SITES = tuple(s for s in BLOCK_SITES if s not in ("hook_resid_pre", "hook_resid_post"))',
     'INNER_SITES = ("attn.hook_z",)', "a layer with a hook inside (but not at attn.hook_z) runs fused"),
    # ---------------------------------------------------------------- ops
    ("rms_eps_outside_sqrt", "ops", "ministeer/ops.py", "r = 1.0 / raw.sqrt(_mean_last(x * x) + eps)",
     "r = 1.0 / (raw.sqrt(_mean_last(x * x)) + eps)", "RMSNorm eps added outside the square root"),
    ("ln_not_centred", "ops", "ministeer/ops.py", "    centred = x - _mean_last(x)\n    r = 1.0",
     "    centred = x\n    r = 1.0", "LayerNorm statistics without centring"),
    ("ln_eps2", "ops", "ministeer/ops.py", "r = 1.0 / raw.sqrt(_mean_last(centred * centred) + eps)",
     "r = 1.0 / raw.sqrt(_mean_last(centred * centred) + 2 * eps)", "LayerNorm eps doubled"),
    ("gelu_constant", "ops", "ministeer/ops.py", "_C, _K = math.sqrt(2.0 / math.pi), 0.044715",
     "_C, _K = math.sqrt(2.0 / math.pi), 0.04", "tanh-GELU cubic coefficient wrong"),
    ("gelu_half", "ops", "ministeer/ops.py", "    t += 1.0  # x (1 + t) / 2", "    t += 0.9  # x (1 + t) / 2",
     "GELU's 1 + tanh off"),
    ("silu_slope", "ops", "ministeer/ops.py", "    slope += s\n    return slope", "    return slope",
     "SiLU derivative drops the sigmoid term"),
    ("swiglu_no_up", "ops", "ministeer/ops.py", "    m *= gate\n    m *= up\n    return m",
     "    m *= gate\n    return m", "SwiGLU forgets the up projection"),
    ("attn_causal_peek", "ops", "ministeer/ops.py", "return raw.tril(raw.ones((t, t), dtype=bool))",
     "return raw.tril(raw.ones((t, t), dtype=bool), 1)", "causal mask lets a token see the next one"),
    ("attn_dq_scale", "ops", "ministeer/ops.py", "(ds @ k[:, :, None]).reshape(q.shape) * scale,",
     "(ds @ k[:, :, None]).reshape(q.shape),", "attention VJP for q misses the scale"),
    ("softmax_vjp_sign", "ops", "ministeer/ops.py", "d = g - raw.sum(d, axis=-1, keepdims=True)",
     "d = g + raw.sum(d, axis=-1, keepdims=True)", "softmax VJP sign"),
    ("rope_sign", "ops", "ministeer/ops.py", "return raw.concatenate([-x[..., half:], x[..., :half]], axis=-1)",
     "return raw.concatenate([x[..., half:], -x[..., :half]], axis=-1)", "RoPE rotates the other way"),
    ("rope_freq", "ops", "ministeer/ops.py", "(raw.arange(0, d_head, 2, dtype=raw.float64) / d_head)",
     "(raw.arange(0, d_head, 2, dtype=raw.float64) / (d_head // 2))", "RoPE frequencies over d/2 not d"),
    ("rope_vjp_sign", "ops", "ministeer/ops.py", "lambda g: g * cos - _rotate_half(g * sin)",
     "lambda g: g * cos + _rotate_half(g * sin)", "RoPE VJP rotates forward instead of back"),
    ("ce_vjp_unnormalized", "ops", "ministeer/ops.py", "return (g / raw.sum(weights)) * weights[:, None] * delta",
     "return g * weights[:, None] * delta", "cross-entropy gradient not divided by the mask count"),
    ("ce_mean_over_all", "ops", "ministeer/ops.py", "return raw.sum(weights * nll) / raw.sum(weights)",
     "return raw.sum(weights * nll) / weights.size", "masked loss averaged over every position"),
    ("qr_vjp_no_copyltu", "ops", "ministeer/ops.py", "B = g.T + Q @ (raw.tril(M) + lower.T)",
     "B = g.T + Q @ raw.tril(M)", "QR VJP without copyltu's mirrored lower triangle"),
    ("qr_sign_unfixed", "ops", "ministeer/ops.py", "return Q * signs, R * signs[:, None]", "return Q, R",
     "Householder QR's signs kept: not Gram-Schmidt's rows"),
    ("qr_jvp_no_skew", "ops", "ministeer/ops.py", "return (dA - Q @ C + Q @ (lower - lower.T)).T",
     "return (dA - Q @ C).T", "QR JVP without the skew rotation inside span(Q)"),
    # ---------------------------------------------------------------- model
    ("loss_mask_shift", "model", "ministeer/checks.py", "_as_rows(mask, \"mask\", tokens.shape)[:, 1:]",
     "_as_rows(mask, \"mask\", tokens.shape)[:, :-1]", "completion mask of the read token, not the predicted one"),
    ("init_out_std", "model", "ministeer/model.py", "out_std = std / (2 * cfg.n_layers) ** 0.5",
     "out_std = std", "residual writes not scaled by 1/sqrt(2L) at init"),
    ("init_norm_gain", "model", "ministeer/model.py", "values[name] = np.ones(shape)",
     "values[name] = np.full(shape, 0.5)", "norm gains start at 0.5"),
    ("norm_eps_ignored", "model", "ministeer/model.py", 'return ops.rms_norm(x, p["weight"], cfg.norm_eps)',
     'return ops.rms_norm(x, p["weight"], 1e-5)', "the config's norm eps is ignored"),
    ("attn_scale", "model", "ministeer/model.py", "1.0 / dh ** 0.5", "1.0 / dh", "attention scale 1/d_head"),
    ("ln2_reads_ln1", "model", "ministeer/model.py", 'norm(h, p["post_attention_layernorm"], cfg)',
     'norm(h, p["input_layernorm"], cfg)', "the MLP's norm uses the attention norm's weights"),
    ("swiglu_swapped", "model", "ministeer/model.py", "ops.swiglu(gate, up)", "ops.swiglu(up, gate)",
     "gate and up projections swapped"),
    ("positions_reversed", "model", "ministeer/model.py", "raw.arange(T)), (1, T, cfg.d_model))",
     "raw.arange(T)[::-1]), (1, T, cfg.d_model))", "learned positions read backwards"),
    ("cache_before_hooks", "model", "ministeer/model.py", "merged.setdefault(name, []).append(record)",
     "merged.setdefault(name, []).insert(0, record)", "run_with_cache records before the user's hooks"),
    ("norm_bias_follows_flag", "adapters", "ministeer/model.py",
     '{"bias": (d,)} if cfg.norm == "layer" else {}', '{"bias": (d,)} if cfg.bias else {}',
     "norm bias tied to cfg.bias (count and layout)"),
    # ---------------------------------------------------------------- sites
    ("hooks_replace", "sites", "ministeer/sites.py", "resolved.setdefault(name, []).extend(fns)",
     "resolved[name] = list(fns)", "a second key for the same site drops the first key's hooks"),
    ("alias_post_block", "sites", "ministeer/sites.py", '"post_block": "hook_resid_post"',
     '"post_block": "hook_resid_mid"', "post_block aliased to the mid stream"),
    # ---------------------------------------------------------------- adapters
    ("lowrank_default_site", "adapters", "ministeer/adapters/steer.py", 'def lowrank(cfg, sites="post_block"',
     'def lowrank(cfg, sites="post_mlp"', "the paper's adapter defaults to post-MLP"),
    ("lowrank_no_alpha", "adapters", "ministeer/adapters/steer.py", 'return spec["alpha"] * (z @ p["U"].T)',
     'return (z @ p["U"].T)', "alpha ignored"),
    ("lowrank_U_nonzero", "adapters", "ministeer/adapters/steer.py", '"U": np.zeros(shape["U"])}',
     '"U": kaiming_uniform(rng, shape["U"]) * spec["init_scale"]}', "adapter is not a no-op at init"),
    ("reft_gs_once", "adapters", "ministeer/ops.py", "for _ in range(2):", "for _ in range(1):",
     "Gram-Schmidt run once"),
    ("loreft_sign", "adapters", "ministeer/adapters/reft.py", '((h @ (p["W"] - R).T) + p["b"]) @ R',
     '((h @ (p["W"] + R).T) + p["b"]) @ R', "LoReFT adds R h instead of subtracting it"),
    ("lora_rslora_swapped", "adapters", "ministeer/adapters/lora.py",
     'float(spec["alpha"]) / (r ** 0.5 if spec["rslora"] else r)',
     'float(spec["alpha"]) / (r if spec["rslora"] else r ** 0.5)', "rsLoRA and LoRA scalings swapped"),
    ("joint_modes_swapped", "adapters", "ministeer/adapters/joint.py",
     'return {**steer_params, "D": D - (D @ V) @ V.T}',
     'return {**steer_params, "U": steer_params["U"] - V @ (V.T @ steer_params["U"])}',
     "input-mode projection projects U"),
    ("positions_last_off_by_one", "adapters", "ministeer/adapters/positions.py", "(t >= P - last) & (t < P)",
     "(t > P - last) & (t < P)", "pyreft 'l<k>' picks k-1 tokens"),
    # ---------------------------------------------------------------- theory
    ("share_inverted", "theory", "ministeer/theory/where.py", "share=mlp_change / max(block_change, 1e-300)",
     "share=block_change / max(mlp_change, 1e-300)", "MLP share inverted"),
    ("variation_first_token", "theory", "ministeer/theory/where.py", "flat - raw.mean(flat, axis=0)",
     "flat - flat[0]", "spread centred on the first token, not the mean"),
    ("outside_orthonormal_only", "theory", "ministeer/theory/where.py",
     "return t - (t @ raw.linalg.pinv(W).T) @ W.T", "return t - (t @ W) @ W.T",
     "projector valid only for orthonormal W"),
    ("oblique_is_orthogonal", "theory", "ministeer/theory/where.py", "return Y @ raw.linalg.pinv(YS)[:k]",
     "return Y @ raw.linalg.pinv(Y)", "orthogonal projector instead of the oblique one"),
    ("random_update_unscaled", "theory", "ministeer/theory/first_order.py",
     "delta[name] = from_numpy(d * (scale * ref / np.linalg.norm(d)), leaf.dtype)",
     "delta[name] = from_numpy(d * scale, leaf.dtype)", "update size not relative to the weight"),
    ("silu_slope_theory", "theory", "ministeer/theory/glu.py", "return g * (1.0 + a * (1.0 - g))",
     "return g * (1.0 + a * g)", "closed-form SiLU' wrong"),
    ("dy_no_gate_path", "theory", "ministeer/theory/glu.py",
     "dm = act_slope(a_g, cfg) * a_u * da_g + act(a_g, cfg) * da_u", "dm = act(a_g, cfg) * da_u",
     "dy_FT drops the gated path"),
    ("jacobian_wrong_slope", "theory", "ministeer/theory/glu.py", "+ act(a_g, cfg)[..., :, None] * W_u",
     "+ act_slope(a_g, cfg)[..., :, None] * W_u", "A(h) uses s' where s belongs"),
    ("oracle_on_output", "theory", "ministeer/theory/oracle.py", "return x + shift_at(layer, seen[layer])",
     "return x + shift_at(layer, x)", "oracle shift evaluated on the block output"),
    ("loreft_update_sign", "theory", "ministeer/theory/reft.py", "return (R.T @ W - R.T @ R) @ W_d",
     "return (R.T @ W + R.T @ R) @ W_d", "effective ReFT update sign"),
    ("best_constant_first", "theory", "ministeer/theory/fitting.py", "xbar = raw.mean(xs, axis=0)\n    return dW @ xbar",
     "xbar = xs[0]\n    return dW @ xbar", "best constant taken at the first input"),
    ("translate_no_eps", "theory", "ministeer/theory/translate.py",
     "return eps * block_first_order_shift(params, delta, h, cfg, layer)[1]",
     "return block_first_order_shift(params, delta, h, cfg, layer)[1]", "translated shift ignores eps"),
    ("settled_keeps_all", "theory", "ministeer/theory/scaling.py", "        pts = pts[1:]\n",
     "        break\n", "settled slope never drops the bent start"),
    # ---------------------------------------------------------------- train
    ("decay_unscheduled", "train", "ministeer/train.py",
     "        step += self.weight_decay * p\n        step *= lr\n",
     "        step *= lr\n        step += self._lr(0, 1.0) * self.weight_decay * p\n",
     "weight decay at the peak rate, not the scheduled one"),
    ("bias_correction", "train", "ministeer/train.py", "c1, c2 = 1.0 - b1 ** self.step_count, 1.0 - b2 ** self.step_count",
     "c1, c2 = 1.0 - b1 ** (self.step_count + 1), 1.0 - b2 ** (self.step_count + 1)", "Adam bias correction one step ahead"),
    ("warmup_from_zero", "train", "ministeer/train.py", "return lr * (step + 1) / warmup",
     "return lr * step / warmup", "warmup starts at lr 0 (a wasted step)"),
    ("cosine_quarter", "train", "ministeer/train.py", "0.5 * (1.0 + math.cos(math.pi * progress))",
     "math.cos(0.5 * math.pi * progress)", "cosine schedule of the wrong shape"),
    ("clip_max", "train", "ministeer/train.py", "scale = raw.minimum(1.0, clip /", "scale = raw.maximum(1.0, clip /",
     "clipping scales gradients up"),
    ("adam_v_uses_b1", "train", "ministeer/train.py", "        v *= b2\n",
     "        v *= b1\n", "second moment decays with beta1"),
    # ---------------------------------------------------------------- tasks and gates
    ("benchmark_is_pair_00", "tasks", "ministeer/tasks/generators.py", "BENCHMARK = 9  #", "BENCHMARK = 0  #",
     "the benchmark is format 0, which the base composes by itself"),
    ("boxed_style_1", "tasks", "ministeer/tasks/generators.py", "answers + (boxed(answers[0]),)",
     "answers + (boxed(answers[1]),)", "the boxed answer wraps the wrong style"),
    ("pretrain_sees_boxed", "tasks", "ministeer/tasks/generators.py",
     "PRETRAINED = tuple(range(1, N_NOTATIONS * N_STYLES))", "PRETRAINED = tuple(range(1, N_NOTATIONS * N_STYLES + 1))",
     "pretraining includes the benchmark pair"),
    ("official_no_unbox", "tasks", "ministeer/tasks/extract.py", "        reference = reference[1:-1]\n",
     "        pass\n", "the official rule compares against the brackets"),
    ("official_boolq_whole_answer", "tasks", "ministeer/tasks/extract.py",
     "return extract_bool(output) == extract_bool(reference)", "return extract_bool(output) == reference",
     "the official BoolQ rule compares the verdict with the whole chained answer (f0 false)"),
    ("boolq_restates_asked_object", "tasks", "ministeer/tasks/generators.py",
     'yes, fact = self.label(problem), f"{who}{dict(facts)[who]}"', 'yes, fact = self.label(problem), f"{who}{problem[2]}"',
     "the chained answer restates the asked object, not the one the passage gives"),
    ("gate_headroom_sign", "tasks", "ministeer/experiments/gates.py",
     'headroom=row["held_out_exact"] <= row["seen_mean"] - HEADROOM_MIN',
     'headroom=row["held_out_exact"] >= row["seen_mean"] - HEADROOM_MIN', "headroom gate inverted"),
    # ---------------------------------------------------------------- report (the results page)
    ("interval_no_sampling", "report", "ministeer/experiments/stats.py",
     "draws = (rng.binomial(n[picks], acc[picks]) / n[picks]).mean(axis=1)", "draws = acc[picks].mean(axis=1)",
     "the 95% interval leaves out test sampling error"),
    ("learned_strict", "report", "ministeer/experiments/stats.py", "learned=int((acc >= LEARNED).sum())",
     "learned=int((acc > LEARNED).sum())", "a seed at exactly 50% does not count as having learned the format"),
    ("paired_problems_independent", "report", "ministeer/experiments/stats.py", "    if counts is not None:  # pairs",
     "    if False:  # pairs", "two runs' verdicts on the same problems are redrawn independently"),
    ("paired_unpaired", "report", "ministeer/experiments/stats.py",
     "    b_side = [[b[u, t] for t in tasks] for u in units]  #", "    b_side = [[b[u, t] for t in tasks] for u in units[::-1]]  #",
     "a comparison pairs the seeds of one side with other seeds of the other"),
    ("verdict_wrong_side", "report", "ministeer/experiments/stats.py",
     'return "holds" if (lo > 0) == (side > 0) else "does not hold"', 'return "holds" if lo > 0 else "does not hold"',
     "the verdict ignores which side the claim is on"),
    ("verdict_no_level", "report", "ministeer/experiments/stats.py", '    if lo <= 0 <= hi:\n        return "level"\n', "",
     "an interval that holds 0 gets a verdict as if it did not"),
    ("comparison_wrong_side", "report", "ministeer/experiments/report.py",
     'c["verdict"] = stats.verdict(c["lo"], c["hi"], side)', 'c["verdict"] = stats.verdict(c["lo"], c["hi"], -side)',
     "the verdict table reads each claim backwards"),
    ("comparison_no_loreft_all", "report", "ministeer/experiments/report.py",
     '               ("Post-block r=8 − LoReFT r=8 at every position", REFERENCE, "loreft_all", +1),\n', "",
     "the questions table leaves out post-block against ReFT at every position"),
    ("cell_not_its_runs", "report", "ministeer/experiments/report.py", "dict(**stats.cell(runs, settings.n_test)",
     "dict(**stats.cell(runs[:1], settings.n_test)", "a cell's statistics leave out some of its seeds"),
    ("figure_one_seed", "report", "ministeer/experiments/figures.py", 'for point in rows[m]["tasks"][task]["points"]]',
     'for point in rows[m]["tasks"][task]["points"][:1]]', "the seed figure shows one seed per cell"),
    ("cell_ignores_init_seeds", "report", "ministeer/experiments/report.py",
     "(len(init_seeds) if init_seeds else 1)", "1", "a cell of several init seeds is counted as one seed's"),
    ("signature_no_base", "report", "ministeer/experiments/compare.py",
     '    core["base_sha256"] = _file_digest(str(base_path), stat.st_mtime_ns, stat.st_size)\n', "",
     "a resume reuses the runs of another base checkpoint"),
    ("render_no_joint_modes", "report", "ministeer/experiments/report.py", "    if modes:\n        table +=",
     "    if False:\n        table +=", "the table leaves out the joint methods' inference modes"),
    ("forced_off_by_one", "tasks", "ministeer/tasks/evaluate.py",
     "predicted[b, n - 1:n - 1 + len(a)] == buf[b, n:n + len(a)]", "predicted[b, n:n + len(a)] == buf[b, n:n + len(a)]",
     "forced exact match compares each choice with its own token, not the next"),
    ("forced_no_eos", "tasks", "ministeer/tasks/evaluate.py",
     "predicted[b, n - 1:n - 1 + len(a)] == buf[b, n:n + len(a)]",
     "predicted[b, n - 1:n - 2 + len(a)] == buf[b, n:n - 1 + len(a)]", "forced exact match never checks the <eos>"),
    ("forced_prompt_lengths", "tasks", "ministeer/tasks/evaluate.py", "logits_fn(buf, lengths)",
     "logits_fn(buf, lengths + 1)", "forced pass gives adapters the wrong prompt lengths"),
    # ---------------------------------------------------------------- exercises
    ("grading_header_last", "exercises", "ministeer/exercises/__init__.py",
     "    print(answers.describe())  # first, before any checker's pass message: what is being graded\n"
     "    results = grade_loaded(answers, args.only)\n",
     "    results = grade_loaded(answers, args.only)\n    print(answers.describe())\n",
     "the checkers' pass messages come before the line naming the graded files"),
    ("class_load_error_hidden", "exercises", "ministeer/exercises/classroom.py", "    failures += [msg for",
     "    failures = [msg for", "a student's file that did not load is not the first hint"),
    ("class_plain_write", "exercises", "ministeer/exercises/classroom.py",
     'atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text, "utf8"))', 'path.write_text(text, "utf8")',
     "the class tables are written in place, not atomically"),
    ("class_hidden_folders", "exercises", "ministeer/exercises/classroom.py",
     'p.is_dir() and not p.name.startswith((".", "_"))', "p.is_dir()", "a hidden folder is graded as a student"),
    # ---------------------------------------------------------------- safety (no command loses work)
    ("compare_truncates_log", "safety", "ministeer/experiments/compare.py",
     "    if log_path:\n        check_log(log_path, resume)\n",
     "    if log_path and not resume:\n        Path(log_path).write_text('')\n",
     "a start without --resume empties a log that holds finished runs"),
    ("compare_log_not_checked", "safety", "ministeer/experiments/compare.py",
     "            check_log(log, args.resume)\n", "            pass\n",
     "compare checks its logs only when it reaches them (after a sweep)"),
    ("fresh_deletes_log", "safety", "ministeer/experiments/runlog.py", "    os.replace(path, target)\n",
     "    path.unlink()\n", "--fresh deletes the old log instead of moving it aside"),
    ("lock_not_taken", "safety", "ministeer/usage.py", "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass",
     "the output folder is not locked: two commands write into it at once"),
    ("compare_base_checked_late", "safety", "ministeer/experiments/compare.py",
     "    try:  # every input is checked before the output folder is touched\n        load_base(args.base)\n",
     "    try:  # every input is checked before the output folder is touched\n        pass\n",
     "a damaged --base is found only after the output folder is touched"),
    ("pretrain_init_not_identified", "safety", "ministeer/experiments/pretrain.py",
     '"init_params" if init is None else "sha256:" + fingerprint(init)', '"init_params" if init is None else "given"',
     "a pretraining resume continues the checkpoint of another --init-from start"),
    ("partial_cell_unmarked", "safety", "ministeer/experiments/report.py",
     """partial = f" ({t['n_runs']} of {n_seeds} seeds)" if t["n_runs"] < n_seeds else \"\"""", "partial = ''",
     "a cell with fewer seeds than asked looks finished"),
    ("incomplete_note_no_partial", "safety", "ministeer/experiments/report.py",
     'partial = sum(0 < t["n_runs"] < asked for t in cells)', "partial = 0",
     "nothing above the table says that some cells lack seeds"),
    ("cli_steps_any_int", "safety", "ministeer/experiments/pretrain.py", "TYPES = dict(steps=positive_int,",
     "TYPES = dict(steps=int,", "pretrain --steps takes 0 or a negative number"),
    ("cli_float_inf", "safety", "ministeer/usage.py", "if not (math.isfinite(value) and value > 0):",
     "if not value > 0:", "--lr inf (and --clip inf) pass the parser"),
    ("table_written_in_place", "safety", "ministeer/experiments/report.py",
     'write_text_atomic(out / "table.md", table', '(out / "table.md").write_text(table',
     "table.md is written in place, not atomically"),
    # ---------------------------------------------------------------- loading (sizes and config fields)
    ("layer_count_unchecked", "loading", "ministeer/io/arrays.py",
     "    check_layer_count(cfg, len(arrays), repr(str(path)))\n", "",
     "a model file's claimed layers are listed before they are compared with the file"),
    ("hf_layer_count_unchecked", "loading", "ministeer/io/hf.py",
     "    check_layer_count(cfg, len(tensors), source, _LAYERS_FIELD[arch], expected_hf_shapes)\n", "",
     "config.json's claimed layers are listed before they are compared with the file"),
    ("npz_no_inflation_limit", "loading", "ministeer/io/arrays.py", "_MAX_INFLATION, _INFLATION_SLACK = 100, 1 << 24",
     "_MAX_INFLATION, _INFLATION_SLACK = 100, 1 << 40", "an .npz decompression bomb is decompressed"),
    ("npz_declared_unchecked", "loading", "ministeer/io/arrays.py", " or declared > info.file_size:", ":",
     "an .npz member's header is trusted: its claimed shape is allocated"),
    ("metadata_falsy_default", "loading", "ministeer/io/arrays.py",
     "    metadata = {} if metadata is None else metadata", "    metadata = metadata or {}",
     "a safetensors __metadata__ of 0 or \"\" is read as none"),
    ("schema_bool_is_int", "loading", "ministeer/io/hf.py", "    return isinstance(v, int) and not isinstance(v, bool)",
     "    return isinstance(v, int)", "config.json's true is read as the size 1"),
    ("schema_skips_nested", "loading", "ministeer/io/hf.py",
     "value = value.get(inner) if isinstance(value, dict) else None", "value = None",
     "rope_parameters' own fields go unchecked"),
    ("listed_all", "loading", "ministeer/io/arrays.py", "_LISTED = 5  #", "_LISTED = 10 ** 9  #",
     "a mismatch error lists every tensor"),
    ("hf_shapes_untransposed", "loading", "ministeer/io/hf.py", "shapes[ours][::-1] if t else shapes[ours]",
     "shapes[ours]", "GPT-2's Conv1D weights expected [out, in]"),
    # ---------------------------------------------------------------- LoFiT and JoLA
    ("select_lr", "heads", "ministeer/adapters/lofit.py", "lr=lr / 20 if select_lr is None else select_lr",
     "lr=lr if select_lr is None else select_lr", "LoFiT's head selection trains at lr, not the default lr / 20"),
    ("lofit_rows", "heads", "ministeer/adapters/lofit.py", 'heads = select_heads(head_norms(scale), spec["k"], rows)',
     'heads = select_heads(head_norms(scale), spec["k"])',
     "with layers=[...], the norm rows are read as layers 0..n-1: the wrong heads are kept"),
    ("select_lr_ignored", "heads", "ministeer/adapters/lofit.py", "lr=lr / 20 if select_lr is None else select_lr",
     "lr=lr / 20", "LoFiT's select_lr is ignored"),
    ("lofit_l1_default", "heads", "ministeer/adapters/lofit.py", "dict(layers=None, l1=5e-3, init_std=1e-3",
     "dict(layers=None, l1=5e-4, init_std=1e-3", "LoFiT's L1 default changed"),
    ("lofit_keeps_scales", "heads", "ministeer/adapters/lofit.py", "    return with_trainable(offsets, result.params), result\n",
     "    return {**with_trainable(offsets, result.params), **({} if selection is None else {\"scale\": scale})}, result\n",
     "LoFiT returns step 1's scaling vectors beside the offsets"),
    ("jola_noise_shared", "heads", "ministeer/adapters/jola.py",
     '"u1": (1 - 2 * e) * rng.random(cfg.n_heads) + e,',
     '"u1": (1 - 2 * e) * np.full(cfg.n_heads, rng.random()) + e,',
     "one gate-noise draw shared by every head of a layer"),
    ("jola_schedule_frozen", "heads", "ministeer/adapters/core.py",
     "value = value + kinds[name].penalty(cfg, a.spec, a.params, step)",
     "value = value + kinds[name].penalty(cfg, a.spec, a.params, 0)",
     "the penalty always sees step 0: JoLA's lam_t never decays"),
    ("jola_schedule_from_one", "heads", "ministeer/adapters/jola.py",
     'np.exp(-spec["gate_decay"] * step)', 'np.exp(-spec["gate_decay"] * (step + 1))',
     "JoLA's lam_t counted from step 1: 0.1 e^-0.01 at the first step"),
    ("jola_u2_noiseless", "heads", "ministeer/adapters/jola.py",
     '"u2": (1 - 2 * e) * rng.random(cfg.n_heads) + e}',
     '"u2": np.full(cfg.n_heads, 0.5)}', "JoLA's second gate trained without noise (u = 1/2)"),
    ("offsets_at_select_lr", "heads", "ministeer/adapters/lofit.py", "trainable_of(offsets), data, steps=steps, lr=lr,",
     "trainable_of(offsets), data, steps=steps, lr=lr / 20,", "LoFiT's offsets train at the selection rate lr / 20"),
    ("jola_penalty_edited_layers", "heads", "ministeer/adapters/jola.py",
     "return (lam * p1 + (1.0 - lam) * p2) / (cfg.n_layers * cfg.n_heads)",
     "return (lam * p1 + (1.0 - lam) * p2) / (len(params) * cfg.n_heads)",
     "JoLA's penalty divided by the edited layers' heads, not the model's L H"),
    ("jola_eval_tempered", "heads", "ministeer/adapters/jola.py", "        s = _sigmoid(log_alpha)\n",
     "        s = _sigmoid(log_alpha / spec[\"temperature\"])\n", "JoLA's evaluation gates divided by the temperature"),
    # ---------------------------------------------------------------- ReFT variants and the joint modes
    ("direft_affine", "reft_joint", "ministeer/adapters/reft.py", '    return R.T, p["W"], p["b"] @ R\n',
     '    return R.T, p["W"] - R, p["b"] @ R\n', "DiReFT's affine form (the one fold uses) copied from LoReFT: W - R"),
    ("direft_width", "reft_joint", "ministeer/adapters/reft.py", 'if too_wide and spec["kind"] in ORTHONORMAL:',
     'if too_wide and spec["kind"] == "loreft":', "r > d refused for LoReFT only: an orthonormal DiReFT with r > d builds"),
    ("nodireft_affine_no_bias", "reft_joint", "ministeer/adapters/reft.py",
     'affine=lambda spec, p: (p["R"].T, p["W"], p["b"] @ p["R"])', 'affine=lambda spec, p: (p["R"].T, p["W"], None)',
     "NoDiReFT's affine form drops the bias R^T b"),
    ("joint_official_basis", "reft_joint", "ministeer/adapters/joint.py",
     'mode, basis = OFFICIAL["side"], OFFICIAL["basis"]', 'mode = OFFICIAL["side"]',
     'project_joint(mode="official") keeps the caller\'s basis, not the official full-r basis'),
    ("joint_rank_no_tolerance", "reft_joint", "ministeer/adapters/joint.py", "return U[:, : int((S > tol).sum())]",
     "return U[:, : int((S > 0).sum())]", "the rank basis counts rounding-level singular values as directions"),
    # ---------------------------------------------------------------- positions
    ("first_unclamped", "positions", "ministeer/adapters/positions.py", "chosen = (t < raw.minimum(first, P)) |",
     "chosen = (t < first) |", "pyreft's f<k> not clamped to the prompt: f7 on a short prompt edits completion tokens"),
    ("prompt_length_uncut", "positions", "ministeer/adapters/positions.py", "        P = raw.minimum(P, n_pos)\n", "",
     "a prompt longer than the input is not cut to it: l<k> edits nothing"),
    ("negative_positions_unwrapped", "positions", "ministeer/adapters/positions.py",
     "hit = (t == as_backend_array(arr % n_pos)[:, None])", "hit = (t == as_backend_array(arr)[:, None])",
     "negative int positions edit nothing"),
    ("no_completion_prompt_zero", "positions", "ministeer/adapters/positions.py",
     "raw.argmax(m, axis=1), m.shape[1])", "raw.argmax(m, axis=1), 0)",
     "a row with no supervised token gets prompt length 0, not T"),
    ("positions_range_off_by_one", "positions", "ministeer/adapters/positions.py", "arr.max() >= n_pos",
     "arr.max() > n_pos", "int position T accepted and read as position 0"),
    ("positions_empty_accepted", "positions", "ministeer/adapters/positions.py",
     "parse_first_last(positions) == (0, 0)", "parse_first_last(positions) == (-1, -1)",
     "f0 / l0 accepted: an adapter that edits nothing trains as a silent no-op"),
    # ---------------------------------------------------------------- checkpoints, io and train resume
    ("ckpt_oldest", "checkpoints", "ministeer/io/state.py", "        found = latest_checkpoint(resume)\n",
     "        found = next((p for _, p in list_checkpoints(resume)), None)\n",
     "resume=folder continues from the oldest kept checkpoint instead of the newest"),
    ("latest_is_oldest", "checkpoints", "ministeer/io/state.py", "return found[-1][1] if found else None",
     "return found[0][1] if found else None", "resume=True continues from the oldest kept checkpoint"),
    ("ckpt_by_mtime", "checkpoints", "ministeer/io/state.py", "    return sorted(found)\n",
     "    return sorted(found, key=lambda sp: sp[1].stat().st_mtime_ns)\n",
     "checkpoints ordered by file age, not by step"),
    ("resume_file_to_newest", "checkpoints", "ministeer/io/state.py", "    return resume\n",
     "    return latest_checkpoint(resume.parent)\n", "resume=<file> continues from the folder's newest instead"),
    ("run_without_seed", "checkpoints", "ministeer/adapters/methods.py",
     '"seed": seed, "intervene_last": intervene_last}', '"intervene_last": intervene_last}',
     "a checkpoint's run leaves out the seed: a resume under another seed is accepted"),
    ("digest_no_shape", "checkpoints", "ministeer/io/arrays.py", "h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())",
     "h.update(json.dumps([name, a.dtype.str]).encode())", "the file digest ignores tensor shapes"),
    ("digest_no_name", "checkpoints", "ministeer/io/arrays.py", "h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())",
     "h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())", "the file digest ignores tensor names"),
    ("ckpt_structure_no_dtype", "checkpoints", "ministeer/io/state.py", "[[list(p), list(leaf.shape), str(leaf.dtype)]",
     "[[list(p), list(leaf.shape)]", "a checkpoint of another dtype is resumed, not refused"),
    ("fit_step_from_resume", "checkpoints", "ministeer/train.py", "value_and_grad_fn(trainable, batch, step) if pass_step",
     "value_and_grad_fn(trainable, batch, step - start) if pass_step",
     "fit counts the objective's steps from the resume: JoLA redraws the first steps' noise"),
    ("fit_step_not_passed", "checkpoints", "ministeer/adapters/methods.py", '"intervene_last": intervene_last}, pass_step=True,',
     '"intervene_last": intervene_last}, pass_step=False,', "train_method does not pass the step: every call fails"),
    # ---------------------------------------------------------------- compare: signature, seeds, draws
    ("signature_no_data_seed", "compare", "ministeer/experiments/compare.py",
     '"seeds", "init_seeds", "recipe")}',
     '"seeds", "init_seeds", "recipe", "data_seed")}',
     "the signature leaves out the data seed: a resume reuses runs on other problems"),
    ("signature_no_steps", "compare", "ministeer/experiments/compare.py",
     '"seeds", "init_seeds", "recipe")}',
     '"seeds", "init_seeds", "recipe", "steps")}',
     "the signature leaves out the steps: a resume reuses runs trained for another number of steps"),
    ("draw_ignores_seed", "compare", "ministeer/experiments/compare.py",
     '(0 if split == "val" else seed))', "0)", "every seed trains and is scored on the same problems"),
    ("val_follows_seed", "compare", "ministeer/experiments/compare.py", '(0 if split == "val" else seed))',
     "seed)", "the validation draw follows the run's seed"),
    ("batches_ignore_seed", "compare", "ministeer/experiments/compare.py",
     "batch_sampler(train, settings.batch_size, seed=seed)", "batch_sampler(train, settings.batch_size, seed=0)",
     "every seed sees the batches in the same order"),
    ("train_ignores_seed", "compare", "ministeer/experiments/compare.py",
     "    init_seed = seed if init_seed is None else init_seed\n", "    init_seed = 0 if init_seed is None else init_seed\n",
     "every seed starts from the same adapter init"),
    ("init_seed_ignored", "compare", "ministeer/experiments/compare.py", "lr=lr, seed=init_seed, clip=settings.clip,",
     "lr=lr, seed=seed, clip=settings.clip,", "--init-seeds changes nothing: the adapter's init follows the run's seed"),
    ("init_seed_moves_batches", "compare", "ministeer/experiments/compare.py",
     "batch_sampler(train, settings.batch_size, seed=seed)", "batch_sampler(train, settings.batch_size, seed=init_seed)",
     "the init seed also reorders the batches: init spread is mixed with batch-order spread"),
    ("init_seed_moves_draw", "compare", "ministeer/experiments/compare.py",
     'train = problems(task, "train", seed, settings)', 'train = problems(task, "train", init_seed, settings)',
     "the init seed also redraws the problems"),
    ("plan_ignores_init_seeds", "compare", "ministeer/experiments/compare.py",
     "for init in (settings.init_seeds or (seed,))", "for init in (seed,)", "--init-seeds plans no extra runs"),
    ("job_key_no_init_seed", "compare", "ministeer/experiments/compare.py",
     'r["seed"], r.get("init_seed", r["seed"]), float(r["lr"])', 'r["seed"], float(r["lr"])',
     "a resume reuses a run of another init seed"),
    ("headline_two_seeds", "compare", "ministeer/experiments/compare.py", "    seeds: tuple = (0, 1, 2, 3, 4)\n",
     "    seeds: tuple = (0, 1)\n", "the headline runs 2 seeds"),
    ("record_no_correct", "compare", "ministeer/experiments/compare.py", '"1" if c else "0" for c in correct',
     '"1" for c in correct', "the per-problem verdicts are not what the scoring gave"),
    ("sweep_first_seed_only", "compare", "ministeer/experiments/rates.py",
     '                runs = list(point["seeds"].values())\n', '                runs = list(point["seeds"].values())[:1]\n',
     "the sweep picks by the first seed alone"),
    ("sweep_mean_skips_diverged", "compare", "ministeer/experiments/rates.py",
     '                runs = list(point["seeds"].values())\n',
     '                runs = [x for x in point["seeds"].values() if x["accuracy"] is not None] or '
     'list(point["seeds"].values())\n', "a seed that diverged is skipped, not counted against its rate"),
    ("sweep_one_seed", "compare", "ministeer/experiments/rates.py", "SWEEP_SEEDS = 2 ", "SWEEP_SEEDS = 1 ",
     "the sweep scores each rate on one seed"),
    ("base_one_draw", "compare", "ministeer/experiments/compare.py",
     "_examples(task, \"test\", settings.n_test, settings.data_seed + seed)",
     "_examples(task, \"test\", settings.n_test, settings.data_seed)", "the base is scored on one test draw only"),
    ("job_key_no_split", "compare", "ministeer/experiments/compare.py",
     'float(r["lr"]), r.get("split", "test"),', 'float(r["lr"]),',
     "a resume reuses a sweep's validation run as a test run"),
    ("sweep_ties_larger", "compare", "ministeer/experiments/rates.py", 'for lr in sorted(by_lr):',
     'for lr in sorted(by_lr, reverse=True):', "the sweep breaks ties towards the larger rate"),
    ("sweep_prefers_higher_loss", "compare", "ministeer/experiments/rates.py", '(p["accuracy"], -p["val_loss"])', '(p["accuracy"], p["val_loss"])',
     "the sweep breaks accuracy ties towards the higher validation loss"),
    ("sweep_diverged_wins", "compare", "ministeer/experiments/rates.py", '(-1.0, -float("inf")) if p["accuracy"] is None',
     '(2.0, 0.0) if p["accuracy"] is None', "a diverged run wins the sweep"),
    ("sweep_last_seed", "compare", "ministeer/experiments/rates.py", "seeds = list(settings.seeds[:SWEEP_SEEDS])",
     "seeds = list(settings.seeds[-SWEEP_SEEDS:])", "the sweep runs with the last seeds, not the first"),
    ("signature_cached_by_path", "compare", "ministeer/experiments/compare.py",
     "_file_digest(str(base_path), stat.st_mtime_ns, stat.st_size)", "_file_digest(str(base_path), 0, 0)",
     "the base's digest cached per path: a base rewritten in place keeps the old signature"),
    ("modes_on_validation", "compare", "ministeer/experiments/compare.py",
     'if A.METHODS[method].orth is not None and split == "test":', "if A.METHODS[method].orth is not None:",
     "a joint method's inference modes are scored on validation runs too"),
    # ---------------------------------------------------------------- gates: thresholds, the probe
    ("gate_seen_min", "gates", "ministeer/experiments/gates.py", "HEADROOM_MIN, PROBE_GAP_MAX = 0.90, 0.0, 0.30, 0.10",
     "HEADROOM_MIN, PROBE_GAP_MAX = 0.80, 0.0, 0.30, 0.10", "the seen gate at 80%, not the documented 90%"),
    ("gate_probe_gap", "gates", "ministeer/experiments/gates.py", "HEADROOM_MIN, PROBE_GAP_MAX = 0.90, 0.0, 0.30, 0.10",
     "HEADROOM_MIN, PROBE_GAP_MAX = 0.90, 0.0, 0.30, 0.20", "the probe gate allows 20 points, not 10"),
    ("gate_seen_strict", "gates", "ministeer/experiments/gates.py", 'seen=row["seen_mean"] >= SEEN_MIN', 'seen=row["seen_mean"] > SEEN_MIN',
     "the seen gate fails at exactly 90%"),
    ("gate_held_out_nonstrict", "gates", "ministeer/experiments/gates.py", 'held_out=row["held_out_official"] > HELD_OUT_MIN',
     'held_out=row["held_out_official"] >= HELD_OUT_MIN', "the held-out gate passes a base that answers nothing"),
    ("gate_probe_sign", "gates", "ministeer/experiments/gates.py", 'probe=row["probe_held_out"] >= row["probe_seen_mean"] - PROBE_GAP_MAX',
     'probe=row["probe_held_out"] <= row["probe_seen_mean"] - PROBE_GAP_MAX', "the probe gate inverted"),
    ("probe_before_sep", "gates", "ministeer/experiments/gates.py", "where = np.array([len(e.prompt) + 1 for e in exs])",
     "where = np.array([len(e.prompt) for e in exs])", "the probe reads the token before <sep>"),
    ("probe_last_layer", "gates", "ministeer/experiments/gates.py", "xs_te[l], y_te) for l in range(cfg.n_layers))",
     "xs_te[l], y_te) for l in [cfg.n_layers - 1])", "the probe reads the last layer, not the best"),
    ("seen_on_test", "gates", "ministeer/experiments/gates.py", 'split = lambda fmt: "val" if fmt in PRETRAINED else "test"',
     'split = lambda fmt: "test"', "the pretrained pairs are scored on the test split"),
    ("held_out_exact_match", "gates", "ministeer/experiments/gates.py", 'n_ctx=cfg.n_ctx, match="official")', 'n_ctx=cfg.n_ctx, match="exact")',
     "the held-out gate scores exact match, not the official answer extraction"),
    ("seen_mean_with_benchmark", "gates", "ministeer/experiments/gates.py", "seen = [acc[f] for f in PRETRAINED]",
     "seen = [acc[f] for f in GATED]", "the seen mean includes the benchmark pair"),
    ("probe_mean_with_benchmark", "gates", "ministeer/experiments/gates.py", "probe_seen = float(np.mean([probes[f] for f in PRETRAINED]))",
     "probe_seen = float(np.mean([probes[f] for f in GATED]))", "the probe's seen mean includes the benchmark pair"),
    ("held_out_reads_format_0", "gates", "ministeer/experiments/gates.py", 'held_out_exact=acc[BENCHMARK]', 'held_out_exact=acc[0]',
     "the headroom gate reads format 0, not the benchmark pair"),
    ("probe_test_statistics", "gates", "ministeer/experiments/gates.py", "b = np.hstack([(x_test - mean) / scale",
     "b = np.hstack([(x_test - x_test.mean(0)) / scale", "the probe standardizes the test rows with their own mean"),
    # ---------------------------------------------------------------- evaluation: greedy, forced, batching
    ("exact_no_room_for_eos", "evaluate", "ministeer/tasks/evaluate.py",
     "        max_new = max(len(e.completion) for e in examples) + 1\n        correct",
     "        max_new = max(len(e.completion) for e in examples)\n        correct",
     "greedy exact match decodes no further than the reference: an answer that runs on counts"),
    ("greedy_reads_last_column", "evaluate", "ministeer/tasks/evaluate.py", "nxt = logits[rows, lengths - 1].argmax(-1)",
     "nxt = logits[:, -1].argmax(-1)", "every row's next token read at the batch's padded end"),
    ("greedy_lengths_grow", "evaluate", "ministeer/tasks/evaluate.py", "logits_fn(buf[:, :int(lengths.max())], prompt_lengths)",
     "logits_fn(buf[:, :int(lengths.max())], lengths)", "the prompt lengths given to adapters grow with the answer"),
    ("same_length_one_group", "evaluate", "ministeer/tasks/evaluate.py",
     "groups = [[i for i, n in enumerate(sizes) if n == size] for size in sorted(set(sizes))]",
     "groups = [list(range(len(prompts)))]", "same_length_batches decodes every prompt length in one batch"),
    ("chunk_drops_rows", "evaluate", "ministeer/tasks/evaluate.py", "chunk = rows[start:start + batch_size]",
     "chunk = rows[start:start + batch_size - 1]", "batching drops the last row of each chunk"),
    ("official_cut_at_reference", "evaluate", "ministeer/tasks/evaluate.py",
     "max_new = official_max_new(examples, n_ctx, tokenizer)", "max_new = max(len(e.completion) for e in examples) + 1",
     "official scoring decodes only the reference's length, not the task's max_new_tokens"),
    # ---------------------------------------------------------------- count: PEFT's convention
    ("count_full_as_added", "count", "ministeer/adapters/count.py", 'for s in specs if s["kind"] != "full")  # full FT',
     'for s in specs)  # full FT', "full FT's trainable base counted as added parameters: 50%, not 100%"),
    ("count_first_adapter_only", "count", "ministeer/adapters/count.py", 'added = sum(adapter_size(cfg, s) for s in specs if',
     'added = sum(adapter_size(cfg, s) for s in specs[:1] if', "only the first adapter of a joint method is added"),
    ("lofit_v_d_model", "count", "ministeer/adapters/lofit.py",
     'return {"unplaced": {"v": (spec["k"], cfg.d_head)}}',
     'return {"unplaced": {"v": (spec["k"], cfg.d_model)}}',
     "LoFiT's kept head vectors as wide as the residual stream, not d_head"),
    # ---------------------------------------------------------------- the registry: what sets each method apart
    ("method_attnout_site", "methods", "ministeer/adapters/methods.py", 'sites="blocks.*.hook_attn_out")', 'sites="blocks.*.hook_resid_mid")',
     "the attention-output ablation sits on the mid stream"),
    ("method_lora_r1_alpha", "methods", "ministeer/adapters/methods.py", "dict(LORA8_ALL, r=1, alpha=1.0)", "dict(LORA8_ALL, r=1)",
     "LoRA r=1 keeps alpha 8: scale 8 instead of 1"),
    ("method_direft_is_loreft", "methods", "ministeer/adapters/methods.py", '{"reft": dict(kind="direft", r=8, positions="f1+l1")}',
     '{"reft": dict(kind="loreft", r=8, positions="f1+l1")}', "the DiReFT row builds LoReFT"),
    ("method_submodules_one_site", "methods", "ministeer/adapters/methods.py", 'sites=["pre_mlp", "post_mlp"]', 'sites=["post_mlp"]',
     "--submodules without its pre-MLP adapter"),
    ("method_linear_is_silu", "methods", "ministeer/adapters/methods.py", 'dict(POSTBLOCK, activation="linear")}, "Post-block r=8 (linear)"',
     'dict(POSTBLOCK)}, "Post-block r=8 (linear)"', "the linear post-block variant uses SiLU"),
    ("method_reft_positions", "methods", "ministeer/adapters/methods.py", '{"reft": dict(kind="loreft", r=8, positions="f1+l1")}',
     '{"reft": dict(kind="loreft", r=8, positions="l1")}', "LoReFT edits the last prompt token only"),
    ("method_joint_output_mode", "methods", "ministeer/adapters/methods.py", 'orth=dict(mode="output", every="step")',
     'orth=dict(mode="input", every="step")', "the output-mode joint method projects the input side"),
    ("train_no_warmup", "methods", "ministeer/adapters/methods.py", "warmup=math.ceil(0.03 * steps) if warmup is None else warmup",
     "warmup=0 if warmup is None else warmup", "methods train without the paper code's 3% warmup"),
    ("train_cosine_default", "methods", "ministeer/adapters/methods.py", 'seed=0, schedule="linear", warmup=None',
     'seed=0, schedule="cosine", warmup=None', "methods train under a cosine schedule by default"),
    ("train_orth_every_ignored", "methods", "ministeer/adapters/methods.py", 'every = orth_every or orth.get("every")',
     'every = orth.get("every")', "train_method ignores orth_every"),
    ("reft_default_positions", "methods", "ministeer/adapters/reft.py",
     'FIELDS = dict(sites="post_block", layers=None, r=8, positions="f1+l1", share_weights=True)',
     'FIELDS = dict(sites="post_block", layers=None, r=8, positions="l1", share_weights=True)', "ReFT kinds default to the last prompt token only"),
    ("layers_ignored", "methods", "ministeer/sites.py", "        names = [n for n in names if split_name(n)[0] in layers]\n",
     "        names = names\n", "layers=[...] ignored: activation adapters edit every layer"),
    ("lora_layers_ignored", "methods", "ministeer/adapters/lora.py",
     'chosen = [p for p in chosen if p.startswith("model.layers.") and int(p.split(".")[2]) in layers]',
     'chosen = [p for p in chosen if p.startswith("model.layers.")]', "LoRA's layers=[...] ignored: every layer adapted"),
    # ---------------------------------------------------------------- fair baselines
    ("reft_unshared_not_doubled", "fair", "ministeer/adapters/reft.py",
     "    return {s: {**one(s), **{leaf + LAST: shape for leaf, shape in one(s).items()}} for s in spec[\"sites\"]}",
     "    return {s: one(s) for s in spec[\"sites\"]}", "share_weights=False declares one intervention's arrays"),
    ("reft_unshared_same_draw", "fair", "ministeer/adapters/reft.py",
     "out[s].update({leaf + LAST: a for leaf, a in init_one(cfg, shape, rng).items()})",
     "out[s].update({leaf + LAST: a for leaf, a in out[s].items()})",
     "the last positions' intervention starts as a copy of the first's"),
    ("reft_parts_same_arrays", "fair", "ministeer/adapters/reft.py",
     '({**spec, "positions": f"l{last}"}, at_last)]', '({**spec, "positions": f"l{last}"}, at_first)]',
     "unshared ReFT edits the last positions with the first positions' arrays"),
    ("reft_parts_swapped", "fair", "ministeer/adapters/reft.py",
     '[({**spec, "positions": f"f{first}"}, at_first), ({**spec, "positions": f"l{last}"}, at_last)]',
     '[({**spec, "positions": f"f{first}"}, at_last), ({**spec, "positions": f"l{last}"}, at_first)]',
     "unshared ReFT's two interventions swap their positions"),
    ("reft_parts_ignored", "fair", "ministeer/adapters/core.py",
     "([(spec, p)] if kind.parts is None else kind.parts(spec, p))", "[(spec, p)]",
     "the hooks ignore Kind.parts: unshared ReFT runs as one shared intervention"),
    ("loreft_all_prompt_only", "fair", "ministeer/adapters/methods.py",
     '"loreft_all": Method({"reft": dict(kind="loreft", r=8, positions=None)}',
     '"loreft_all": Method({"reft": dict(kind="loreft", r=8, positions="f1+l1")}',
     "loreft_all edits the prompt positions only"),
    ("lofit_k_ten_percent", "fair", "ministeer/adapters/lofit.py",
     "return max(1, math.ceil(SCRIPTS_SHARE * cfg.n_layers * cfg.n_heads))",
     "return max(1, int(0.1 * cfg.n_layers * cfg.n_heads))", "LoFiT's K back at the code's 10% fallback"),
    ("lofit_k_floor", "fair", "ministeer/adapters/lofit.py",
     "return max(1, math.ceil(SCRIPTS_SHARE * cfg.n_layers * cfg.n_heads))",
     "return max(1, int(SCRIPTS_SHARE * cfg.n_layers * cfg.n_heads))", "LoFiT's K rounded down"),
    ("recipe_jola_no_warmup", "fair", "ministeer/adapters/recipes.py", '"jola": Setup("cosine", None, 50,',
     '"jola": Setup("cosine", None, 0,', "JoLA's official setup without its 50 warmup steps"),
    ("recipe_joint_linear", "fair", "ministeer/adapters/recipes.py", '"joint": Setup("cosine", 0.06,',
     '"joint": Setup("linear", 0.06,', "the joint code's cosine schedule recorded as linear"),
    ("recipe_reft_warmup", "fair", "ministeer/adapters/recipes.py", '"reft": Setup("linear", 0.0, None, 5e-3,',
     '"reft": Setup("linear", 0.03, None, 5e-3,', "pyreft's setup given the steering code's 3% warmup"),
    ("recipe_shared_warmup", "fair", "ministeer/adapters/recipes.py", 'SHARED = Setup("linear", 0.03,',
     'SHARED = Setup("linear", 0.06,', "the shared recipe is not what the headline trains with"),
    ("compare_ignores_recipe", "fair", "ministeer/experiments/compare.py",
     "**A.fit_settings(method, settings.recipe, settings.steps))", '**A.fit_settings(method, "shared", settings.steps))',
     "compare --recipe official still trains every method under the shared recipe"),
    ("signature_counts_recipe", "fair", "ministeer/experiments/compare.py",
     '"seeds", "init_seeds", "recipe")}', '"seeds", "init_seeds")}',
     "the recipe changes the signature: committed runs no longer resume"),
    ("lrs_file_last_sweep_for_all", "compare", "ministeer/experiments/rates.py",
     "{**stored.get(\"swept\", {}).get(method, {}), **{t: scored_on for t in lrs.get(method, {})}}",
     "{t: scored_on for t in merged[method]}",
     "lrs.json says every rate came from the last sweep, whichever sweep chose it"),
    ("lrs_file_drops_stored", "compare", "ministeer/experiments/rates.py",
     "{**stored.get(\"lrs\", {}).get(method, {}), **lrs.get(method, {})}", "{**lrs.get(method, {})}",
     "a sweep of some tasks forgets the stored rates of the others"),
    ("in_short_counts_level_as_holds", "report", "ministeer/experiments/report.py",
     'holds = [t for t in settings.tasks if c["cells"][t]["verdict"] == "holds"]',
     'holds = [t for t in settings.tasks if c["cells"][t]["verdict"] != "does not hold"]',
     "the generated summary counts a level task as one where the claim holds"),
    ("in_short_average_of_first_task", "report", "ministeer/experiments/report.py",
     "average {row['avg']:.1f}{share}", "average {next(iter(cells))['mean']:.1f}{share}",
     "the generated summary quotes one task's mean as the average over tasks"),
    ("recipe_effects_backwards", "report", "ministeer/experiments/report.py",
     "cells = [stats.paired(mine, theirs, (t,)) for t in tasks] + [stats.paired(mine, theirs, tuple(tasks))]",
     "cells = [stats.paired(theirs, mine, (t,)) for t in tasks] + [stats.paired(theirs, mine, tuple(tasks))]",
     "the recipe table reads shared − official under an official − shared header"),
    ("recipe_effects_lists_shared", "report", "ministeer/experiments/report.py",
     "        if setup is None:\n            continue\n", "",
     "the recipe table gives a row to a method whose two recipes are one run"),
    ("setup_key_ignores_recipe", "compare", "ministeer/experiments/compare.py",
     "setup = A.fit_settings(method, settings.recipe, settings.steps)",
     'setup = A.fit_settings(method, "shared", settings.steps)',
     "a run's key is blind to the recipe: an official resume reuses shared runs of JoLA"),
    ("setup_key_marks_shared", "compare", "ministeer/experiments/compare.py",
     '    if setup == A.fit_settings(method, "shared", settings.steps):\n        return None\n', "",
     "the shared setup marks the key too: committed runs are retrained and the two recipes share no run"),
    ("jola_counter_from_one", "checkpoints", "ministeer/train.py", "value_and_grad_fn(trainable, batch, step) if pass_step",
     "value_and_grad_fn(trainable, batch, step + 1) if pass_step", "the objective's step (JoLA's lam_t) counts from 1"),
]


RUNNING = set()  # test processes in flight

# A pytest plugin written into each copy: the "dev" number of examples, no shrinking (a
# killed mutant needs one failing example, not the smallest; shrinking costs minutes).
PROFILE_PLUGIN = """from hypothesis import HealthCheck, Phase, settings
settings.register_profile("mutants", max_examples=15, deadline=None, print_blob=False,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate],
                          suppress_health_check=list(HealthCheck))
"""


def repo_files():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return [f for f in out if f and (ROOT / f).is_file()]


def check(mutant):
    """'' if the edit applies exactly once, else why not."""
    name, area, path, old, new, _ = mutant
    text = (ROOT / path).read_text()
    n = text.count(old)
    return "" if n == 1 else f"pattern found {n} times in {path}"


def run_tests(copy, area, timeout):
    tests = []
    for g in AREAS[area]:
        tests += [t for t in sorted(str(p.relative_to(copy)) for p in copy.glob(g)) if t not in tests]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "HYPOTHESIS_PROFILE": "mutants", "PYTHONPATH": str(copy),
           "PYTEST_PLUGINS": "mutant_profile"}  # also in the pytest runs a test starts (test_exercises.py)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
           "-o", "addopts=", "--hypothesis-seed=0", *tests]
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    RUNNING.add(proc)  # so that an interrupted run ends its test processes too
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "timeout", ""
    finally:
        RUNNING.discard(proc)
    tail = [l for l in out.splitlines() if l.startswith("FAILED") or l.startswith("ERROR")]
    return ("pass" if proc.returncode == 0 else "fail"), (tail[0] if tail else out.strip()[-200:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="run only this mutant (repeatable)")
    parser.add_argument("--list", action="store_true", help="check that every edit applies; run nothing")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per test run (a timeout counts as killed)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the unmutated tests first")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at the same time, each on its own copy")
    parser.add_argument("--skip", action="append", default=[], help="leave out this mutant (repeatable)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if (not args.only or m[0] in args.only) and m[0] not in args.skip]
    if args.list:
        for m in chosen:
            print(f"{m[0]:28s} {m[1]:9s} {check(m) or 'ok'}")
        return 0 if all(not check(m) for m in chosen) else 1
    # a plain `kill` must clean up as Ctrl-C does: turn SIGTERM into KeyboardInterrupt
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    results, start, lock = [], time.perf_counter(), threading.Lock()
    with tempfile.TemporaryDirectory(prefix="ministeer-mutants-") as tmp:  # removed on exit, Ctrl-C too
        files = repo_files()
        copies = []
        for j in range(max(1, args.jobs)):  # one private copy per worker
            copy = Path(tmp) / f"repo{j}"
            for f in files:
                (copy / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / f, copy / f)
            (copy / "mutant_profile.py").write_text(PROFILE_PLUGIN)
            copies.append(copy)
        for area in [] if args.skip_baseline else sorted({m[1] for m in chosen}):  # unmutated tests pass first
            status, why = run_tests(copies[0], area, args.timeout)
            if status != "pass":
                print(f"baseline of area {area!r} does not pass ({why}); fix that first")
                return 2
        free = list(copies)

        def one(mutant):
            name, area, path, old, new, what = mutant
            stale = check(mutant)
            if stale:
                print(f"STALE     {name:28s} {stale}", flush=True)
                return dict(name=name, area=area, status="stale", why=stale)
            with lock:
                copy = free.pop()
            target = copy / path
            original = target.read_text()
            t0 = time.perf_counter()
            try:
                target.write_text(original.replace(old, new, 1))
                status, why = run_tests(copy, area, args.timeout)
            finally:
                target.write_text(original)
                with lock:
                    free.append(copy)
            verdict = {"pass": "SURVIVED", "fail": "KILLED", "timeout": "TIMEOUT"}[status]
            print(f"{verdict:9s} {name:28s} {area:9s} {time.perf_counter() - t0:5.1f} s  {what}"
                  + (f"  [{why[:90]}]" if status == "fail" else ""), flush=True)
            return dict(name=name, area=area, status=verdict.lower(), what=what, why=why)

        pool = ThreadPoolExecutor(max_workers=len(copies))
        try:
            results = list(pool.map(one, chosen))
        except BaseException:  # Ctrl-C or kill: stop the running tests, then let the workers finish
            for proc in list(RUNNING):
                proc.kill()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    scored = [r for r in results if r["status"] != "stale"]
    killed = sum(r["status"] == "killed" for r in scored)  # a timeout is not counted as a kill
    timeouts = sum(r["status"] == "timeout" for r in scored)
    print(f"\nkilled {killed} of {len(scored)} mutants ({100.0 * killed / max(1, len(scored)):.1f}%), "
          f"{timeouts} timed out, {len(results) - len(scored)} stale, in {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(killed=killed, scored=len(scored), results=results), indent=2))
    return 0 if killed == len(scored) else 1


if __name__ == "__main__":
    sys.exit(main())
