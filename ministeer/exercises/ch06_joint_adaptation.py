"""Checkers for docs/06-joint-adaptation.md: the two orthogonality projections."""
import numpy as np  # host side: test inputs and comparisons

from ..backend import from_numpy
from .common import call, expect_close, fail, host, passed, rng_for


def _basis(B):
    """Orthonormal basis of col(B), B [d, r] of full column rank."""
    return np.linalg.svd(B, full_matrices=False)[0]


def _problem(seed):
    rng = rng_for(seed)
    d, r_lora, r_adapter = 7, 2, 3
    B_down = rng.normal(size=(d, r_lora)) * 3.0  # columns far from orthonormal on purpose
    return rng.normal(size=(r_adapter, d)), rng.normal(size=(d, r_adapter)), B_down


def check_project_read(project_read):
    """Exercise 6.1: ``project_read(D, B_down)`` = D (I - V V^T), eq. (6.2), what the official code does.

    ``D`` is the adapter's read map ``[r, d]``; ``B_down`` is the LoRA factor of ``down_proj``,
    ``[d, r_lora]``, of full column rank; ``V`` is an orthonormal basis of col(B_down).
    After it, ``D B_down = 0``: the adapter no longer reads what the LoRA writes.
    """
    D, _, B_down = _problem(10)
    V = _basis(B_down)
    P = np.eye(len(V)) - V @ V.T
    got = call("6.1", project_read, from_numpy(D), from_numpy(B_down),
               on_error="D is [r, d], B_down is [d, r_lora]; the projector I - V V^T is [d, d] and "
                        "multiplies D from the right.")
    expect_close("6.1", got, D @ P, what="the projected D", atol=1e-10, diagnoses=[
        (D @ (np.eye(len(V)) - B_down @ B_down.T), "B_down's columns are not orthonormal, so "
                                                    "I - B B^T is not a projector: orthonormalize first "
                                                    "(np.linalg.qr or svd)."),
        (D @ V @ V.T, "you kept the part of D inside col(B_down); remove it: D (I - V V^T)."),
        (D, "D did not change."),
    ])
    again = call("6.1", project_read, got, from_numpy(B_down))
    expect_close("6.1", again, got, what="projecting twice", atol=1e-10)
    if np.abs(host(got) @ B_down).max() > 1e-9:
        fail("6.1", "after the projection D @ B_down should be 0.")
    return passed("6.1", "the read-side orthogonality projection", "D B_down = 0 and projecting twice changes nothing.")


def check_project_write(project_write):
    """Exercise 6.2: ``project_write(U, B_down)`` = (I - V V^T) U, eq. (6.3), one reading of the paper.

    ``U`` is the adapter's write map ``[d, r]``. After it, ``V^T U = 0``: the adapter writes
    only into directions the LoRA update of ``down_proj`` does not write into.
    """
    _, U, B_down = _problem(11)
    V = _basis(B_down)
    P = np.eye(len(V)) - V @ V.T
    got = call("6.2", project_write, from_numpy(U), from_numpy(B_down),
               on_error="U is [d, r], B_down is [d, r_lora]; the projector I - V V^T is [d, d] and "
                        "multiplies U from the left.")
    expect_close("6.2", got, P @ U, what="the projected U", atol=1e-10, diagnoses=[
        ((np.eye(len(V)) - B_down @ B_down.T) @ U, "B_down's columns are not orthonormal, so "
                                                    "I - B B^T is not a projector: orthonormalize first."),
        (V @ V.T @ U, "you kept the part of U inside col(B_down); remove it: (I - V V^T) U."),
        (U, "U did not change."),
    ])
    if np.abs(V.T @ host(got)).max() > 1e-9:
        fail("6.2", "after the projection V^T U should be 0.")
    return passed("6.2", "the write-side orthogonality projection", "V^T U = 0: the adapter writes where LoRA does not.")
