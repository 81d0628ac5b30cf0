"""What sets each registered method apart (``adapters/methods.py``), written down once and checked
on the built adapters: its kind, rank, scale, sites, activation, positions and, for the joint
methods, which constraint training keeps. A registry entry that drifts (a site, a rank, a kind,
a mode copied from its neighbour) fails here by name. Each test names the wrong implementation
it rejects (and its mutants in scripts/mutants.py)."""
import numpy as np
import pytest

from ministeer import adapters as A
from ministeer.model import Config, init_params

CFG = Config.llama(vocab_size=16, d_model=16, n_heads=4, n_kv_heads=2, d_mlp=32, n_layers=2, n_ctx=8)

LORA = dict(kind="lora", r=8, alpha=8.0, targets="all-linear", rslora=False)
POST = dict(kind="lowrank", r=8, activation="silu", alpha=1.0, positions=None, sites=("hook_resid_post",))
REFT = dict(r=8, positions="f1+l1", sites=("hook_resid_post",))

# method -> {adapter name: the fields that set it apart; "sites" as the per-layer hook suffixes}
IDENTITY = {
    "full": {"full": dict(kind="full")},
    "lora": {"lora": LORA},                                            # the weight-space baseline
    "lora_r1": {"lora": dict(LORA, r=1, alpha=1.0)},                   # size-matched: alpha / r = 1 kept
    "lora_r2": {"lora": dict(LORA, r=2, alpha=2.0)},
    "loreft": {"reft": dict(REFT, kind="loreft")},                     # pyreft's f1+l1, block output
    "loreft_all": {"reft": dict(REFT, kind="loreft", positions=None)},  # every position, prompt and generated
    "direft": {"reft": dict(REFT, kind="direft")},                     # R orthonormal, no -R h
    "nodireft": {"reft": dict(REFT, kind="nodireft")},                 # R free
    "postblock_linear": {"steer": dict(POST, activation="linear")},
    "postblock_silu": {"steer": POST},                                 # the paper's adapter
    "postblock_vector": {"steer": dict(kind="vector", positions=None, sites=("hook_resid_post",))},
    "postblock_r1": {"steer": dict(POST, r=1)},
    "postblock_r2": {"steer": dict(POST, r=2)},
    "postblock_r4": {"steer": dict(POST, r=4)},
    "attnout_r8": {"steer": dict(POST, sites=("hook_attn_out",))},
    "premlp_r8": {"steer": dict(POST, sites=("ln2.hook_normalized",))},
    "postmlp_r8": {"steer": dict(POST, sites=("hook_mlp_out",))},
    "submodules_r8": {"steer": dict(POST, sites=("ln2.hook_normalized", "hook_mlp_out"))},  # --submodules
    "lofit": {"lofit": dict(kind="lofit", heads=None, positions=None)},  # heads chosen by step 1
    "jola": {"jola": dict(kind="jola", positions=None, sites=("attn.hook_z",))},
    "joint_naive": {"lora": LORA, "steer": POST},
    "joint_orth_input": {"lora": LORA, "steer": POST},
    "joint_orth_output": {"lora": LORA, "steer": POST},
    "joint_orth_official": {"lora": LORA, "steer": POST},
}
ORTH = {"joint_naive": dict(mode="none"), "joint_orth_input": dict(mode="input", every="step"),
        "joint_orth_output": dict(mode="output", every="step"), "joint_orth_official": dict(mode="official")}


def identity(adapter):
    spec = adapter.spec
    out = {k: spec[k] for k in ("kind", "r", "alpha", "targets", "rslora", "activation", "positions", "heads")
           if k in spec}
    if spec.get("sites"):
        suffixes = []
        for site in spec["sites"]:
            suffix = site.split(".", 2)[2]
            if suffix not in suffixes:
                suffixes.append(suffix)
        assert len(spec["sites"]) == len(suffixes) * CFG.n_layers  # every layer, unless a method says otherwise
        out["sites"] = tuple(suffixes)
    return out


def test_every_registered_method_is_written_down_here():
    """A method added to the registry must say here what sets it apart."""
    assert set(IDENTITY) == set(A.METHODS)


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_each_method_builds_the_adapters_that_set_it_apart(name):
    """Kind, rank, scale, sites (every layer), activation and positions of each adapter of the method,
    and the joint methods' constraint. Rejects a method whose entry drifted to a neighbour's: the
    attention-output ablation at another site (mutant ``method_attnout_site``), LoRA r=1 without its
    alpha = r (``method_lora_r1_alpha``), DiReFT built as LoReFT (``method_direft_is_loreft``), the
    --submodules pair missing a site (``method_submodules_one_site``), the linear variant with SiLU
    (``method_linear_is_silu``), ReFT at other positions (``method_reft_positions``) and a joint
    method with another mode (``method_joint_output_mode``)."""
    built = A.build_method(name, CFG, init_params(CFG, 0))
    got = {k: (dict(kind="full") if a.kind == "full" else identity(a)) for k, a in built.items()}
    assert got == IDENTITY[name]
    assert A.METHODS[name].orth == ORTH.get(name)


@pytest.mark.parametrize("name, constraint", [("joint_naive", None), ("joint_orth_input", "input"),
                                              ("joint_orth_output", "output")])
