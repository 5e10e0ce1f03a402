"""Image files -> checked, decoded, resized tf.data datasets.

One decoder serves training and serving: `decode_and_resize` (tf.io.decode_image
with `channels=3`, `expand_animations=False`) reads JPEG, PNG, BMP and GIF
(first frame); grayscale is replicated to RGB and an alpha channel dropped.
Every file is decoded once at load time, in threads, by that same decoder, so
a corrupt or truncated file is found (and skipped or reported) before training
starts instead of crashing an epoch. The decoded, resized images are then kept
in memory as uint8 (`image_cache="memory"`, the default: no decoding during
training), or only checked and decoded again each epoch (`image_cache="none"`,
for data sets larger than memory).
"""
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from tl_app.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def decode_rgb(encoded):
    """Encoded JPEG/PNG/BMP/GIF bytes (scalar tf.string) -> uint8 [H, W, 3]."""
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize(images, image_size):
    """float32 resize to a square `image_size` (aspect ratio not kept), 0..255 preserved.

    Antialiased bilinear: downscaling large photos without aliasing; an
    identity at the target size. The model's Resizing layer uses the same
    settings, so data resized here and images resized by the model agree.
    """
    import tensorflow as tf

    return tf.image.resize(tf.cast(images, tf.float32), (image_size, image_size), method="bilinear", antialias=True)


def decode_and_resize(encoded, image_size):
    """Encoded image bytes -> float32 [image_size, image_size, 3] in 0..255."""
    return resize(decode_rgb(encoded), image_size)


@dataclass
class LoadedImages:
    """Result of reading a list of image files.

    Args:
        paths: the readable files, in input order.
        labels: their labels.
        pixels: uint8 [N, S, S, 3] when kept in memory, else None.
        bad: (path, reason) of each file that could not be decoded.
    """

    paths: List[str]
    labels: np.ndarray
    pixels: Optional[np.ndarray]
    bad: List[Tuple[str, str]] = field(default_factory=list)


def _reason(exc):
    """The last line of TF's error message without graph decorations ({{...}}, [[node ...]], [Op:...])."""
    text = str(getattr(exc, "message", "") or exc)
    lines = [" ".join(re.sub(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:[^\]]*\]|name: *$", " ", line).split())
             for line in text.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:160] if lines else type(exc).__name__


def _workers():
    # Decoding runs in TF's C++ kernels (the GIL is released): a few threads per core help with file IO.
    return max(2, 2 * (os.cpu_count() or 1))


def load_image_files(files, image_size, keep_pixels=True, desc="reading images"):
    """Decode every file with the training decoder; keep the good ones (and their pixels).

    Args:
        files: [(path, label), ...].
        image_size: side of the square images kept in memory.
        keep_pixels: keep the decoded, resized images (uint8) instead of only checking them.
        desc: progress-bar label.
    """
    import tensorflow as tf
    from tqdm import tqdm

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def read(path):
        image = decode_and_resize(tf.io.read_file(path), image_size)
        return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)

    def one(item):
        try:
            pixels = read(tf.constant(item[0])).numpy()
            return (pixels if keep_pixels else None), None
        except (tf.errors.OpError, OSError) as exc:
            return None, _reason(exc)

    read.get_concrete_function()  # trace once here, not concurrently in every thread
    results = []
    with ThreadPoolExecutor(_workers()) as pool:
        for result in tqdm(pool.map(one, files), total=len(files), desc=desc, unit="img", disable=None, leave=False):
            results.append(result)
    good = [i for i, (_, error) in enumerate(results) if error is None]
    bad = [(files[i][0], error) for i, (_, error) in enumerate(results) if error is not None]
    pixels = None
    if keep_pixels:
        pixels = (np.stack([results[i][0] for i in good]) if good
                  else np.zeros((0, image_size, image_size, 3), np.uint8))
    return LoadedImages(
        paths=[files[i][0] for i in good],
        labels=_labels([files[i][1] for i in good]),
        pixels=pixels,
        bad=bad,
    )


def _labels(values):
    """int64 class ids [N], or float32 multi-hot [N, L] when each label is a vector (label_mode=multi_label)."""
    labels = np.array(values)
    return labels.astype(np.float32) if labels.ndim == 2 else labels.astype(np.int64)


def image_dataset(loaded, image_size):
    """Unbatched `(float32 [S, S, 3] in 0..255, int64 label)` pairs from `LoadedImages`."""
    import tensorflow as tf

    as_float = lambda image, label: (tf.cast(image, tf.float32), label)  # noqa: E731
    if loaded.pixels is not None:
        ds = tf.data.Dataset.from_tensor_slices((loaded.pixels, loaded.labels))
        return ds.map(as_float, num_parallel_calls=tf.data.AUTOTUNE)
    ds = tf.data.Dataset.from_tensor_slices((np.array(loaded.paths, dtype=object).astype(str), loaded.labels))
    read = lambda path, label: (decode_and_resize(tf.io.read_file(path), image_size), label)  # noqa: E731
    return ds.map(read, num_parallel_calls=tf.data.AUTOTUNE)


