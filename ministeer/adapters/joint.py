"""Joint adaptation: LoRA and post-block steering under one loss, with the orthogonality constraint.

The paper's joint adaptation (https://github.com/SprocketLab/steerling, ``joint/train_orthogonal.py``;
docs/06-joint-adaptation.md). At each layer l, let ``B`` [d, r] be the ``lora_B`` factor of
the MLP down projection (``Delta W_d = s B A``) and ``V`` an orthonormal basis from the SVD
of B. Then either

    mode="input"  (the official code):        D <- D (I - V V^T)   so that D B = 0,
    mode="output" (one reading of the paper): U <- (I - V V^T) U   so that V^T U = 0,

or mode="none" (naive joint training). Two choices of V:

    basis="rank" (principled, ministeer's default): the k = numerical-rank left singular
        vectors of B, i.e. exactly col(B); k = 0 when B = 0, so nothing is removed at init.
    basis="full" (the official code): all r singular vectors of B^T, even when B is
        rank-deficient. At step 0, B = 0, and the SVD still returns r (arbitrary, LAPACK's
        choice) orthonormal directions, which are removed from D: r directions are lost for
        no reason until the next projection.

The projection is hard and applied at the *beginning* of a step (the official
``on_step_begin``): ``every="step"``, an int N (steps 0, N, 2N, ...) or ``"init"`` (step 0
only). ``mode="official"`` is the official code exactly: input side, ``basis="full"``, every
100 steps (its default since commit 5632425, 2026-03-03; its README still says "step"), and
no projection after the last step. The other modes also project once after training
(``final=True``), so the returned adapters satisfy the constraint.
``orth_projector`` returns the ``project(trainable, step)`` that ``fit`` calls.
``inference_modes`` gives the official evaluation ablation: ``all`` (both spaces),
``lora_only``, ``adapter_only``. Properties checked in tests/test_adapters_joint.py (D B = 0 / V^T U = 0,
idempotence, B = 0 leaves D and U bitwise unchanged for basis="rank", the official schedule).
"""
import numpy as np  # host side: the rank decision on r singular values

from ..backend import raw, to_numpy
from ..sites import split_name
from .core import adapted_forward

MODES = ("input", "output", "none", "official")
BASES = ("rank", "full")
OFFICIAL = dict(side="input", basis="full", every=100, final=False)


def column_basis(B):
    """Orthonormal basis [d, k] of col(B), k = numerical rank (SVD, NumPy's ``matrix_rank`` cutoff)."""
    U, S, _ = raw.linalg.svd(B, full_matrices=False)
    S = to_numpy(S)  # r singular values: one explicit device->host copy to decide the rank
    if S.size == 0 or S[0] == 0.0:
        return U[:, :0]
    tol = S[0] * max(B.shape) * np.finfo(S.dtype).eps
    return U[:, : int((S > tol).sum())]


def full_basis(B):
    """All r left singular vectors of B [d, r], rank or not: the official code's V (the right
    singular vectors of B^T). For B = 0 these are whatever the SVD returns (LAPACK: e_1..e_r)."""
    U, _, _ = raw.linalg.svd(B, full_matrices=False)
    return U


def project_out(steer_params, V, mode):
    """One layer's adapter ``{"D", "U"}`` with col(V) removed from D's input or U's output."""
    if mode == "none" or V.shape[1] == 0:
        return steer_params
    D, U = steer_params["D"], steer_params["U"]
    if mode == "input":
        return {**steer_params, "D": D - (D @ V) @ V.T}   # D (I - V V^T)
    if mode == "output":
        return {**steer_params, "U": U - V @ (V.T @ U)}   # (I - V V^T) U
    raise ValueError(f"mode={mode!r}; expected one of {MODES}")