def test_each_joint_method_trains_under_its_own_constraint(name, constraint):
    """After a short run: input mode leaves D B = 0 (D blind to the LoRA's col(B)), output mode
    V^T U = 0 (U writes outside it), naive neither. Rejects a joint method trained under another
    mode than its name says (mutant ``method_joint_output_mode``)."""
    params = init_params(CFG, 0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, 16, (4, 8))
    trained, _ = A.train_method(name, params, CFG, [{"tokens": tokens, "mask": np.ones((4, 8))}], steps=3, lr=1e-2)
    site = trained["steer"].spec["sites"][-1]
    B = trained["lora"].params[f"model.layers.{site.split('.')[1]}.mlp.down_proj"]["lora_B"]
    V = A.column_basis(B)
    assert V.shape[1] > 0
    D, U = trained["steer"].params[site]["D"], trained["steer"].params[site]["U"]
    input_held, output_held = np.abs(D @ B).max() < 1e-10, np.abs(V.T @ U).max() < 1e-10
    assert (input_held, output_held) == (constraint == "input", constraint == "output")


def test_train_method_holds_the_papers_training_settings_fixed(tmp_path):
    """Every method trains under the same settings unless told otherwise: a linear schedule with 3%
    warmup (rounded up, the paper code's ``warmup_ratio=0.03``), no weight decay, no clipping by
    default. Read back from the training-state checkpoint, which stores what ``fit`` was given.
    Rejects no warmup (mutant ``train_no_warmup``) and another default schedule
    (``train_cosine_default``). LoFiT, trained in two stages, refuses checkpoints by name."""
    from ministeer.io.state import list_checkpoints
    from ministeer.io import load_arrays
    params = init_params(CFG, 0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, 16, (4, 8))
    data = [{"tokens": tokens, "mask": np.ones((4, 8))}]
    A.train_method("postblock_vector", params, CFG, data, steps=40, lr=1e-2, checkpoint_dir=tmp_path,
                   checkpoint_every=39)
    _, meta = load_arrays(list_checkpoints(tmp_path)[0][1])
    settings = meta["settings"]
    assert (settings["schedule"], settings["warmup"], settings["weight_decay"], settings["clip"]) == \
        ("linear", 2, 0.0, None)  # ceil(0.03 * 40) = 2
    with pytest.raises(ValueError, match="lofit trains in stages"):
        A.train_method("lofit", params, CFG, data, steps=2, checkpoint_dir=tmp_path / "lofit")


def test_a_joint_method_trains_exactly_as_fit_with_its_projection(tmp_path):
    """``train_method`` of a joint method = ``fit`` of the same adapters and objective with the
    method's projector, bitwise; ``orth_every`` replaces the method's schedule. Rejects an
    ``orth_every`` that is ignored (mutant ``train_orth_every_ignored``) and a projector built
    for another mode."""
    import math
    from ministeer.train import fit
    params = init_params(CFG, 0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, 16, (4, 8))
    data = [{"tokens": tokens, "mask": np.ones((4, 8))}]
    for every in ("init", None):
        trained, result = A.train_method("joint_orth_output", params, CFG, data, steps=4, lr=1e-2, seed=3,
                                         orth_every=every)
        start = A.build_method("joint_orth_output", CFG, params, seed=3)
        by_hand = fit(A.objective(params, start, CFG, 3), A.trainable_of(start), data, steps=4, lr=1e-2,
                      schedule="linear", warmup=math.ceil(0.03 * 4),
                      project=A.orth_projector("output", every or "step", steps=4), pass_step=True)
        assert result.losses == by_hand.losses


def test_each_kinds_defaults_are_the_documented_ones():
    """A kind built without fields: ReFT kinds at pyreft's first and last prompt token ("f1+l1")
    with r = 8 at the block output; the steering kinds at every position; LoFiT and JoLA at every
    position of ``attn.hook_z``. Rejects a ReFT default changed to the last token only (mutant
    ``reft_default_positions``) and a steering default restricted to some positions."""
    for kind in ("loreft", "direft", "nodireft"):
        spec = A.make_spec(CFG, kind)
        assert (spec["positions"], spec["r"], identity(A.init_adapter(CFG, spec))["sites"]) == \
            ("f1+l1", 8, ("hook_resid_post",))
    for kind in ("lowrank", "vector", "lofit_scale", "jola"):
        assert A.make_spec(CFG, kind)["positions"] is None, kind
    assert A.make_spec(CFG, "lowrank")["alpha"] == 1.0


@pytest.mark.parametrize("kind", ["lowrank", "vector", "loreft", "direft", "nodireft", "lofit_scale", "jola", "lora"])
def test_layers_restricts_every_kind_to_those_layers(kind):
    """``layers=[1]`` on a 2-layer model: every site (or LoRA module) of the adapter is in layer 1,
    and with random arrays the stream after layer 0 is bitwise the base's. Rejects a ``layers``
    option that is ignored (mutant ``layers_ignored``: the adapter edits every layer)."""
    from adapter_strategies import randomize
    from ministeer.model import run_with_cache
    adapter = randomize(A.init_adapter(CFG, A.make_spec(CFG, kind, layers=[1])), 0)
    where = adapter.spec.get("sites") or adapter.spec["modules"]
    assert where and all(".1." in w for w in where), where
    params = init_params(CFG, 0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, 16, (2, 5))
    name = "blocks.0.hook_resid_post"
    base = run_with_cache(params, tokens, CFG, names=[name])[1][name]
    edited = run_with_cache(A.adapted_params(params, adapter), tokens, CFG, names=[name],
                            hooks=A.adapter_hooks(adapter))[1][name]
    assert np.array_equal(base, edited)
