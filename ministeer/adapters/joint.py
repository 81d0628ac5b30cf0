"""Joint adaptation: LoRA and post-block steering under one loss, with the orthogonality constraint.

The paper's joint adaptation, as the official code implements it
(https://github.com/SprocketLab/steerling; docs/06-joint-adaptation.md). At each layer l, let ``B`` [d, r] be the ``lora_B`` factor of the MLP down
projection (``Delta W_d = s B A``) and ``V`` [d, k] an orthonormal basis of col(B)
(k = rank B, from an SVD; k = 0 when B = 0, e.g. at init). Then either

    mode="input"  (the official code):     D <- D (I - V V^T)   so that D B = 0,
    mode="output" (one reading of the paper): U <- (I - V V^T) U  so that V^T U = 0,

or mode="none" (naive joint training). The projection is hard, applied before a step:
``every="step"`` (the official default), an int N (every N steps) or ``"init"`` (step 0 only).
``orth_projector`` returns the ``project(trainable, step)`` that ``fit`` calls.
Properties checked in tests/test_adapters_joint.py (D B = 0 / V^T U = 0, idempotence,
B = 0 leaves D and U bitwise unchanged).
"""
import numpy as np  # host side: the rank decision on r singular values

from ..backend import raw, to_numpy
from ..sites import split_name

MODES = ("input", "output", "none")


def column_basis(B):
    """Orthonormal basis [d, k] of col(B), k = numerical rank (SVD, NumPy's ``matrix_rank`` cutoff)."""
    U, S, _ = raw.linalg.svd(B, full_matrices=False)
    S = to_numpy(S)  # r singular values: one explicit device->host copy to decide the rank
    if S.size == 0 or S[0] == 0.0:
        return U[:, :0]
    tol = S[0] * max(B.shape) * np.finfo(S.dtype).eps
    return U[:, : int((S > tol).sum())]


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


def project_joint(lora_params, steer_params, mode):
    """Apply the constraint at every layer where both a down_proj LoRA and a steering site exist."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; expected one of {MODES}")
    out = dict(steer_params)
    for site, p in steer_params.items():
        down = lora_params.get(f"model.layers.{split_name(site)[0]}.mlp.down_proj")
        if down is None:
            continue
        if "D" not in p:
            raise ValueError(f"the joint projection needs a low-rank steering adapter (D, U) at {site!r}")
        out[site] = project_out(p, column_basis(down["lora_B"]), mode)
    return out


def orth_projector(mode="input", every="step", lora="lora", steer="steer"):
    """``project(trainable, step)`` for ``fit``: projects ``trainable[steer]`` against the
    down_proj LoRA factors in ``trainable[lora]`` on the schedule ``every``."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; expected one of {MODES}")
    if not (every in ("step", "init") or (isinstance(every, int) and every >= 1)):
        raise ValueError(f"every={every!r}; expected 'step', 'init' or a positive int N")

    def project(trainable, step):
        due = every == "step" or (every == "init" and step == 0) or (isinstance(every, int) and step % every == 0)
        if mode == "none" or not due:
            return trainable
        for key in (lora, steer):
            if key not in trainable:
                raise KeyError(f"joint projection needs trainable[{key!r}]; keys: {sorted(trainable)}")
        return {**trainable, steer: project_joint(trainable[lora], trainable[steer], mode)}
    return project