def project_joint(lora_params, steer_params, mode, basis="rank"):
    """Apply the constraint at every layer where both a down_proj LoRA and a steering site exist.
    ``mode="official"`` means the input side with ``basis="full"``."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; expected one of {MODES}")
    if basis not in BASES:
        raise ValueError(f"basis={basis!r}; expected one of {BASES}")
    if mode == "official":
        mode, basis = OFFICIAL["side"], OFFICIAL["basis"]
    find_basis = column_basis if basis == "rank" else full_basis
    out = dict(steer_params)
    for site, p in steer_params.items():
        down = lora_params.get(f"model.layers.{split_name(site)[0]}.mlp.down_proj")
        if down is None:
            continue
        if "D" not in p:
            raise ValueError(f"the joint projection needs a low-rank steering adapter (D, U) at {site!r}")
        out[site] = project_out(p, find_basis(down["lora_B"]), mode)
    return out


def orth_projector(mode="input", every=None, lora="lora", steer="steer", basis=None, final=None, steps=None):
    """``project(trainable, step)`` for ``fit``: projects ``trainable[steer]`` against the
    down_proj LoRA factors in ``trainable[lora]`` at the beginning of the steps ``every``
    selects. ``fit`` also calls it once after the last step (with ``step = steps``); that call
    projects only if ``final`` (default: True, except for ``mode="official"``), which needs
    ``steps`` to recognize it. Defaults: ``every="step"``, ``basis="rank"``; for
    ``mode="official"``: every 100, ``basis="full"``, no final projection."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; expected one of {MODES}")
    official = mode == "official"
    every = (OFFICIAL["every"] if official else "step") if every is None else every
    basis = (OFFICIAL["basis"] if official else "rank") if basis is None else basis
    final = (OFFICIAL["final"] if official else True) if final is None else final
    if not (every in ("step", "init") or (isinstance(every, int) and not isinstance(every, bool) and every >= 1)):
        raise ValueError(f"every={every!r}; expected 'step', 'init' or a positive int N")
    if basis not in BASES:
        raise ValueError(f"basis={basis!r}; expected one of {BASES}")
    if not final and steps is None:
        raise ValueError("final=False needs steps= to tell the after-training call from a step")
    side = OFFICIAL["side"] if official else mode

    def project(trainable, step):
        if steps is not None and step >= steps:
            due = final
        else:
            due = every == "step" or (every == "init" and step == 0) or (isinstance(every, int) and step % every == 0)
        if mode == "none" or not due:
            return trainable
        for key in (lora, steer):
            if key not in trainable:
                raise KeyError(f"joint projection needs trainable[{key!r}]; keys: {sorted(trainable)}")
        return {**trainable, steer: project_joint(trainable[lora], trainable[steer], side, basis)}
    return project


INFERENCE_MODES = ("all", "lora_only", "adapter_only")


def inference_modes(adapters, lora="lora", steer="steer"):
    """The official evaluation ablation of a trained joint model (``AdapterSteerer.set_inference_mode``
    in https://github.com/SprocketLab/steerling ``joint/joint_steerer.py``):
    ``{"all": both spaces, "lora_only": without the steering adapter, "adapter_only":
    without the LoRA}``. The trained arrays are shared, not copied."""
    if lora not in adapters or steer not in adapters:
        raise KeyError(f"joint inference modes need adapters {lora!r} and {steer!r}; got {sorted(adapters)}")
    return {"all": dict(adapters),
            "lora_only": {k: a for k, a in adapters.items() if k != steer},
            "adapter_only": {k: a for k, a in adapters.items() if k != lora}}


def inference_logits_fns(params, adapters, cfg, lora="lora", steer="steer"):
    """``{mode: logits_fn}`` for ``tasks.accuracy``, one per ``inference_modes`` entry:
    ``logits_fn(tokens, prompt_lengths)`` runs the base ``params`` with that mode's adapters."""
    return {mode: (lambda tokens, n, ads=ads: adapted_forward(params, ads, tokens, cfg, prompt_lengths=n))
            for mode, ads in inference_modes(adapters, lora, steer).items()}
