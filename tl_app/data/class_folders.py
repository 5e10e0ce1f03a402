"""Class-folder data sets: one sub-folder per class, split into train/validation/test.

Two layouts are accepted (the same rules for images and text):
- `DIR/<class>/<file>`: split per class by seeded fractions (stratified);
- `DIR/train/<class>/...`, `DIR/test/<class>/...`, optionally `DIR/validation/`
  (or `DIR/val/`): the given splits; validation carved from train when absent.
Files whose extension is not one of the accepted ones are ignored and counted.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from tl_app.errors import UserError

VALIDATION_NAMES = ("validation", "val")


@dataclass
class ClassFolderSplits:
    """`{split: [(path, label), ...]}` for train/validation/test, and the class names."""

    files: Dict[str, List[Tuple[str, int]]]
    class_names: List[str]
    ignored: List[str] = field(default_factory=list)  # files with other extensions
    layout: str = "class folders"


def _class_dirs(root):
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))


def _files_of(folder, extensions, ignored):
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = os.path.join(dirpath, filename)
            (found if filename.lower().endswith(extensions) else ignored).append(path)
    return found


def _scan_classes(root, extensions, ignored, kind, class_names=None):
    """{class: [paths]} for the class folders under `root`, checked."""
    names = _class_dirs(root)
    if class_names is not None:
        extra = sorted(set(names) - set(class_names))
        if extra:
            raise UserError(f"{root}: class folder(s) {', '.join(extra)} do not exist under train/; each split needs the same classes.")
        names = class_names
    per_class = {}
    for name in names:
        folder = os.path.join(root, name)
        files = _files_of(folder, extensions, ignored) if os.path.isdir(folder) else []
        if not files:
            raise UserError(f"class folder {folder} has no {kind} files ({', '.join(extensions)}); add some or remove the folder.")
        per_class[name] = files
    return per_class


def _layout_error(data_dir, kind, extensions):
    return UserError(
        f"--data-dir {data_dir}: expected one sub-folder per class holding {kind} files ({', '.join(extensions)}),"
        " e.g. DIR/cats/1.jpg and DIR/dogs/2.jpg, or DIR/train/<class>/... and DIR/test/<class>/..."
    )


def _stratified(per_class, class_names, fractions, seed):
    """Split each class's files by seeded fractions; returns a list of [(path, label)] per part."""
    from tl_app.data.splits import stratified_indices

    files = [(path, label) for label, name in enumerate(class_names) for path in per_class[name]]
    labels = [label for _, label in files]
    parts = stratified_indices(labels, len(class_names), fractions, seed, sort=False)
    return [[files[i] for i in part] for part in parts]


def scan_class_folders(data_dir, extensions, kind, validation_fraction=0.1, test_fraction=0.2, seed=42):
    """Find the files and classes of a class-folder data set; see the module docstring.

    Args:
        data_dir: the folder the user named with --data-dir.
        extensions: lower-case file endings to accept, e.g. (".jpg", ".png").
        kind: what the files are, for messages ("image", "text").
    """
    if not data_dir:
        raise UserError(f"this recipe needs --data-dir DIR: a folder with one sub-folder per class of {kind} files.")
    if not os.path.isdir(data_dir):
        raise UserError(f"--data-dir {data_dir}: no such directory.")
    ignored = []
    extensions = tuple(extensions)
    top = _class_dirs(data_dir)
    if "train" in top:
        if "test" not in top:
            raise UserError(f"--data-dir {data_dir}: has train/ but no test/; add test/<class>/... or use plain class folders.")
        train = _scan_classes(os.path.join(data_dir, "train"), extensions, ignored, kind)
        class_names = sorted(train)
        test = _scan_classes(os.path.join(data_dir, "test"), extensions, ignored, kind, class_names)
        val_dir = next((os.path.join(data_dir, v) for v in VALIDATION_NAMES if v in top), None)
        test_files = [(p, i) for i, n in enumerate(class_names) for p in test[n]]
        if val_dir:
            val = _scan_classes(val_dir, extensions, ignored, kind, class_names)
            train_files = [(p, i) for i, n in enumerate(class_names) for p in train[n]]
            val_files = [(p, i) for i, n in enumerate(class_names) for p in val[n]]
        else:
            train_files, val_files = _stratified(train, class_names, (validation_fraction,), seed)
        files = {"train": train_files, "validation": val_files, "test": test_files}
        layout = "train/test folders"
    else:
        if not top:
            raise _layout_error(data_dir, kind, extensions)
        per_class = _scan_classes(data_dir, extensions, ignored, kind)
        class_names = sorted(per_class)
        train_files, val_files, test_files = _stratified(per_class, class_names, (validation_fraction, test_fraction), seed)
        files = {"train": train_files, "validation": val_files, "test": test_files}
        layout = "class folders split by seeded fractions"
    if len(class_names) < 2:
        raise UserError(f"--data-dir {data_dir}: found {len(class_names)} class folder(s) ({', '.join(class_names)}); a classifier needs at least two.")
    for split in ("train", "test"):
        if not files[split]:
            raise UserError(f"--data-dir {data_dir}: the {split} split is empty; add more files per class.")
    return ClassFolderSplits(files=files, class_names=class_names, ignored=ignored, layout=layout)
