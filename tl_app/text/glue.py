"""GLUE SST-2 from TensorFlow Datasets as `RawTexts`.

`tl_app.data.tfds_source.load_tfds` asks for `as_supervised=True`, which GLUE
does not support (its examples are dicts: sentence, label, idx). This module
takes the same fail-fast builder (`tfds_source.prepared_builder`) and reads
the dicts itself.
"""
import numpy as np

from tl_app.data import tfds_source
from tl_app.data.splits import stratified_indices
from tl_app.text.files import RawTexts

SST2 = "glue/sst2"
SST2_OFFLINE_HINT = ("Run once online, or use text_csv / text_folder with your own data"
                     " (e.g. --data-dir sst2.tsv --set text_column=sentence --set label_column=label).")


def _read_split(builder, split):
    texts, labels = [], []
    for batch in builder.as_dataset(split=split).batch(4096):
        texts.extend(t.decode("utf-8", errors="replace") for t in batch["sentence"].numpy())
        labels.append(batch["label"].numpy())
    return texts, np.concatenate(labels).astype(np.int64) if labels else np.zeros([0], np.int64)


def sst2_texts(data_dir=None, validation_fraction=0.1, seed=42):
    """SST-2: train minus a seeded validation share for training, the labelled GLUE validation split as test.

    GLUE's test split has no labels (all -1), so results are reported on its validation split.

    Args:
        data_dir: tfds data directory (None: tfds's default).
        validation_fraction: share of train held out (stratified, seeded) for validation during training.
        seed: seed of that split.
    """
    builder = tfds_source.prepared_builder(SST2, data_dir, SST2_OFFLINE_HINT)
    class_names = list(builder.info.features["label"].names)
    train_texts, train_labels = _read_split(builder, "train")
    test_texts, test_labels = _read_split(builder, "validation")
    keep, held = stratified_indices(train_labels, len(class_names), (validation_fraction,), seed)
    splits = {
        "train": ([train_texts[i] for i in keep], train_labels[keep]),
        "validation": ([train_texts[i] for i in held], train_labels[held]),
        "test": (test_texts, test_labels),
    }
    notes = ["sst2: GLUE's test split has no labels; reporting on its validation split,"
             f" with {len(held)} training sentences held out for validation during training"]
    return RawTexts(splits=splits, class_names=class_names, notes=notes, test_split_name="validation")
