"""Which ops a SavedModel needs, and whether a model server with TF-Text 2.12 can run them.

TF Serving's model server links core TensorFlow plus TensorFlow Text 2.12.1.
An op missing there fails only when the server loads the model ("Op type not
registered"), so exports are checked here instead: every op of
`saved_model.pb` (graph nodes and every library function, which is where
`tf.function` bodies and signatures live) must be a core op (`tf.raw_ops`) or
one of the ops TF-Text 2.12.1 registers (`TF_TEXT_2_12_1_OPS`).
"""
import os

# Exactly the ops TensorFlow Text 2.12.1 registers (read off its wheel's op libraries);
# /work/shared/data/tf_text_2_12_1_ops.txt is the source of this list.
TF_TEXT_2_12_1_OPS = frozenset({
    "CaseFoldUTF8", "ConstrainedSequence", "FastBertNormalize", "FastWordpieceTokenizeWithOffsets",
    "FindSourceOffsets", "MaxSpanningTree", "NormalizeUTF8", "NormalizeUTF8WithOffsetsMap", "PhraseTokenize",
    "RegexSplitWithOffsets", "RougeL", "SentenceFragments", "SentenceFragmentsV2", "SentencepieceDetokenizeOp",
    "SentencepieceIdToStringOp", "SentencepieceOp", "SentencepieceStringToIdOp", "SentencepieceTokenizeOp",
    "SentencepieceTokenizeWithOffsetsOp", "SentencepieceVocabSizeOp", "SplitMergeTokenizeWithOffsets",
    "TFText>BoiseTagsToOffsets", "TFText>ByteSplitByOffsets", "TFText>ByteSplitWithOffsets",
    "TFText>FastSentencepieceDetokenize", "TFText>FastSentencepieceTokenize", "TFText>FastWordpieceDetokenize",
    "TFText>NgramsStringJoin", "TFText>OffsetsToBoiseTags", "TFText>PhraseDetokenize",
    "TFText>WhitespaceTokenizeWithOffsetsV2", "TokenizerFromLogits", "UnicodeScriptTokenizeWithOffsets",
    "WhitespaceTokenizeWithOffsets", "WordpieceTokenizeWithOffsets",
})


def read_op_list(path):
    """Op names from a text file, one per line; blank lines and `#` comments skipped."""
    with open(path, encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip() and not line.lstrip().startswith("#"))


def _load_proto(export_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def saved_model_ops(export_dir):
    """Every op type `export_dir/saved_model.pb` uses: graph nodes plus all library functions.

    Nodes that call a library function (their op is the function's name) are not counted.

    Args:
        export_dir: a SavedModel directory (holding saved_model.pb).
    """
    ops, functions = set(), set()
    for meta_graph in _load_proto(export_dir).meta_graphs:
        graph = meta_graph.graph_def
        ops.update(node.op for node in graph.node)
        for function in graph.library.function:
            functions.add(function.signature.name)
            ops.update(node.op for node in function.node_def)
    return frozenset(ops - functions)


def core_ops():
    """Op names core TensorFlow registers (those `tf.raw_ops` exposes)."""
    import tensorflow as tf

    return frozenset(name for name in dir(tf.raw_ops) if not name.startswith("_"))


def unservable_ops(export_dir, allowed_extra=TF_TEXT_2_12_1_OPS):
    """Ops of the export that neither core TensorFlow nor `allowed_extra` provides (sorted).

    Args:
        export_dir: a SavedModel directory.
        allowed_extra: non-core ops the model server has (default: TF-Text 2.12.1's).
    """
    return sorted(saved_model_ops(export_dir) - core_ops() - frozenset(allowed_extra))


def check_servable(export_dir, allowed_extra=TF_TEXT_2_12_1_OPS):
    """Raise ValueError naming the ops a TF Serving model server (core TF + TF-Text 2.12.1) lacks."""
    missing = unservable_ops(export_dir, allowed_extra)
    if missing:
        raise ValueError(f"{export_dir} uses ops TF Serving with TF-Text 2.12.1 lacks: {', '.join(missing)}")
