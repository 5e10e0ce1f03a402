"""Text exports on token ids: a signature without the in-graph tokenizer, and the tokenizer as files.

keras-hub's WordPiece preprocessing calls `normalize_utf8`, `regex_split` and
`case_fold_utf8`, which have no TFLite kernels. So a text export also carries

- `serving_token_ids(token_ids, segment_ids, padding_mask)`: int32 [N, L] each
  (L = sequence_length), the classifier after its tokenizer, with the outputs of
  every signature (`probabilities`, `class_id`, `class_name`); TFLite converts it;
- `assets.extra/vocab.txt` and `assets.extra/tokenizer.json`: the WordPiece
  vocabulary and settings the model trained with, and the packing
  (`text.packing`): [CLS], the first L - 2 ids, [SEP], [PAD] up to L;
  segment_ids all 0; padding_mask 1 on [CLS] ... [SEP], 0 on padding.

`tokenizer_from_files` rebuilds that exact tokenizer and packer from the two
files, which is how `tl-app tflite` makes the LiteRT model's inputs from texts.
"""
import json
import os

from tl_app.errors import UserError
from tl_app.export.signatures import ServingSignature, classification_outputs

TOKEN_IDS_SIGNATURE = "serving_token_ids"
TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")
VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
# keras-hub WordPieceTokenizer settings that change which ids a text gets.
TOKENIZER_SETTINGS = ("lowercase", "strip_accents", "split", "split_on_cjk", "suffix_indicator", "oov_token",
                      "special_tokens_in_strings")


def packed_classifier(classifier):
    """The classifier after its tokenizer: a Keras model from [token_ids, segment_ids, padding_mask] to
    probabilities, sharing the classifier's layers (and so its trained weights).

    Args:
        classifier: a `tl_app.text.model.TextClassifier`.
    """
    import keras

    outputs = classifier.inputs_layer.output
    if not isinstance(outputs, dict):  # Keras hands a layer's dict output back flattened
        outputs = keras.tree.pack_sequence_as({name: name for name in TOKEN_INPUTS}, outputs)
    return keras.Model([outputs[name] for name in TOKEN_INPUTS], classifier.model.output,
                       name=f"{classifier.model.name}_token_ids")


def token_id_signature(classifier, class_names):
    """`serving_token_ids`: int32 token_ids, segment_ids, padding_mask [N, L] -> the classification outputs.

    Args:
        classifier: a `tl_app.text.model.TextClassifier`.
        class_names: index -> name, for `class_name`.

    Examples:
        >>> signature = token_id_signature(recipe._classifier_of(model), data.class_names)  # doctest: +SKIP
        >>> [spec.name for spec in signature.input_signature]  # doctest: +SKIP
        ['token_ids', 'segment_ids', 'padding_mask']
    """
    import tensorflow as tf

    model = packed_classifier(classifier)
    length = classifier.inputs_layer.sequence_length
    names = tf.constant(list(class_names), dtype=tf.string)

    def serve(token_ids, segment_ids, padding_mask):
        # int32 mask in, as TFLite and mobile clients pass it; the encoder wants a boolean one.
        probabilities = model([token_ids, segment_ids, tf.cast(padding_mask, tf.bool)], training=False)
        return classification_outputs(probabilities, names)

    return ServingSignature(fn=serve, input_signature=[tf.TensorSpec([None, length], tf.int32, name=name)
                                                        for name in TOKEN_INPUTS])


def tokenizer_files(inputs_layer):
    """`{"vocab.txt": ..., "tokenizer.json": ...}` of a `BertTextInputs` layer (tokenizer + packing).

    Args:
        inputs_layer: the classifier's `tl_app.text.packing.BertTextInputs`.
    """
    tokenizer = inputs_layer.tokenizer
    config = tokenizer.get_config()
    settings = {
        "vocabulary": VOCAB_FILE,
        "tokenizer": "WordPiece (keras_hub.models.BertTokenizer)",
        **{key: config[key] for key in TOKENIZER_SETTINGS if key in config},
        "sequence_length": inputs_layer.sequence_length,
        "cls_token_id": inputs_layer.cls_id,
        "sep_token_id": inputs_layer.sep_id,
        "pad_token_id": inputs_layer.pad_id,
        "packing": "[CLS] + the first sequence_length - 2 token ids + [SEP], padded with [PAD] to sequence_length;"
                   " segment_ids all 0; padding_mask 1 on [CLS]..[SEP], 0 on padding",
    }
    vocabulary = "".join(f"{token}\n" for token in tokenizer.get_vocabulary())
    return {VOCAB_FILE: vocabulary, TOKENIZER_FILE: json.dumps(settings, indent=2, sort_keys=True) + "\n"}


def tokenizer_from_files(files):
    """The `BertTextInputs` layer (tokenizer + packing) that `tokenizer_files` describes.

    Args:
        files: name -> content (str or bytes) holding vocab.txt and tokenizer.json.

    Examples:
        >>> inputs = tokenizer_from_files(tokenizer_files(layer))  # doctest: +SKIP
        >>> inputs(tf.constant(["a short text"]))["token_ids"].shape  # doctest: +SKIP
        TensorShape([1, 128])
    """
    import keras_hub

    from tl_app.text.packing import BertTextInputs

    def text(name):
        content = files[name]
        return content.decode("utf-8") if isinstance(content, bytes) else content

    settings = json.loads(text(TOKENIZER_FILE))
    vocabulary = text(VOCAB_FILE).split("\n")[:-1]
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=vocabulary, **{key: settings[key] for key in TOKENIZER_SETTINGS if key in settings})
    return BertTextInputs(tokenizer, settings["sequence_length"])


def read_tokenizer_files(export_dir):
    """The export's vocab.txt and tokenizer.json as {name: bytes}; {} for an export written without them."""
    from tl_app.export.savedmodel import ASSETS_EXTRA

    paths = {name: os.path.join(export_dir, ASSETS_EXTRA, name) for name in (VOCAB_FILE, TOKENIZER_FILE)}
    if not all(os.path.isfile(path) for path in paths.values()):
        return {}
    files = {}
    for name, path in paths.items():
        with open(path, "rb") as f:
            files[name] = f.read()
    return files


def token_id_input(export_dir):
    """The text family's `TFLiteInput`: `serving_token_ids`, fed by the export's own tokenizer files.

    Args:
        export_dir: a text export (with `serving_token_ids`, vocab.txt and tokenizer.json; an export
            written before they existed is rebuilt first by `tl_app.export.tflite_package`).
    """
    import numpy as np

    from tl_app.export.tflite_input import TFLiteInput

    files = read_tokenizer_files(export_dir)
    packer = []

    def feed(texts):
        if not files:
            raise UserError(f"{export_dir}: no {VOCAB_FILE} and {TOKENIZER_FILE} in its assets.extra: the tokenizer"
                            " of this export is unknown; export the model again with this version of tl_app.")
        if not packer:
            packer.append(tokenizer_from_files(files))
        packed = packer[0](np.asarray(texts, dtype=object))
        return {name: np.asarray(packed[name]).astype(np.int32) for name in TOKEN_INPUTS}

    return TFLiteInput(
        TOKEN_IDS_SIGNATURE,
        client=(f"tokenize outside the model with {VOCAB_FILE} and {TOKENIZER_FILE} (WordPiece; TFLite has no kernels"
                " for the in-graph tokenizer's ops), then pack: [CLS] ids [SEP] padded with [PAD]; segment_ids 0;"
                " padding_mask 1 on tokens, 0 on padding; int32 [1, sequence_length] each"),
        feed=feed,
        reference="serving_default",
        files=files,
    )
