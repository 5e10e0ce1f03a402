"""Builders the text tests share: a tiny BERT preset directory and small learnable text data sets."""
import csv
import os

import numpy as np

POSITIVE = ["good", "great", "excellent", "superb", "lovely", "wonderful"]
NEGATIVE = ["bad", "awful", "terrible", "poor", "dreadful", "horrible"]
FILLER = ["the", "a", "movie", "film", "was", "is", "very", "plot", "acting", "story", "and", "it", "this", "quite"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCABULARY = SPECIALS + POSITIVE + NEGATIVE + FILLER + [".", ","]


def write_tiny_bert_preset(directory, max_sequence_length=64, seed=0, num_layers=2):
    """A 2-layer (or `num_layers`), 32-hidden BERT with random weights and the test vocabulary, saved as a keras-hub preset."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCABULARY), num_layers=num_layers, num_heads=2, hidden_dim=32, intermediate_dim=64,
        max_sequence_length=max_sequence_length)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY)
    os.makedirs(directory, exist_ok=True)
    backbone.save_to_preset(str(directory))
    tokenizer.save_to_preset(str(directory))
    return str(directory)


def sentiment_texts(n, seed=0, min_words=4, max_words=12):
    """(texts, labels): label 1 texts hold positive words, label 0 negative ones, among filler words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        cue = POSITIVE if label else NEGATIVE
        words = list(rng.choice(FILLER, rng.integers(min_words, max_words)))
        for _ in range(2):
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(cue)))
        texts.append(" ".join(words) + " .")
        labels.append(label)
    return texts, labels


def write_text_folder(root, n_per_class=40, seed=0):
    """DIR/negative/*.txt and DIR/positive/*.txt of `sentiment_texts`."""
    texts, labels = sentiment_texts(2 * n_per_class, seed)
    for i, (text, label) in enumerate(zip(texts, labels)):
        folder = os.path.join(root, "positive" if label else "negative")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{i:04d}.txt"), "w", encoding="utf-8") as f:
            f.write(text)
    return str(root)


def write_text_csv(path, n=80, seed=0, delimiter=",", text_column="review", label_column="sentiment"):
    texts, labels = sentiment_texts(n, seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["id", text_column, label_column])
        for i, (text, label) in enumerate(zip(texts, labels)):
            writer.writerow([i, text, "pos" if label else "neg"])
    return str(path)


LABEL_CUES = {"aside": [","], "complaint": NEGATIVE, "praise": POSITIVE}


def write_label_set_csv(path, n=90, seed=0, separator=";"):
    """A multi-label CSV (`text,labels`): each text holds the cue words of its one or two labels (LABEL_CUES)."""
    rng = np.random.default_rng(seed)
    names = sorted(LABEL_CUES)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "labels"])
        for i in range(n):
            chosen = [names[i % 3]] + ([names[(i + 1 + i // 3 % 2) % 3]] if i % 2 else [])
            words = list(rng.choice(FILLER, rng.integers(4, 9)))
            for name in chosen:
                for _ in range(2):
                    words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(LABEL_CUES[name])))
            writer.writerow([" ".join(words) + " .", separator.join(chosen)])
    return str(path)
