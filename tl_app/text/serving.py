"""Text exports on token ids: a signature without the in-graph tokenizer, and the tokenizer as files.

keras-hub's WordPiece preprocessing calls `normalize_utf8`, `regex_split` and
`case_fold_utf8`, which have no TFLite kernels (nor do the SentencePiece and
BPE tokenizers' ops). So a text export also carries

- `serving_token_ids(token_ids, [segment_ids,] padding_mask)`: int32 [N, L] each
  (L = sequence_length; segment_ids only for encoders that take them: BERT, ALBERT,
  ELECTRA), the classifier after its tokenizer, with the outputs of every signature
  (`probabilities`, `class_id`, `class_name`); TFLite converts it;
- `assets.extra/tokenizer.json` (the tokenizer class, its settings and the packing)
  and the vocabulary the model trained with: `vocab.txt` (WordPiece), `vocab.json` +
  `merges.txt` (BPE) or `tokenizer.model` (SentencePiece). The packing
  (`text.packing`): start ([CLS] or <s>), the first L - 2 ids, end ([SEP] or </s>),
  pad up to L; segment_ids all 0; padding_mask 1 on start ... end, 0 on padding.

`tokenizer_from_files` rebuilds that exact tokenizer and packer from the files,
which is how `tl-app tflite` makes the LiteRT model's inputs from texts.
"""
import json
import os

from tl_app.errors import UserError
from tl_app.export.signatures import ServingSignature, classification_outputs
from tl_app.pipeline.context import Stage

TOKEN_IDS_SIGNATURE = "serving_token_ids"
TOKEN_INPUTS = ("token_ids", "segment_ids", "padding_mask")
VOCAB_FILE = "vocab.txt"
BPE_VOCAB_FILE = "vocab.json"
BPE_MERGES_FILE = "merges.txt"
SENTENCEPIECE_FILE = "tokenizer.model"
TOKENIZER_FILE = "tokenizer.json"
# keras-hub WordPieceTokenizer settings that change which ids a text gets.
TOKENIZER_SETTINGS = ("lowercase", "strip_accents", "split", "split_on_cjk", "suffix_indicator", "oov_token",
                      "special_tokens_in_strings")


def token_inputs(classifier):
    """The inputs of `serving_token_ids`: those of TOKEN_INPUTS the classifier's backbone takes, in that order."""
    from tl_app.text.model import backbone_input_names

    taken = set(backbone_input_names(classifier.backbone))
    return [name for name in TOKEN_INPUTS if name in taken]


def packed_classifier(classifier):
    """The classifier after its tokenizer: a Keras model from [token_ids, (segment_ids,) padding_mask] to
    probabilities, sharing the classifier's layers (and so its trained weights).

    Args:
        classifier: a `tl_app.text.model.TextClassifier`.
    """
    import keras

    outputs = classifier.inputs_layer.output
    if not isinstance(outputs, dict):  # Keras hands a layer's dict output back flattened
        outputs = keras.tree.pack_sequence_as({name: name for name in TOKEN_INPUTS}, outputs)
    return keras.Model([outputs[name] for name in token_inputs(classifier)], classifier.model.output,
                       name=f"{classifier.model.name}_token_ids")


