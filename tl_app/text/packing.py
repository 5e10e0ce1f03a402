"""Encoder inputs from raw strings, in the graph, with core TensorFlow ops for the packing.

keras-hub's `MultiSegmentPacker` (what every keras-hub `*TextClassifierPreprocessor`
uses) truncates with `TFText>RoundRobinTrim`, an op that TensorFlow Text 2.12 (the
version TF Serving links) does not have. For a single segment that trim is just
"keep the first sequence_length - 2 tokens", so `pack_token_ids` does it with
ragged slicing, concatenation and padding, all core ops, with the tokenizer's
own special tokens (`tokenizer.start_token_id`, `end_token_id`, `pad_token_id`,
which every keras-hub text tokenizer defines: [CLS]/[SEP]/[PAD] for BERT,
DistilBERT, ELECTRA and DeBERTaV3, [CLS]/[SEP]/<pad> for ALBERT, <s>/</s>/<pad>
for RoBERTa and XLM-RoBERTa). Training and serving use the same layer
(`TextInputs`), so what the model trained on is exactly what the export computes.

    strings [N] -> tokenizer (WordPiece, BPE or SentencePiece: TF-Text ops TF Serving has, text.encoders)
                -> start, first (sequence_length - 2) tokens, end, padded with pad
                -> {"token_ids", "segment_ids", "padding_mask"} each [N, sequence_length]
                   (the model passes a backbone the ones it takes)
"""
import keras
import numpy as np

MIN_SEQUENCE_LENGTH = 3  # start ([CLS]), at least one token, end ([SEP])
TOKEN_COUNT_BATCH = 512


def pack_token_ids(token_ids, sequence_length, cls_id, sep_id, pad_id):
    """Pack ragged token ids into single-segment encoder inputs with core ops only.

    Args:
        token_ids: `tf.RaggedTensor` [N, (tokens)] of int ids (no special tokens).
        sequence_length: length of every packed row, start and end tokens included.
        cls_id, sep_id, pad_id: ids of the start ([CLS], <s>), end ([SEP], </s>) and padding tokens.

    Returns:
        dict of int32 [N, sequence_length] tensors: token_ids, segment_ids, padding_mask (bool).
    """
    import tensorflow as tf

    token_ids = tf.cast(token_ids, tf.int32)
    kept = token_ids[:, : sequence_length - 2]
    rows = kept.nrows()
    cls = tf.fill([rows, 1], tf.constant(cls_id, tf.int32))
    sep = tf.fill([rows, 1], tf.constant(sep_id, tf.int32))
    packed = tf.concat([tf.RaggedTensor.from_tensor(cls), kept, tf.RaggedTensor.from_tensor(sep)], axis=1)
    dense = packed.to_tensor(default_value=pad_id, shape=[None, sequence_length])
    lengths = tf.cast(packed.row_lengths(), tf.int32)
    return {
        "token_ids": dense,
        "segment_ids": tf.zeros_like(dense),
        "padding_mask": tf.sequence_mask(lengths, sequence_length),
    }


