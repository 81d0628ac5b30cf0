"""ReFT interventions as pyreft defines them (Wu et al. 2024), as activation adapters.

Under pyreft's names (https://github.com/stanfordnlp/pyreft, ``pyreft/interventions.py``):

    LoReFT   (LoreftIntervention):    h <- h + R^T (W h + b - R h),   R: [r, d] with orthonormal rows,
    DiReFT   (DireftIntervention):    h <- h + R^T (W h + b),         R: [r, d] with orthonormal rows,
    NoDiReFT (NodireftIntervention):  h <- h + R^T (W h + b),         R: [r, d] unconstrained,

with W: [r, d], b: [r], applied at chosen positions of chosen layers (pyreft's
``"f1+l1"`` = first and last prompt token; default site ``post_block`` = pyreft's
``block_output``).

Parameterization of the orthonormal R (pyreft uses torch's ``orthogonal`` parametrization):
we store a free matrix ``R_raw`` [r, d] and use ``R = orthonormal_rows(R_raw)``: Gram-Schmidt
on the rows in order, i.e. the Q factor of a QR of ``R_raw^T`` (``ops.orthonormal_rows``, one
primitive with a hand-derived VJP beside its Gram-Schmidt composition). R is orthonormal
by construction at every step -- no re-projection, no penalty. Same parameter count as pyreft
(r*d). Checked to 1e-10 after 50 training steps in tests/test_adapters_reft.py.

Initialization departs from pyreft on purpose: every ministeer adapter starts as an exact
no-op. LoReFT: W = R (and we compute ``(W - R) h``, which is then exactly 0) and b = 0.
DiReFT: R orthonormal (random), W = 0, b = 0. NoDiReFT: R = 0, W kaiming-uniform, b = 0 (like
LoRA's B = 0). pyreft's default Linear init of W, b is not a no-op.

Shared or separate interventions (``share_weights``). pyreft's LoReFT script trains, by
default (``share_weights=False``), *two* interventions per layer for ``"f<k>+l<k>"``: the
layer list is doubled (``if "+" in position and not share_weights: layers += layers``,
https://github.com/stanfordnlp/pyreft/blob/main/examples/loreft/train.py) and the first half
of the interventions gets the first k prompt positions, the second half the last k
(``get_intervention_locations`` in
https://github.com/stanfordnlp/pyreft/blob/main/pyreft/dataset.py). ``share_weights=True``
(pyreft's ``--share_weights`` flag, and this kind's default) trains one intervention per
layer on both. With ``share_weights=False`` each site holds the first positions' arrays
(``R_raw``/``R``, ``W``, ``b``) and the last positions' (the same names + ``_last``), drawn
independently: twice the parameters. (pyreft also caps k at half the prompt, which matters
only for prompts shorter than 2k tokens; not done here.)
"""
import numpy as np  # host side only: initialization

from ..backend import from_numpy, to_numpy
from ..ops import orthonormal_rows
from ..sites import select_sites
from .core import Kind, check_rank, init_adapter, kaiming_uniform, make_spec, register, width
from .positions import check_positions, parse_first_last


def _resolve(cfg, spec):
    spec = {**spec, "r": check_rank(spec["r"], "ReFT rank r")}
    sites = select_sites(cfg, spec["sites"], spec["layers"], flat_only=True)
    too_wide = [s for s in sites if spec["r"] > width(cfg, s)]
    if too_wide and spec["kind"] in ORTHONORMAL:
        raise ValueError(f"{spec['kind']} needs r <= width for orthonormal rows; r={spec['r']} at {too_wide[0]}")
    if not isinstance(spec["share_weights"], bool):
        raise ValueError(f"share_weights must be True or False, got {spec['share_weights']!r}")
    positions = check_positions(spec["positions"])
    if not spec["share_weights"]:
        first, last = parse_first_last(positions) if isinstance(positions, str) and positions != "last" else (0, 0)
        if not (first and last):
            raise ValueError(f"share_weights=False trains one intervention on the first positions and one on "
                             f"the last (pyreft's f<k>+l<k>); positions={positions!r} has no such two sides")
    return {**spec, "sites": sites, "positions": positions}


def _shapes(cfg, spec):
    r = spec["r"]
    first = "R_raw" if spec["kind"] in ORTHONORMAL else "R"
    one = lambda s: {first: (r, width(cfg, s)), "W": (r, width(cfg, s)), "b": (r,)}
    if spec.get("share_weights", True):  # specs saved before the field existed: shared
        return {s: one(s) for s in spec["sites"]}
    return {s: {**one(s), **{leaf + LAST: shape for leaf, shape in one(s).items()}} for s in spec["sites"]}


LAST = "_last"  # suffix of the last positions' arrays under share_weights=False


def _per_part(init_one):
    """An init that draws one intervention's arrays per site, twice per site when unshared."""
    def init(cfg, spec, rng):
        out = {}
        for s, shape in _shapes(cfg, spec).items():
            out[s] = init_one(cfg, shape, rng)
            if not spec.get("share_weights", True):
                out[s].update({leaf + LAST: a for leaf, a in init_one(cfg, shape, rng).items()})
        return out
    return init


