"""EDA-style text augmentation (Wei & Zou 2019): synonym replacement, random insertion, swap, deletion.

Applied to training batches only (the `Recipe.augment` hook), never exported.
Each operation changes about `rate` of a text's words (at least one when the
rate is above 0); synonyms come from a table the user supplies, a TSV
(`word<TAB>synonym<TAB>synonym...`) or JSON (`{"word": ["synonym", ...]}`) file.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from tl_app.errors import UserError


@dataclass
class EdaConfig:
    """Rates of the four operations (share of words each touches; 0 = off) and the synonym table.

    Args:
        synonym_rate: words replaced by a synonym from `synonyms`.
        insertion_rate: synonyms of random words inserted at random positions.
        swap_rate: pairs of words swapped.
        deletion_rate: probability that each word is deleted (one word always survives).
        synonyms: word -> synonyms (lower-case keys).
    """

    synonym_rate: float = 0.0
    insertion_rate: float = 0.0
    swap_rate: float = 0.0
    deletion_rate: float = 0.0
    synonyms: Dict[str, List[str]] = field(default_factory=dict)

    @property
    def active(self):
        return any(r > 0 for r in (self.synonym_rate, self.insertion_rate, self.swap_rate, self.deletion_rate))


def load_synonyms(path):
    """`{word: [synonyms]}` from a TSV or JSON file (see the module docstring); UserError when unusable."""
    if not os.path.isfile(path):
        raise UserError(f"--set synonyms={path}: no such file (TSV word<TAB>synonym... or JSON {{word: [synonyms]}}).")
    with open(path, encoding="utf-8", errors="replace") as f:
        content = f.read()
    table = {}
    if path.lower().endswith(".json"):
        try:
            data = json.loads(content)
        except ValueError as exc:
            raise UserError(f"--set synonyms={path}: not valid JSON ({exc}).") from None
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise UserError(f"--set synonyms={path}: expected a JSON object of word -> list of synonyms.")
        table = {str(k).lower(): [str(s) for s in v if str(s).strip()] for k, v in data.items()}
    else:
        for line in content.splitlines():
            parts = [p.strip() for p in line.split("\t") if p.strip()]
            if len(parts) >= 2:
                table.setdefault(parts[0].lower(), []).extend(parts[1:])
    table = {k: v for k, v in table.items() if v}
    if not table:
        raise UserError(f"--set synonyms={path}: no word with synonyms found (TSV: word<TAB>synonym per line).")
    return table


def _count(rate, n):
    return max(1, int(round(rate * n))) if rate > 0 and n else 0


def augment_words(words, cfg, rng):
    """One EDA pass over a list of words; returns a new list."""
    words = list(words)
    if cfg.synonym_rate > 0 and cfg.synonyms:
        candidates = [i for i, w in enumerate(words) if w.lower() in cfg.synonyms]
        for i in rng.permutation(candidates)[: _count(cfg.synonym_rate, len(words))] if candidates else []:
            words[i] = rng.choice(cfg.synonyms[words[i].lower()])
    if cfg.insertion_rate > 0 and cfg.synonyms:
        with_synonyms = [w for w in words if w.lower() in cfg.synonyms]
        for _ in range(_count(cfg.insertion_rate, len(words)) if with_synonyms else 0):
            word = with_synonyms[rng.integers(len(with_synonyms))]
            words.insert(int(rng.integers(len(words) + 1)), rng.choice(cfg.synonyms[word.lower()]))
    if cfg.swap_rate > 0 and len(words) > 1:
        for _ in range(_count(cfg.swap_rate, len(words))):
            i, j = rng.choice(len(words), 2, replace=False)
            words[i], words[j] = words[j], words[i]
    if cfg.deletion_rate > 0 and len(words) > 1:
        kept = [w for w in words if rng.random() >= cfg.deletion_rate]
        words = kept or [words[int(rng.integers(len(words)))]]
    return words


def augment_text(text, cfg, rng):
    """EDA on one string (split on whitespace, joined with single spaces)."""
    words = text.split()
    return " ".join(augment_words(words, cfg, rng)) if words else text


def augment_batches(batched_dataset, cfg, seed):
    """Apply EDA to the strings of a batched `(texts, labels)` dataset (a py_function: training only)."""
    import tensorflow as tf

    if not cfg.active:
        return batched_dataset
    rng = np.random.default_rng(seed)

    def apply(texts):
        out = [augment_text(t.decode("utf-8", errors="replace"), cfg, rng) for t in texts.numpy()]
        return tf.constant(out, tf.string)

    def mapped(texts, labels):
        augmented = tf.py_function(apply, [texts], tf.string)
        augmented.set_shape(texts.shape)
        return augmented, labels

    return batched_dataset.map(mapped).prefetch(tf.data.AUTOTUNE)
