"""Token attributions for the text classifiers: integrated gradients (Sundararajan, Taly and Yan, ICML 2017)
on the token embeddings, summed into words.

For a text and a class, the path from a baseline to the text's token embeddings is sampled at `steps`
points (the midpoint rule); the class probability's gradient at each point, averaged and multiplied by
(embedding - baseline), gives each token its share of p(class | text) - p(class | baseline): the shares
add up to that difference (the completeness axiom, checked by the tests). The baseline keeps [CLS], [SEP]
and the padding as they are and puts the tokenizer's padding token's embedding in place of every word
piece, so only the words are credited; position and segment embeddings are added inside the backbone,
after the point where the path is drawn.

The classifier is the text family's (`text.model`: strings -> `TextInputs` -> keras-hub backbone ->
pooling -> head), called whole: while the attributions are computed, the backbone's `token_embedding`
layer returns the path's points instead of looking its ids up, so any keras-hub backbone with a
`token_embedding` layer (BERT, RoBERTa, ALBERT, DeBERTaV3, ...) and any head work unchanged.
"""
import contextlib
from dataclasses import dataclass
from typing import List

import numpy as np

from tl_app.errors import UserError

STEPS = 32  # the midpoint rule's points; the completeness gap at 32 is well under 1% of the difference
CONTINUATION, WORD_STARTS = "##", ("\u0120", "\u2581")  # WordPiece's "##x"; BPE's "Ġx" and SentencePiece's "▁x"


@dataclass
class Attribution:
    """One explained text: its words, each word's share of the class probability, and the totals.

    Args:
        words: the text's words as the tokenizer split them (word pieces joined back; truncated texts end early).
        scores: each word's attribution (positive: evidence for the class), same length as `words`.
        probability: p(class | text).
        baseline_probability: p(class | baseline), the all-padding text.
    """

    words: List[str]
    scores: np.ndarray
    probability: float
    baseline_probability: float

    @property
    def gap(self):
        """How far the attributions' sum is from p(text) - p(baseline) (the integration's error)."""
        return float(self.scores.sum() - (self.probability - self.baseline_probability))


def _layers(model):
    """(TextInputs layer, keras-hub backbone) of a text classifier; UserError when `model` is not one."""
    from tl_app.text.packing import TextInputs

    inputs_layer = next((layer for layer in model.layers if isinstance(layer, TextInputs)), None)
    backbone = next((layer for layer in model.layers if hasattr(layer, "token_embedding")), None)
    if inputs_layer is None or backbone is None:
        raise UserError(f"{model.name}: not a text classifier with a token embedding (strings -> tokenizer -> "
                        "encoder), so it has no token attributions.")
    return inputs_layer, backbone


@contextlib.contextmanager
def _embeddings_replaced(embedding, points):
    """While inside, `embedding` (a Keras layer) returns `points` whatever ids it is given."""
    import keras

    embedding.call = lambda *args, **kwargs: keras.ops.cast(points(), embedding.compute_dtype)
    try:
        yield
    finally:
        del embedding.call  # the class's own call again


def words_of(tokens, scores):
    """(words, scores summed per word) of word pieces: "##x" continues a word (WordPiece); where the
    tokenizer marks word starts ("Ġx" BPE, "▁x" SentencePiece) an unmarked piece continues one.

    Examples:
        >>> words_of(["foot", "##ball", "wins"], np.array([0.25, 0.5, 0.125]))
        (['football', 'wins'], array([0.75 , 0.125]))
        >>> words_of(["\u0120Foot", "ball", "\u0120wins"], np.array([1.0, 1.0, 0.5]))[0]
        ['Football', 'wins']
    """
    marked = any(t.startswith(WORD_STARTS) for t in tokens)
    words, summed = [], []
    for token, score in zip(tokens, scores):
        starts = token.startswith(WORD_STARTS) if marked else not token.startswith(CONTINUATION)
        piece = token[1:] if marked and starts else token[len(CONTINUATION):] if token.startswith(CONTINUATION) else token
        if starts or not words:
            words.append(piece)
            summed.append(float(score))
        else:
            words[-1] += piece
            summed[-1] += float(score)
    return words, np.asarray(summed)


def integrated_gradients(model, texts, classes, steps=STEPS):
    """`[Attribution]` of `classes` (one per text) for `texts` under the text classifier `model`.

    Args:
        model: a text classifier (`text.model.build_text_classifier`'s `model`: strings -> probabilities).
        texts: the raw strings, as the model takes them.
        classes: the class explained for each text (e.g. the predicted or the suggested class).
        steps: points of the path (the midpoint rule).

    Examples:
        >>> attributions = integrated_gradients(model, ["a great film"], [1])  # doctest: +SKIP
        >>> attributions[0].words, attributions[0].scores.round(2)  # doctest: +SKIP
        (['a', 'great', 'film'], array([0.01, 0.42, 0.03]))
    """
    import tensorflow as tf

    inputs_layer, backbone = _layers(model)
    embedding, tokenizer = backbone.token_embedding, inputs_layer.tokenizer

    @tf.function(reduce_retracing=True)
    def along(strings, points, cls):
        """(p(cls) at each point, its gradient there): traced once, with the embedding replaced while tracing."""
        with tf.GradientTape() as tape:
            tape.watch(points)
            with _embeddings_replaced(embedding, lambda: points):
                probability = model(strings, training=False)[:, cls]
            total = tf.reduce_sum(probability)
        return probability, tape.gradient(total, points)

    alphas = tf.constant((np.arange(steps) + 0.5) / steps, tf.float32)[:, None, None]
    packed = inputs_layer(tf.constant(list(texts)))
    results = []
    for k, (text, cls) in enumerate(zip(texts, classes)):
        ids = packed["token_ids"][k]
        words_at = packed["padding_mask"][k] & (ids != inputs_layer.cls_id) & (ids != inputs_layer.sep_id)
        actual = tf.cast(embedding(ids), tf.float32)
        baseline = tf.where(words_at[:, None], tf.cast(embedding(tf.fill(tf.shape(ids), inputs_layer.pad_id)),
                                                       tf.float32), actual)
        cls = tf.constant(int(cls))
        _, gradients = along(tf.constant([text] * steps), baseline + alphas * (actual - baseline), cls)
        token_scores = tf.reduce_sum(tf.reduce_mean(gradients, axis=0) * (actual - baseline), axis=-1).numpy()
        ends, _ = along(tf.constant([text, text]), tf.stack([actual, baseline]), cls)
        kept = np.flatnonzero(words_at.numpy())
        tokens = [tokenizer.id_to_token(int(i)) for i in ids.numpy()[kept]]
        words, scores = words_of(tokens, token_scores[kept])
        results.append(Attribution(words, scores, float(ends[0]), float(ends[1])))
    return results
