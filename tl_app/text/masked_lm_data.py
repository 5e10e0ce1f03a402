"""Masked-LM batches from raw texts, with masks that are a function of (seed, epoch, batch).

keras-hub's `BertMaskedLMPreprocessor` tokenizes, packs and masks (BERT's
recipe: 15% of the tokens selected; of those 80% become [MASK], 10% a random
token, 10% stay). Its TensorFlow masking path draws from unseeded stateful
random ops, and in a `tf.data` pipeline their state depends on what the
process traced before and on thread timing: a restarted run, or the same
held-out texts masked twice, would see other masks. So the batches here use
the preprocessor's own layers in two steps:

    texts -> preprocessor.tokenizer -> preprocessor.packer        (once per run: `packed_token_ids`)
          -> preprocessor.masker on its Python path, with Python's RNG
             seeded by (seed, epoch, batch) for that one call       (a numpy_function, every epoch)
          -> ({token_ids, padding_mask, segment_ids, mask_positions}, mask_ids, mask_weights)

which is what the preprocessor returns, and what `BertMaskedLM` trains on.
Each epoch also has its own seeded order of the texts. A resumed phase
therefore sees exactly the batches the uninterrupted one would have, and the
held-out batches (`heldout_batches`) are the same masks before and after
adaptation. The masker's Python path selects each token with probability 15%
(its TensorFlow path selects exactly 15% of each text), so `mask_slots` leaves
room for the binomial spread.
"""
import math
import random
import threading

import numpy as np

MASK_SELECTION_RATE = 0.15
MASK_TOKEN_RATE = 0.8
RANDOM_TOKEN_RATE = 0.1
HELDOUT_EPOCH = -1  # the masks of the held-out texts: their own seed, never a training epoch's
_PYTHON_RANDOM = threading.Lock()  # the masker draws from Python's global RNG: one seeded call at a time


def mask_slots(sequence_length, rate=MASK_SELECTION_RATE):
    """Masked positions a sequence can hold (`mask_selection_length`): mean + 3 standard deviations of the
    binomial selection over its sequence_length - 2 tokens, so almost no text has selections cut off.

    Examples:
        >>> mask_slots(128)
        31
    """
    n = sequence_length - 2
    return max(1, min(n, int(math.ceil(n * rate + 3 * math.sqrt(n * rate * (1 - rate))))))


def masked_lm_preprocessor(tokenizer, sequence_length):
    """keras-hub's `BertMaskedLMPreprocessor` with BERT's masking rates, built (its packer and masker exist).

    Args:
        tokenizer: the encoder's `BertTokenizer`.
        sequence_length: tokens per packed text, [CLS] and [SEP] included.
    """
    import keras_hub

    preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer, sequence_length=sequence_length, mask_selection_rate=MASK_SELECTION_RATE,
        mask_selection_length=mask_slots(sequence_length), mask_token_rate=MASK_TOKEN_RATE,
        random_token_rate=RANDOM_TOKEN_RATE)
    preprocessor.build(None)
    return preprocessor


class SeededMasker:
    """The preprocessor's masker on its Python path, seeded per call by (seed, epoch, batch).

    Args:
        masker: `BertMaskedLMPreprocessor.masker` (keras-hub's `MaskedLMMaskGenerator`).
        seed: the run's seed.
    """

    def __init__(self, masker, seed):
        self.masker = masker
        self.seed = int(seed)

    def __call__(self, epoch, batch, token_ids):
        with _PYTHON_RANDOM:
            state = random.getstate()
            random.seed(f"tl_app masked-LM {self.seed} {int(epoch)} {int(batch)}")
            try:
                out = self.masker(np.asarray(token_ids))  # numpy in, not in a tf.function: the Python path
            finally:
                random.setstate(state)
        return (np.asarray(out["token_ids"], np.int32), np.asarray(out["mask_positions"], np.int32),
                np.asarray(out["mask_ids"], np.int32), np.asarray(out["mask_weights"], np.float32))