class TextInputs(keras.layers.Layer):
    """Keras layer: a batch of strings -> an encoder's packed inputs (see the module docstring).

    Args:
        tokenizer: a keras-hub text tokenizer (`BertTokenizer`, `RobertaTokenizer`, `DebertaV3Tokenizer`, ...:
            any with start_token_id, end_token_id and pad_token_id).
        sequence_length: packed length, start and end tokens included.

    Examples:
        >>> layer = TextInputs(keras_hub.models.BertTokenizer(vocabulary=vocab), 16)
        >>> layer(tf.constant(["a short text"]))["token_ids"].shape
        TensorShape([1, 16])
    """

    def __init__(self, tokenizer, sequence_length, **kwargs):
        super().__init__(dtype="int32", **kwargs)
        if sequence_length < MIN_SEQUENCE_LENGTH:
            raise ValueError(f"sequence_length must be at least {MIN_SEQUENCE_LENGTH}, not {sequence_length}")
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.cls_id = int(tokenizer.start_token_id)  # [CLS] or <s>
        self.sep_id = int(tokenizer.end_token_id)  # [SEP] or </s>
        self.pad_id = int(tokenizer.pad_token_id)

    def build(self, input_shape):
        self.built = True  # no weights: the vocabulary lives in the tokenizer

    def token_ids(self, strings):
        """Ragged token ids [N, (tokens)] of a batch of strings, before packing."""
        import tensorflow as tf

        strings = tf.reshape(tf.convert_to_tensor(strings, tf.string), [-1])
        # Clients may send bytes that are not UTF-8: replace them instead of failing the request.
        strings = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace")
        ids = self.tokenizer.tokenize(strings)
        if not isinstance(ids, tf.RaggedTensor):  # a tokenizer with a fixed length pads; ours must not
            raise ValueError("the tokenizer must return ragged ids (tokenizer.sequence_length must be None)")
        return ids

    def _pack(self, strings):
        return pack_token_ids(self.token_ids(strings), self.sequence_length, self.cls_id, self.sep_id, self.pad_id)

    def call(self, strings):
        import tensorflow as tf

        if tf.executing_eagerly():
            # keras-hub tokenizers take a pure-Python path when called eagerly (lists out);
            # the graph path is the one training and the export run, so use it here too.
            return tf.function(self._pack)(strings)
        return self._pack(strings)

    def compute_output_spec(self, strings):
        batch = strings.shape[0] if strings.shape else None
        shape = (batch, self.sequence_length)
        return {
            "token_ids": keras.KerasTensor(shape, dtype="int32"),
            "segment_ids": keras.KerasTensor(shape, dtype="int32"),
            "padding_mask": keras.KerasTensor(shape, dtype="bool"),
        }

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


BertTextInputs = TextInputs  # the name before other encoders were supported


def token_counts(tokenizer, texts, sequence_length):
    """Tokens per text before truncation, tokenized in the graph exactly as the model does."""
    import tensorflow as tf

    if not texts:
        return np.zeros([0], np.int64)
    inputs = TextInputs(tokenizer, sequence_length)
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(TOKEN_COUNT_BATCH)
    return np.concatenate([n.numpy() for n in ds.map(lambda t: inputs.token_ids(t).row_lengths())])


def tokenizer_kind(tokenizer):
    """"WordPiece", "BPE" or "SentencePiece": the keras-hub tokenizer base class of `tokenizer`; None for another."""
    bases = [cls.__name__ for cls in type(tokenizer).__mro__]
    return next((kind for kind, base in (("WordPiece", "WordPieceTokenizer"), ("BPE", "BytePairTokenizer"),
                                         ("SentencePiece", "SentencePieceTokenizer")) if base in bases), None)


def tokens_word(tokenizer):
    """How the log names the tokenizer's tokens: "WordPiece", "BPE" or "SentencePiece" tokens."""
    kind = tokenizer_kind(tokenizer)
    return f"{kind} tokens" if kind else "tokens"


def truncation_note(tokenizer, texts, sequence_length, what, advise=False):
    """One line for the log: how many of `texts` (named `what`) have more tokens than fit (they are truncated).

    With `advise`, when most texts are cut the line also says that a longer sequence_length reads more of each
    (on BBC News, 99.9 % cut at 128 tokens, the defaults fine-tuned at 256 tested at 0.9820, at 128 0.9685-0.9775).
    """
    lengths = token_counts(tokenizer, texts, sequence_length)
    room = sequence_length - 2
    cut = int(np.sum(lengths > room))
    share = cut / max(len(texts), 1)
    median = int(np.median(lengths)) if len(lengths) else 0
    line = (f"{what}: {cut} of {len(texts)} texts ({share:.1%}) truncated to {room} {tokens_word(tokenizer)}"
            f" (sequence_length {sequence_length}; median length {median} tokens)")
    if advise and share > 0.5:
        line += ("; most are cut: a longer sequence_length (up to the encoder's positions) reads more of each, and"
                 " fine-tuning takes about proportionally longer")
    return line
