"""Reader for the idx format of MNIST and Fashion-MNIST (`*-ubyte`, optionally gzipped).

The four standard files (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
`t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`) are what both data
sets ship; Debian's `dataset-fashion-mnist` installs them under
`/usr/share/datasets/fashion-mnist/`.
"""
import glob
import gzip
import os

import numpy as np

from tl_app.errors import UserError

# idx type codes -> numpy dtypes (big-endian where multi-byte).
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# key -> (glob that also matches `train-images.idx3-ubyte` and unzipped files, canonical name)
IDX_FILES = {
    "train_images": ("train-images*idx3*ubyte*", "train-images-idx3-ubyte.gz"),
    "train_labels": ("train-labels*idx1*ubyte*", "train-labels-idx1-ubyte.gz"),
    "test_images": ("t10k-images*idx3*ubyte*", "t10k-images-idx3-ubyte.gz"),
    "test_labels": ("t10k-labels*idx1*ubyte*", "t10k-labels-idx1-ubyte.gz"),
}
EXPECTED = "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"


def read_idx(path):
    """The array stored in one idx file (gzip detected by its magic bytes)."""
    with open(path, "rb") as raw:
        head = raw.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: cannot read it as an idx file ({exc}); is the download complete?") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise UserError(f"{path}: not an idx file (bad magic number); expected files like {EXPECTED}.")
    dtype, ndim = np.dtype(_DTYPES[data[2]]), data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise UserError(f"{path}: idx header says {shape} but the file holds {len(data) - offset} bytes of data; the file is truncated or corrupt.")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_files(data_dir):
    """Paths of the four idx files in `data_dir`, or a UserError naming what is missing."""
    if not os.path.isdir(data_dir):
        raise UserError(f"--data-dir {data_dir}: no such directory; name the folder holding the four idx files ({EXPECTED}).")
    found, missing = {}, []
    for key, (pattern, canonical) in IDX_FILES.items():
        matches = sorted(glob.glob(os.path.join(data_dir, pattern)))
        if matches:
            found[key] = matches[0]
        else:
            missing.append(canonical)
    if missing:
        raise UserError(
            f"--data-dir {data_dir}: missing {', '.join(missing)}; the folder needs the four idx files of"
            " MNIST/Fashion-MNIST (e.g. /usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist)."
        )
    return found


def load_idx_dir(data_dir):
    """((x_train, y_train), (x_test, y_test)) from the idx files in `data_dir`."""
    paths = find_idx_files(data_dir)
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise UserError(
                f"--data-dir {data_dir}: {len(images)} {split} images but {len(labels)} labels; the idx files do not belong together."
            )
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])
