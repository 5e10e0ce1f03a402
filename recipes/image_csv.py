"""`image_csv`: your images listed in a CSV/TSV file (`path,labels` rows) with the image family.

Paths are relative to the CSV file (or absolute). Single-label (the default): one class name per
row, stratified seeded splits. `--set label_mode=multi_label`: a row's labels are names joined by
`label_separator` (default `;`), or 0/1 columns named by `label_columns=a,b,c`; label names come from
the data, sorted; seeded splits, and a label the train split never shows is refused.
"""
import os
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from tl_app.errors import UserError
from tl_app.image import ImageClassification, ImageConfig
from tl_app.registry import register


@dataclass
class ImageCsvConfig(ImageConfig):
    path_column: str = "path"  # image file paths, relative to the CSV file
    label_column: str = "labels"  # a class name; multi_label: names joined by label_separator
    delimiter: Optional[str] = None  # one character; None: tab for .tsv/.tab, else sniffed
    on_bad_row: Literal["skip", "error"] = "skip"  # wrong number of fields, an empty path or label


@register("image_csv")
class ImageCsv(ImageClassification):
    """Your images listed in a CSV file (--data-dir FILE with path,labels rows; --set label_mode=multi_label)."""

    Config = ImageCsvConfig
    defaults = ImageCsvConfig(epochs=5, fine_tune_epochs=5)
    reads_label_sets = True

    def check_config(self):
        from tl_app.data.csv_table import check_delimiter

        super().check_config()
        check_delimiter(self.config.delimiter)

    def load_images(self):
        from tl_app.image.data import image_file_splits

        cfg = self.config
        if not cfg.data_dir:
            raise UserError("image_csv needs --data-dir FILE: a CSV/TSV file with a header row (columns"
                            f" '{cfg.path_column}' and '{cfg.label_column}').")
        paths, labels, names, parts, notes = (self._label_sets() if self.multi_label else self._classes())
        base = os.path.dirname(os.path.abspath(cfg.data_dir))
        paths = [os.path.join(base, p) for p in paths]  # an absolute path stays as it is
        files = {split: [(paths[i], labels[i]) for i in part] for split, part in zip(("train", "validation", "test"), parts)}
        data = image_file_splits(files, names, cfg.image_size, cfg.on_bad_image, keep_pixels=cfg.image_cache == "memory",
                                 source=f"--data-dir {cfg.data_dir}")
        data.notes[:0] = notes
        return data

    def _label_sets(self):
        from tl_app.data.label_sets import read_label_set_table

        return read_label_set_table(self.config.data_dir, "path", self.config.path_column, self.config)

    def _classes(self):
        from tl_app.data.csv_table import read_columns
        from tl_app.data.splits import stratified_indices

        cfg = self.config
        table = read_columns(cfg.data_dir, [("path", cfg.path_column), ("label", cfg.label_column)], cfg.delimiter,
                             cfg.on_bad_row, "--set path_column=... --set label_column=...")
        strings = table.values[cfg.label_column]
        joined = next((s for s in strings if any(sep in s for sep in (cfg.label_separator, "|"))), None)
        names = sorted(set(strings))
        if len(names) < 2:
            raise UserError(f"{cfg.data_dir}: column '{cfg.label_column}' has {len(names)} class(es); a classifier"
                            " needs at least two" + (f" (labels such as {joined!r} look like label sets: --set"
                                                     " label_mode=multi_label)" if joined else "") + ".")
        if joined is not None:
            table_notes = [f"labels such as {joined!r} are read as one class name; --set label_mode=multi_label reads"
                           " them as label sets"]
        else:
            table_notes = []
        index = {name: i for i, name in enumerate(names)}
        labels = np.array([index[s] for s in strings], np.int64)
        parts = stratified_indices(labels, len(names), (cfg.validation_fraction, cfg.test_fraction), cfg.seed)
        return table.values[cfg.path_column], labels, names, parts, table.notes(cfg.data_dir) + table_notes