def _loreft_one(cfg, shape, rng):
    R_raw = from_numpy(rng.normal(size=shape["R_raw"]), cfg.dtype)
    # W = R computed exactly as the forward pass will, on the active backend and dtype
    return {"R_raw": to_numpy(R_raw), "W": to_numpy(orthonormal_rows(R_raw)), "b": np.zeros(shape["b"])}


def _direft_one(cfg, shape, rng):
    return {"R_raw": rng.normal(size=shape["R_raw"]), "W": np.zeros(shape["W"]), "b": np.zeros(shape["b"])}


def _nodireft_one(cfg, shape, rng):
    return {"R": np.zeros(shape["R"]), "W": kaiming_uniform(rng, shape["W"]), "b": np.zeros(shape["b"])}


def _parts(spec, p):
    """The interventions at one site: one on every chosen position (shared weights), or the
    first positions' and the last positions' (pyreft's default, ``share_weights=False``)."""
    if spec.get("share_weights", True):
        return [(spec, p)]
    first, last = parse_first_last(spec["positions"])
    at_first = {k: v for k, v in p.items() if not k.endswith(LAST)}
    at_last = {k[:-len(LAST)]: v for k, v in p.items() if k.endswith(LAST)}
    return [({**spec, "positions": f"f{first}"}, at_first), ({**spec, "positions": f"l{last}"}, at_last)]


def loreft_delta(spec, p, h):
    """R^T ((W - R) h + b) for h [B, T, d]."""
    R = orthonormal_rows(p["R_raw"])
    return ((h @ (p["W"] - R).T) + p["b"]) @ R  # [B, T, r] -> [B, T, d]


def direft_delta(spec, p, h):
    """R^T (W h + b) for h [B, T, d], R = orthonormal_rows(R_raw)."""
    return (h @ p["W"].T + p["b"]) @ orthonormal_rows(p["R_raw"])


def nodireft_delta(spec, p, h):
    """R^T (W h + b) for h [B, T, d], R unconstrained."""
    return (h @ p["W"].T + p["b"]) @ p["R"]


def _direft_affine(spec, p):
    R = orthonormal_rows(p["R_raw"])
    return R.T, p["W"], p["b"] @ R


def _loreft_affine(spec, p):
    R = orthonormal_rows(p["R_raw"])
    return R.T, p["W"] - R, p["b"] @ R


ORTHONORMAL = ("loreft", "direft")  # kinds that store R_raw and use R = orthonormal_rows(R_raw)
FIELDS = dict(sites="post_block", layers=None, r=8, positions="f1+l1", share_weights=True)
register(Kind("loreft", FIELDS, _resolve, _shapes, _per_part(_loreft_one), delta=loreft_delta,
              affine=_loreft_affine, parts=_parts))
register(Kind("direft", FIELDS, _resolve, _shapes, _per_part(_direft_one), delta=direft_delta,
              affine=_direft_affine, parts=_parts))
register(Kind("nodireft", FIELDS, _resolve, _shapes, _per_part(_nodireft_one), delta=nodireft_delta,
              affine=lambda spec, p: (p["R"].T, p["W"], p["b"] @ p["R"]), parts=_parts))


def loreft(cfg, sites="post_block", r=8, positions="f1+l1", layers=None, seed=0, share_weights=True):
    """LoReFT ``h + R^T(W h + b - R h)``, R orthonormal; pyreft positions (``"f1+l1"``,
    ``"l1"``, ...: relative to the prompt in ``adapted_loss``), a list of ints, a mask, or None.
    ``share_weights=False``: separate first- and last-position interventions (pyreft's default)."""
    return init_adapter(cfg, make_spec(cfg, "loreft", sites=sites, r=r, positions=positions, layers=layers,
                                       share_weights=share_weights), seed)


def direft(cfg, sites="post_block", r=8, positions="f1+l1", layers=None, seed=0, share_weights=True):
    """DiReFT ``h + R^T(W h + b)`` with R orthonormal, as pyreft's DireftIntervention."""
    return init_adapter(cfg, make_spec(cfg, "direft", sites=sites, r=r, positions=positions, layers=layers,
                                       share_weights=share_weights), seed)


def nodireft(cfg, sites="post_block", r=8, positions="f1+l1", layers=None, seed=0, share_weights=True):
    """NoDiReFT ``h + R^T(W h + b)`` with R unconstrained, as pyreft's NodireftIntervention."""
    return init_adapter(cfg, make_spec(cfg, "nodireft", sites=sites, r=r, positions=positions, layers=layers,
                                       share_weights=share_weights), seed)


def rotation(adapter, site):
    """The orthonormal R [r, d] a LoReFT or DiReFT adapter uses at ``site``."""
    return orthonormal_rows(adapter.params[site]["R_raw"])