def packed_token_ids(preprocessor, texts, chunk=512):
    """int32 [len(texts), sequence_length]: the texts tokenized and packed ([CLS] ... [SEP] [PAD]...) once.

    Args:
        preprocessor: from `masked_lm_preprocessor` (its tokenizer and packer, in the graph).
        texts: the documents.
        chunk: texts tokenized per call.
    """
    import tensorflow as tf

    strings = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(chunk)
    packed = strings.map(lambda t: preprocessor.packer(preprocessor.tokenizer(t))[0])
    return np.concatenate(list(packed.as_numpy_iterator())).astype(np.int32)


def epoch_order(n, seed, epoch):
    """The seeded order of `n` texts in `epoch` (the same in every process)."""
    return np.random.default_rng([int(seed), int(epoch) + 1]).permutation(n)


def masked_batches(preprocessor, token_ids, batch_size, seed, epochs, shuffle=True, drop_remainder=False):
    """`(dataset, steps_per_epoch)`: masked batches of `token_ids` for each epoch in `epochs`, one epoch after the other.

    Args:
        preprocessor: from `masked_lm_preprocessor` (its masker).
        token_ids: the packed texts, from `packed_token_ids`.
        batch_size: texts per batch.
        seed: the run's seed; masks and orders are functions of (seed, epoch, batch).
        epochs: the epoch numbers, in order (e.g. `range(first, last)`, or `[HELDOUT_EPOCH]`).
        shuffle: each epoch in its own seeded order (else the texts' order).
        drop_remainder: drop each epoch's partial last batch.
    """
    import tensorflow as tf

    from tl_app.engine.datasets import ready_to_fit

    epochs = [int(e) for e in epochs]
    n = len(token_ids)
    steps = n // batch_size if drop_remainder else -(-n // batch_size)
    orders = np.stack([epoch_order(n, seed, e) if shuffle else np.arange(n) for e in epochs]).astype(np.int64)
    all_ids = tf.constant(token_ids, tf.int32)
    masker = SeededMasker(preprocessor.masker, seed)
    slots = preprocessor.mask_selection_length
    pad_id = preprocessor.tokenizer.pad_token_id

    def one_epoch(order, epoch):
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder)
        return batches.enumerate().map(lambda b, index: (epoch, b, tf.gather(all_ids, index)))

    def mask(epoch, b, ids):
        masked, positions, mask_ids, weights = tf.numpy_function(
            masker, [epoch, b, ids], [tf.int32, tf.int32, tf.int32, tf.float32], stateful=False)
        masked.set_shape(ids.shape)
        for t in (positions, mask_ids, weights):
            t.set_shape([ids.shape[0], slots])
        x = {"token_ids": masked, "padding_mask": ids != pad_id, "segment_ids": tf.zeros_like(ids),  # one segment
             "mask_positions": positions}
        return x, mask_ids, weights

    ds = tf.data.Dataset.from_tensor_slices((orders, tf.constant(epochs, tf.int64))).flat_map(one_epoch)
    ds = ds.map(mask)  # each call seeds the RNG for its batch alone: any order of calls gives the same batches
    return ready_to_fit(ds), steps


def heldout_batches(preprocessor, token_ids, batch_size, seed):
    """The held-out texts (`packed_token_ids`) masked once (seeded), kept in memory: every evaluation sees the same masks."""
    import tensorflow as tf

    from tl_app.engine.strategies import with_data_sharding

    ds, _ = masked_batches(preprocessor, token_ids, batch_size, seed, [HELDOUT_EPOCH], shuffle=False)
    batches = list(ds.as_numpy_iterator())
    x = {k: np.concatenate([b[0][k] for b in batches]) for k in batches[0][0]}
    y = np.concatenate([b[1] for b in batches])
    w = np.concatenate([b[2] for b in batches])
    return with_data_sharding(tf.data.Dataset.from_tensor_slices((x, y, w)).batch(batch_size).cache())
