"""Which checkpoint a resume picks and what it refuses: the newest of a folder (``resume=folder``
or ``True``), exactly the file given, a run under another seed or method refused, a JoLA run
(random draws per step) resumed bitwise; and the file digest that guards all of it. Each test
names the wrong implementation it rejects (and its mutant in scripts/mutants.py)."""
import numpy as np
import pytest
from autograd import numpy as anp

from ministeer import adapters as A
from ministeer.io.state import checkpoint_path, latest_checkpoint, list_checkpoints
from ministeer.io import CheckpointError, load_arrays, save_arrays
from ministeer.model import Config, init_params
from ministeer.train import fit

CFG = Config.llama(vocab_size=16, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=16, n_layers=1, n_ctx=8)


class _Crash(Exception):
    pass


def _objective(w, b):
    return anp.sum((w["a"] - b) ** 2)


def _data(step):
    return np.array([np.sin(step), np.cos(step), 0.5])


def _crashed_run(folder, after):
    """9 steps, a checkpoint every 2 (newest 2 kept), killed after step ``after``."""
    def crash(step, loss, trainable):
        if step + 1 == after:
            raise _Crash
    with pytest.raises(_Crash):
        fit(_objective, {"a": np.zeros(3)}, _data, steps=9, lr=0.1, checkpoint_dir=folder, checkpoint_every=2,
            keep=2, callback=crash)


def _resumed_steps(**resume):
    seen = []
    result = fit(_objective, {"a": np.zeros(3)}, _data, steps=9, lr=0.1, callback=lambda s, l, t: seen.append(s),
                 **resume)
    return seen, result


def test_a_resume_from_a_folder_continues_from_its_newest_checkpoint(tmp_path):
    """Killed after step 7 with checkpoints at 4 and 6 kept: ``resume=folder`` and ``resume=True``
    run steps 6, 7, 8 only, and end bitwise where the uninterrupted run ends. Rejects continuing
    from the oldest kept checkpoint (mutant ``ckpt_oldest``): the result is the same numbers,
    so only the steps run show it (4, 5 would be redone)."""
    _crashed_run(tmp_path, after=7)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4, 6]
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 6)
    straight = fit(_objective, {"a": np.zeros(3)}, _data, steps=9, lr=0.1)
    for resume in (dict(resume=tmp_path), dict(resume=True, checkpoint_dir=tmp_path)):  # the second one writes
        seen, result = _resumed_steps(**resume)
        assert seen == [6, 7, 8]
        assert result.losses == straight.losses and np.array_equal(result.params["a"], straight.params["a"])


def test_checkpoints_are_ordered_by_step_not_by_file_age(tmp_path):
    """The newest checkpoint is the one of the highest step, even when an older step's file was
    written last (a file copied back, a clock change). Rejects picking by modification time."""
    _crashed_run(tmp_path, after=7)
    older = checkpoint_path(tmp_path, 4)
    older.write_bytes(older.read_bytes())  # rewritten now: the newest file on disk
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 6)


def test_a_resume_from_a_file_continues_from_that_file(tmp_path):
    """``resume=<file>`` continues from exactly that checkpoint, even an older one of the folder,
    and still ends bitwise where the uninterrupted run ends. Rejects replacing the file by the
    folder's newest."""
    _crashed_run(tmp_path, after=7)
    seen, result = _resumed_steps(resume=checkpoint_path(tmp_path, 4))
    assert seen == [4, 5, 6, 7, 8]
    straight = fit(_objective, {"a": np.zeros(3)}, _data, steps=9, lr=0.1)
    assert result.losses == straight.losses


def test_keep_holds_the_newest_checkpoints_by_step(tmp_path):
    """keep=3, a checkpoint every step and after the last: steps 7, 8, 9 remain. Rejects keeping
    the oldest, and one too many or too few."""
    fit(_objective, {"a": np.zeros(3)}, _data, steps=9, lr=0.1, checkpoint_dir=tmp_path, checkpoint_every=1, keep=3)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [7, 8, 9]


def _copy_batches(step):
    rng = np.random.default_rng(step % 3)
    prompt = rng.integers(0, CFG.vocab_size, (4, 3))
    return {"tokens": np.concatenate([prompt, prompt], axis=1),
            "mask": np.concatenate([np.zeros((4, 3)), np.ones((4, 3))], axis=1)}


