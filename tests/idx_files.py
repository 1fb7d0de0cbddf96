"""Test helper: write IDX files in the Fashion-MNIST release format."""

import gzip

import numpy as np


def write_idx(path, arr, magic=None):
    """An IDX file (gzipped if the name ends in .gz), as in the Fashion-MNIST release."""
    arr = np.asarray(arr, dtype=np.uint8)
    magic = 0x0800 + arr.ndim if magic is None else magic
    data = (
        magic.to_bytes(4, "big")
        + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        + arr.tobytes()
    )
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path
