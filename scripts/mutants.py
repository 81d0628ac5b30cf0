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
    "report": ["tests/test_results_page.py", "tests/test_experiments.py"],
}

# (name, area, file, old text, new text, what the bug is)
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
     "dz5 = raw.transpose(dz, (0, 2, 1, 3)).reshape(B, K, H // K, T, dh)",
     "dz5 = raw.swapaxes(raw.transpose(dz, (0, 2, 1, 3)).reshape(B, H // K, K, T, dh), 1, 2)",
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
     "the benchmark is the v2 pair, which the base composes by itself"),
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
    ("interval_no_sampling", "report", "ministeer/experiments/report.py",
     "half = 1.96 * math.sqrt(var / S + mean * (1 - mean) / (S * n))", "half = 1.96 * math.sqrt(var / S)",
     "the 95% interval leaves out test sampling error"),
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
           "HYPOTHESIS_PROFILE": "mutants", "PYTHONPATH": str(copy)}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:warnings", "-p", "mutant_profile",
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