def test_train_method_refuses_to_resume_a_run_of_another_seed_or_method(tmp_path):
    """The checkpoint stores the method, its adapter specs, the seed and intervene_last; a resume
    under another seed or another method is refused with a CheckpointError naming the field.
    Rejects a run description without the seed (mutant ``run_without_seed``): the other seed's
    init would be silently replaced by the checkpoint's arrays."""
    params = init_params(CFG, 0, std=0.3)
    A.train_method("postblock_r1", params, CFG, _copy_batches, steps=2, lr=1e-2, seed=0, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"run differ in \['seed'\]"):
        A.train_method("postblock_r1", params, CFG, _copy_batches, steps=2, lr=1e-2, seed=1, resume=tmp_path)
    with pytest.raises(CheckpointError, match="run differ"):
        A.train_method("postblock_linear", params, CFG, _copy_batches, steps=2, lr=1e-2, seed=0, r=1,
                       resume=tmp_path)


def test_an_interrupted_jola_run_resumes_bitwise(tmp_path):
    """JoLA draws gate noise per step and weighs its penalty by lam_t: after a kill at step 3 of 6,
    the resumed run's losses and arrays are bitwise the uninterrupted run's. Rejects a resumed
    objective that restarts its step count (mutant ``resume_count_ignored``: steps 3-5 would
    redraw steps 0-2's noise; ``fit_step_from_resume`` likewise) and a resume that restarts Adam's moments."""
    params = init_params(CFG, 0, std=0.3)
    kw = dict(steps=6, lr=3e-2, seed=2, clip=1.0)
    straight, result = A.train_method("jola", params, CFG, _copy_batches, **kw)

    def crash(step, loss, trainable):
        if step == 3:
            raise _Crash
    with pytest.raises(_Crash):
        A.train_method("jola", params, CFG, _copy_batches, checkpoint_dir=tmp_path, checkpoint_every=3,
                       callback=crash, **kw)
    resumed, again = A.train_method("jola", params, CFG, _copy_batches, resume=tmp_path, **kw)
    assert again.losses == result.losses
    for site, p in straight["jola"].params.items():
        for leaf in p:
            assert np.array_equal(resumed["jola"].params[site][leaf], p[leaf]), (site, leaf)


@pytest.mark.parametrize("old, new", [(b'"shape":[2,3]', b'"shape":[3,2]'), (b'"aa":{', b'"ab":{')],
                         ids=["shape", "name"])
def test_the_digest_covers_each_tensors_shape_and_name(tmp_path, old, new):
    """Reshaping a tensor or renaming it in the header keeps every data byte; the digest must still
    catch it. Rejects a digest over the bytes alone (mutants ``digest_no_shape``, ``digest_no_name``): a transposed
    weight would load as if nothing had changed."""
    path = tmp_path / "w.safetensors"
    save_arrays(path, {"aa": np.arange(6.0).reshape(2, 3), "b": np.ones(2)}, {"note": "x"})
    raw = path.read_bytes()
    assert raw.count(old) == 1
    path.write_bytes(raw.replace(old, new))
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        load_arrays(path)


def test_a_checkpoint_of_another_dtype_is_refused(tmp_path):
    """A float64 run's checkpoint resumed into a float32 trainable (or back) is another run: refused
    naming the [path, shape, dtype] that differs, not loaded with the file's dtype. Rejects a
    structure check without dtypes (mutant ``ckpt_structure_no_dtype``)."""
    fit(_objective, {"a": np.zeros(3)}, _data, steps=2, lr=0.1, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="float32"):
        fit(_objective, {"a": np.zeros(3, dtype=np.float32)}, _data, steps=4, lr=0.1, resume=tmp_path)


def test_fit_passes_the_optimizer_step_from_zero_and_across_a_resume(tmp_path):
    """``pass_step=True``: the objective sees 0, 1, 2, ... (JoLA's lam_t = 0.1 e^(-0.01 t) starts
    at t = 0), and a run resumed after step 3 sees 3, 4, ... (rejects counting from 1, mutant
    ``jola_counter_from_one``, and counting from the resume, ``fit_step_from_resume``)."""
    seen = []

    def objective(w, batch, step):
        seen.append(step)
        return anp.sum((w - batch) ** 2)

    settings = dict(steps=5, lr=0.1, checkpoint_dir=tmp_path, checkpoint_every=3, pass_step=True)
    fit(objective, np.zeros(2), lambda s: np.full(2, float(s)), **settings)
    assert seen == [0, 1, 2, 3, 4]
    seen.clear()
    for step, path in list_checkpoints(tmp_path):  # keep only the checkpoint after step 3
        if step != 3:
            path.unlink()
    fit(objective, np.zeros(2), lambda s: np.full(2, float(s)), resume=True, **settings)
    assert seen == [3, 4]
