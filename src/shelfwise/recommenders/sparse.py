"""Reading rows of a CSR matrix straight from its arrays: scipy's fancy indexing builds a new
matrix per call, which costs more than a whole API request when one history is scored."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def gather_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored entries of ``matrix[rows]``: for each, its position in ``rows``, its column
    and its value. Within one row the columns are unique (a canonical CSR matrix)."""
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = ends - starts
    flat = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    return np.repeat(np.arange(len(rows)), lengths), matrix.indices[flat], matrix.data[flat]
