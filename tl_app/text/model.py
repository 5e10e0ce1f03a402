"""The text classifier: raw strings in, class probabilities out, for any encoder of `text.encoders`.

    strings [N]
      -> TextInputs (tokenize, truncate, [CLS] ... [SEP] or <s> ... </s>, pad)   text.packing
      -> the keras-hub backbone (BertBackbone, RobertaBackbone, ...; frozen in the head phase), given the
         inputs it takes (token_ids and padding_mask; segment_ids too for BERT, ALBERT, ELECTRA)
      -> pooling: "cls"  = the backbone's pooled_output where that pooler was pretrained (dense + tanh on
                           [CLS], as the BERT paper and keras-hub's BertTextClassifier use: BERT, ALBERT),
                           else the first token's vector ([CLS] or <s>), or
                  "mean" = mean of the token vectors under the padding mask (sentence-transformers'
                           pooling, what MiniLM was trained for)            -> the cached features
      -> [Dense(hidden_units, relu)]   only when hidden_units > 0 (`engine.heads`; 0 by default)
      -> Dropout -> Dense(num_classes, softmax (or sigmoid: multi_label), float32)

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
        backbone: the keras-hub backbone inside `model`.
        inputs_layer: the `TextInputs` layer (tokenizer and packer).
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
    """The backbone's pooled [CLS] output ([N, H]), or the first token's vector of [N, T, H]; float32 out
    (the feature cache stores float32)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, pooled):
        if len(pooled.shape) == 3:
            pooled = pooled[:, 0, :]
        return keras.ops.cast(pooled, self.compute_dtype)


def backbone_input_names(backbone):
    """The names of the inputs a keras-hub backbone takes (a dict-input functional model)."""
    inputs = backbone.input
    if isinstance(inputs, dict):
        return list(inputs)
    return [tensor.name for tensor in backbone.inputs]


def has_pooled_output(backbone):
    return isinstance(backbone.output, dict) and "pooled_output" in backbone.output


def build_text_classifier(backbone, tokenizer, num_classes, sequence_length, pooling="mean", dropout=0.1,
                          regularizer=None, name="bert_text_classifier", pretrained_pooler=True,
                          activation="softmax", hidden_units=0):
    """Assemble the classifier described in the module docstring.

    Args:
        backbone: a keras-hub text backbone (`BertBackbone`, `RobertaBackbone`, ...; pretrained weights loaded).
        tokenizer: the matching keras-hub tokenizer.
        num_classes: size of the softmax.
        sequence_length: packed length (start and end tokens included); at most the backbone's max_sequence_length.
        pooling: "cls" or "mean".
        pretrained_pooler: with "cls", pool with the backbone's pooled_output (when it has one) only if True,
            else with the first token's vector (`text.encoders`: a pooler pretraining never trained is random).
        dropout: rate of the Dropout before the Dense head.
        regularizer: of the head's kernels (`engine.regularizers.head_regularizer`), or None.
        name: the model's name.
        activation: of the head: "softmax" (one class per text) or "sigmoid" (label_mode=multi_label).
        hidden_units: width of a relu Dense layer between the features and the Dropout; 0 = none.
    """
    from tl_app.engine.heads import apply_head, head_layers
    from tl_app.text.packing import TextInputs

    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    inputs_layer = TextInputs(tokenizer, sequence_length, name="bert_inputs")  # the layer name exports have had
    text = keras.Input(shape=(), dtype="string", name="text")
    packed = inputs_layer(text)
    outputs = backbone({key: packed[key] for key in backbone_input_names(backbone)})
    sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    if pooling == "mean":
        features = MaskedMeanPooling(name="mean_pooling")(sequence, packed["padding_mask"])
    elif pretrained_pooler and has_pooled_output(backbone):
        features = ClsPooling(name="cls_pooling")(outputs["pooled_output"])
    else:
        features = ClsPooling(name="cls_pooling")(sequence)  # the first token's vector
    head_chain = head_layers(num_classes, dropout, hidden_units, regularizer, activation)
    model = keras.Model(text, apply_head(head_chain, features), name=name)
    extractor = keras.Model(text, features, name=f"{name}_features")
    feature_input = keras.Input(shape=(features.shape[-1],), name="features")
    head = keras.Model(feature_input, apply_head(head_chain, feature_input), name=f"{name}_head")
    return TextClassifier(model=model, backbone=backbone, inputs_layer=inputs_layer, extractor=extractor, head=head)
