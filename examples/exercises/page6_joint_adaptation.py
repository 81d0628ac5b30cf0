"""Exercises for docs/06-joint-adaptation.md (grade with ``pytest -m exercise_6_1`` etc.)."""
import numpy as np  # noqa: F401


def project_read(D, B_down):
    """Exercise 6.1: the read-side projection D (I - V V^T), eq. (6.2).

    D: [r, d], the adapter's read map; B_down: [d, r_lora], the LoRA factor of down_proj
    (full column rank, columns *not* orthonormal). V: an orthonormal basis of col(B_down).
    """
    raise NotImplementedError("Exercise 6.1: the read-side orthogonality projection")


def project_write(U, B_down):
    """Exercise 6.2: the write-side projection (I - V V^T) U, eq. (6.3). U: [d, r]."""
    raise NotImplementedError("Exercise 6.2: the write-side orthogonality projection")