def token_id_signature(classifier, class_names):
    """`serving_token_ids`: int32 token_ids, (segment_ids,) padding_mask [N, L] -> the classification outputs.

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
    inputs = token_inputs(classifier)

    def outputs(token_ids, padding_mask, segment_ids=None):
        # int32 mask in, as TFLite and mobile clients pass it; the encoder wants a boolean one.
        feed = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": tf.cast(padding_mask, tf.bool)}
        probabilities = model([feed[name] for name in inputs], training=False)
        return classification_outputs(probabilities, names)

    def serve(token_ids, segment_ids, padding_mask):
        return outputs(token_ids, padding_mask, segment_ids)

    def serve_without_segments(token_ids, padding_mask):
        return outputs(token_ids, padding_mask)

    return ServingSignature(fn=serve if "segment_ids" in inputs else serve_without_segments,
                            input_signature=[tf.TensorSpec([None, length], tf.int32, name=name) for name in inputs])


def tokenizer_kind(tokenizer):
    """"WordPiece", "BPE" or "SentencePiece" (`text.packing.tokenizer_kind`); a UserError for another tokenizer."""
    from tl_app.text.packing import tokenizer_kind as kind_of

    kind = kind_of(tokenizer)
    if kind is None:
        raise UserError(f"{type(tokenizer).__name__}: not a WordPiece, BPE or SentencePiece tokenizer of keras-hub.")
    return kind


def _vocabulary_files(tokenizer, kind):
    if kind == "WordPiece":
        return {VOCAB_FILE: "".join(f"{token}\n" for token in tokenizer.get_vocabulary())}
    if kind == "BPE":
        return {BPE_VOCAB_FILE: json.dumps(tokenizer.vocabulary, ensure_ascii=False, sort_keys=True) + "\n",
                BPE_MERGES_FILE: "".join(f"{merge}\n" for merge in tokenizer.merges)}
    proto = tokenizer.proto
    return {SENTENCEPIECE_FILE: proto if isinstance(proto, bytes) else bytes(proto.numpy())}


def tokenizer_files(inputs_layer, inputs=TOKEN_INPUTS):
    """`{"tokenizer.json": ..., <vocabulary files>: ...}` of a `TextInputs` layer (tokenizer + packing).

    Args:
        inputs_layer: the classifier's `tl_app.text.packing.TextInputs`.
        inputs: the inputs `serving_token_ids` takes (`token_inputs(classifier)`).
    """
    tokenizer = inputs_layer.tokenizer
    kind = tokenizer_kind(tokenizer)
    config = tokenizer.get_config()
    vocabulary = _vocabulary_files(tokenizer, kind)
    start, end, pad = (tokenizer.id_to_token(i) for i in (inputs_layer.cls_id, inputs_layer.sep_id, inputs_layer.pad_id))
    settings = {
        "vocabulary": VOCAB_FILE if kind == "WordPiece" else sorted(vocabulary),
        "tokenizer": f"{kind} (keras_hub.models.{type(tokenizer).__name__})",
        "class": type(tokenizer).__name__,
        **{key: config[key] for key in TOKENIZER_SETTINGS if key in config and kind == "WordPiece"},
        "sequence_length": inputs_layer.sequence_length,
        "cls_token_id": inputs_layer.cls_id,
        "sep_token_id": inputs_layer.sep_id,
        "pad_token_id": inputs_layer.pad_id,
        "inputs": list(inputs),
        "packing": f"{start} + the first sequence_length - 2 token ids + {end}, padded with {pad} to sequence_length;"
                   f" segment_ids all 0; padding_mask 1 on {start}..{end}, 0 on padding",
    }
    return {**vocabulary, TOKENIZER_FILE: json.dumps(settings, indent=2, sort_keys=True) + "\n"}


def tokenizer_from_files(files):
    """The `TextInputs` layer (tokenizer + packing) that `tokenizer_files` describes.

    Args:
        files: name -> content (str or bytes) holding tokenizer.json and the vocabulary files it names.

    Examples:
        >>> inputs = tokenizer_from_files(tokenizer_files(layer))  # doctest: +SKIP
        >>> inputs(tf.constant(["a short text"]))["token_ids"].shape  # doctest: +SKIP
        TensorShape([1, 128])
    """
    import keras_hub

    from tl_app.text.packing import TextInputs

    def text(name):
        content = files[name]
        return content.decode("utf-8") if isinstance(content, bytes) else content

    settings = json.loads(text(TOKENIZER_FILE))
    cls = getattr(keras_hub.models, settings.get("class", "BertTokenizer"))  # exports before it: BERT
    if SENTENCEPIECE_FILE in files:
        proto = files[SENTENCEPIECE_FILE]
        tokenizer = cls(proto=proto if isinstance(proto, bytes) else proto.encode("latin-1"))
    elif BPE_VOCAB_FILE in files:
        tokenizer = cls(vocabulary=json.loads(text(BPE_VOCAB_FILE)), merges=text(BPE_MERGES_FILE).split("\n")[:-1])
    else:
        vocabulary = text(VOCAB_FILE).split("\n")[:-1]
        tokenizer = cls(vocabulary=vocabulary, **{key: settings[key] for key in TOKENIZER_SETTINGS if key in settings})
    return TextInputs(tokenizer, settings["sequence_length"])


def read_tokenizer_files(export_dir):
    """The export's tokenizer.json and the vocabulary files it names, as {name: bytes}; {} for an export
    written without them."""
    from tl_app.export.savedmodel import ASSETS_EXTRA

    def path(name):
        return os.path.join(export_dir, ASSETS_EXTRA, name)

    if not os.path.isfile(path(TOKENIZER_FILE)):
        return {}
    with open(path(TOKENIZER_FILE), "rb") as f:
        files = {TOKENIZER_FILE: f.read()}
    try:
        named = json.loads(files[TOKENIZER_FILE].decode("utf-8")).get("vocabulary", VOCAB_FILE)
    except ValueError:
        return {}
    for name in [named] if isinstance(named, str) else named:
        if not os.path.isfile(path(name)):
            return {}
        with open(path(name), "rb") as f:
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
    inputs = json.loads(files[TOKENIZER_FILE].decode("utf-8")).get("inputs", TOKEN_INPUTS) if files else TOKEN_INPUTS
    packer = []

    def feed(texts):
        if not files:
            raise UserError(f"{export_dir}: no {TOKENIZER_FILE} and vocabulary in its assets.extra: the tokenizer"
                            " of this export is unknown; export the model again with this version of tl_app.")
        if not packer:
            packer.append(tokenizer_from_files(files))
        packed = packer[0](np.asarray(texts, dtype=object))
        return {name: np.asarray(packed[name]).astype(np.int32) for name in inputs}

    return TFLiteInput(
        TOKEN_IDS_SIGNATURE,
        client=(f"tokenize outside the model with {TOKENIZER_FILE} and its vocabulary files (TFLite has no kernels"
                " for the in-graph tokenizer's ops), then pack as tokenizer.json says: [CLS] ids [SEP] (or <s> ids"
                " </s>) padded with the pad id; segment_ids 0 (when the model takes them); padding_mask 1 on tokens,"
                " 0 on padding; int32 [1, sequence_length] each"),
        feed=feed,
        reference="serving_default",
        files=files,
    )


def unservable_message(resolved):
    """The one line refusing to export `resolved`'s encoder, or None when TF Serving can run its export."""
    from tl_app.text.encoders import ENCODERS

    entry = resolved.entry
    if entry.servable:
        return None
    servable = ", ".join(e.name for e in ENCODERS.values() if e.servable)
    return (f"--set preset={resolved.choice or resolved.preset}: the {entry.title} export needs"
            f" {', '.join(entry.lacks)}, which TF Serving's model server (core TF + TF-Text 2.12.1) lacks; run with"
            f" --no-export (the tokenizer cannot go in a servable graph; clients would tokenize for the"
            f" {TOKEN_IDS_SIGNATURE} signature / TFLite), or pick a servable encoder ({servable}).")


class ServableEncoder(Stage):
    """Before anything trains (when the run exports): the encoder's export must run on TF Serving.

    `text.encoders` says, per encoder, which ops its export needs that TF Serving lacks (measured by
    tests/test_text_encoders.py); `check` refuses such an encoder in one line, and `run` again right before
    `export` (`tl-app export RUN_DIR` has no check step).
    """

    name = "servable_encoder"

    def enabled(self, ctx):
        return bool(getattr(ctx.options, "export", True))

    def check(self, ctx):
        preset = getattr(ctx.recipe, "_preset", None)
        message = unservable_message(preset) if preset is not None else None
        if message:
            raise UserError(message)

    def run(self, ctx):
        self.check(ctx)
