"""The BERT text classifier: raw strings in, class probabilities out.

    strings [N]
      -> BertTextInputs (tokenize, truncate, [CLS] ... [SEP], pad)   text.packing
      -> BertBackbone (keras-hub; frozen in the head phase)
      -> pooling: "cls"  = the backbone's pooled_output (dense + tanh on [CLS], as the BERT paper
                           and keras-hub's BertTextClassifier use), or
                  "mean" = mean of the token vectors under the padding mask (sentence-transformers'
                           pooling, what MiniLM was trained for)            -> the cached features
      -> Dropout -> Dense(num_classes, softmax, float32)

The model takes strings so the same graph trains and serves; `extractor`
(strings -> pooled features) and `head` (features -> probabilities) share its
layers for the feature cache.
"""
from dataclasses import dataclass
from typing import Any

import keras

POOLINGS = ("cls", "mean")


@dataclass
class TextClassifier:
    """The full model and its parts (all sharing layers).

    Args:
        model: strings -> probabilities.
        backbone: the keras-hub BertBackbone inside `model`.
        inputs_layer: the `BertTextInputs` layer (tokenizer and packer).
        extractor: strings -> pooled features.
        head: pooled features -> probabilities.
    """

    model: Any
    backbone: Any
    inputs_layer: Any
    extractor: Any
    head: Any


class MaskedMeanPooling(keras.layers.Layer):
    """Mean of `[N, T, H]` token vectors over the positions where `mask` [N, T] is true; float32 out."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")  # pooled features are what the feature cache stores
        super().__init__(**kwargs)

    def call(self, sequence, mask):
        weights = keras.ops.cast(keras.ops.expand_dims(mask, -1), self.compute_dtype)
        total = keras.ops.sum(keras.ops.cast(sequence, self.compute_dtype) * weights, axis=1)
        count = keras.ops.maximum(keras.ops.sum(weights, axis=1), 1.0)
        return total / count


class ClsPooling(keras.layers.Layer):
    """The backbone's pooled [CLS] output, cast to float32 (the feature cache stores float32)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, pooled):
        return keras.ops.cast(pooled, self.compute_dtype)


def build_text_classifier(backbone, tokenizer, num_classes, sequence_length, pooling="mean", dropout=0.1,
                          regularizer=None, name="bert_text_classifier"):
    """Assemble the classifier described in the module docstring.

    Args:
        backbone: a keras-hub `BertBackbone` (pretrained weights loaded).
        tokenizer: the matching keras-hub `BertTokenizer`.
        num_classes: size of the softmax.
        sequence_length: packed length ([CLS] and [SEP] included); at most the backbone's max_sequence_length.
        pooling: "cls" or "mean".
        dropout: rate of the Dropout before the Dense head.
        regularizer: of the head's kernel (`engine.regularizers.head_regularizer`), or None.
        name: the model's name.
    """
    from tl_app.text.packing import BertTextInputs

    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    inputs_layer = BertTextInputs(tokenizer, sequence_length, name="bert_inputs")
    text = keras.Input(shape=(), dtype="string", name="text")
    packed = inputs_layer(text)
    outputs = backbone(packed)
    if pooling == "mean":
        features = MaskedMeanPooling(name="mean_pooling")(outputs["sequence_output"], packed["padding_mask"])
    else:
        features = ClsPooling(name="cls_pooling")(outputs["pooled_output"])
    head_dropout = keras.layers.Dropout(dropout, name="head_dropout")
    classify = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", kernel_regularizer=regularizer,
                                  name="probabilities")
    model = keras.Model(text, classify(head_dropout(features)), name=name)
    extractor = keras.Model(text, features, name=f"{name}_features")
    feature_input = keras.Input(shape=(features.shape[-1],), name="features")
    head = keras.Model(feature_input, classify(head_dropout(feature_input)), name=f"{name}_head")
    return TextClassifier(model=model, backbone=backbone, inputs_layer=inputs_layer, extractor=extractor, head=head)