def describe_files(paths, limit=5):
    """'a, b, c and 4 more' for log lines."""
    names = [os.path.relpath(p) if not os.path.isabs(p) else p for p in paths[:limit]]
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(names) + more


def _check_splits(source, loaded, class_names):
    """Stop when a class has no training image or a split is empty (after skipping bad files)."""
    labels = loaded["train"].labels
    present = set(np.flatnonzero(labels.any(axis=0)).tolist() if labels.ndim == 2 else labels.tolist())
    missing = [name for i, name in enumerate(class_names) if i not in present]
    if missing:
        raise UserError(f"{source}: class(es) {', '.join(missing)} have no readable training images;"
                        " add images or remove those folders.")
    for split in ("train", "validation", "test"):
        if len(loaded[split].labels) == 0:
            raise UserError(f"{source}: the {split} split has no readable images; add more images per class"
                            + (" or raise validation_fraction." if split == "validation" else "."))


def image_file_splits(files, class_names, image_size, on_bad_image="skip", keep_pixels=True, source="the data"):
    """DataSplits of image files already assigned to splits: every file decoded (and checked) once.

    The building block of every image data source: class folders (`image_folder_splits`), a CSV of
    paths and labels (docs/writing-a-recipe.md), or any list a recipe makes.

    Args:
        files: {"train": [(path, label), ...], "validation": [...], "test": [...]}; a label is a class id,
            or a multi-hot vector of length len(class_names) (label_mode=multi_label).
        class_names: index = label.
        image_size: side of the square images (aspect ratio not kept).
        on_bad_image: "skip" (count and name them in the notes) or "error" (stop, naming the first).
        keep_pixels: keep decoded, resized images in memory (else decode every epoch).
        source: what the user named the data with, for messages (e.g. "--data-dir photos/").
    """
    from tl_app.data.reuse import file_stamps, remembered
    from tl_app.recipe import DataSplits

    def load(split):  # decoded once per tune (its trials differ in hyperparameters, not data)
        items = files[split]

        def key():
            return ("image_files", tuple((path, repr(label)) for path, label in items), image_size, keep_pixels,
                    file_stamps(path for path, _ in items))

        desc = f"reading {split} images"
        return remembered(key, lambda: load_image_files(items, image_size, keep_pixels, desc=desc))

    loaded = {split: load(split) for split in ("train", "validation", "test")}
    bad = [item for split in ("train", "validation", "test") for item in loaded[split].bad]
    if bad and on_bad_image == "error":
        path, reason = bad[0]
        more = f" ({len(bad) - 1} more bad file(s))" if len(bad) > 1 else ""
        raise UserError(f"{path}: not a readable image ({reason}){more}; fix or remove it, or --set on_bad_image=skip.")
    _check_splits(source, loaded, class_names)
    notes = []
    if bad:
        notes.append(f"skipped {len(bad)} unreadable image file(s) (on_bad_image=skip): "
                     + "; ".join(f"{p} ({r})" for p, r in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else ""))
    if keep_pixels:
        megabytes = sum(loaded[s].pixels.nbytes for s in loaded) / 2**20
        notes.append(f"decoded images kept in memory: {megabytes:.0f} MB (image_cache=memory)")
    return DataSplits(
        train=image_dataset(loaded["train"], image_size),
        validation=image_dataset(loaded["validation"], image_size),
        test=image_dataset(loaded["test"], image_size),
        class_names=list(class_names),
        notes=notes,
        test_references=list(loaded["test"].paths),
        label_mode="multi_label" if loaded["train"].labels.ndim == 2 else "single_label",
        references={split: list(loaded[split].paths) for split in ("train", "validation")},
    )


def image_folder_splits(data_dir, image_size, validation_fraction=0.1, test_fraction=0.2, seed=42,
                        on_bad_image="skip", keep_pixels=True):
    """DataSplits of a class-folder image data set (see `tl_app.data.class_folders` for the layouts).

    Args:
        data_dir: the folder named with --data-dir.
        image_size: side of the square images (aspect ratio not kept).
        validation_fraction, test_fraction: shares carved per class when the layout has no such split.
        seed: seeds the split.
        on_bad_image: "skip" (count and name them in the notes) or "error" (stop, naming the first).
        keep_pixels: keep decoded, resized images in memory (else decode every epoch).
    """
    from tl_app.data.class_folders import scan_class_folders

    scan = scan_class_folders(data_dir, IMAGE_EXTENSIONS, "image", validation_fraction, test_fraction, seed)
    splits = image_file_splits(scan.files, scan.class_names, image_size, on_bad_image, keep_pixels,
                               source=f"--data-dir {data_dir}")
    notes = [f"image folders: {scan.layout}, {len(scan.class_names)} classes, resized to {image_size}x{image_size}"]
    if scan.ignored:
        notes.append(f"ignored {len(scan.ignored)} non-image file(s) (not {', '.join(IMAGE_EXTENSIONS)}):"
                     f" {describe_files(scan.ignored)}")
    splits.notes[:0] = notes
    return splits
