"""Serving signatures: what an export's endpoints take and return.

Every classification export returns the same outputs, whatever its input:
`probabilities` (float32 [N, C]), `class_id` (int64 [N]) and `class_name`
(string [N]). A family builds its signatures with `classification_signature`
(raw input -> optional in-graph preprocessing -> model -> those outputs).

A multi-label export (`label_mode=multi_label`: sigmoid outputs) returns instead `probabilities`
(float32 [N, L]) and `predicted` (bool [N, L]: each label's probability at least its threshold,
the thresholds chosen on validation and held in the graph): `with_thresholds` wraps the family's
signatures so.
"""
from dataclasses import dataclass
from typing import Any, Callable, List


@dataclass
class ServingSignature:
    """A SavedModel signature: `fn(*inputs) -> dict of outputs` and its input specs."""

    fn: Callable
    input_signature: List[Any]


def input_spec_of(model, name="inputs"):
    """A `tf.TensorSpec` for a batch of the model's (single) raw input."""
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise ValueError("the default serving signature needs a model with exactly one input")
    tensor = model.inputs[0]
    return tf.TensorSpec([None] + list(tensor.shape[1:]), tf.as_dtype(tensor.dtype), name=name)


def classification_outputs(probabilities, class_names_tensor):
    """The outputs every classification export returns."""
    import tensorflow as tf

    probabilities = tf.cast(probabilities, tf.float32)
    class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
    return {
        "probabilities": probabilities,
        "class_id": class_id,
        "class_name": tf.gather(class_names_tensor, class_id),
    }


def classification_signature(model, class_names, input_spec, preprocess=None):
    """A signature: raw input -> (optional `preprocess`) -> model -> classification outputs.

    Args:
        model: the Keras model (raw inputs -> probabilities).
        class_names: index -> name, for `class_name`.
        input_spec: a `tf.TensorSpec` of a batch of the signature's input (its name is the input's name).
        preprocess: in-graph function from that input to the model's input, or None.
    """
    import tensorflow as tf

    names = tf.constant(list(class_names), dtype=tf.string)

    def serve(inputs):
        x = preprocess(inputs) if preprocess is not None else inputs
        return classification_outputs(model(x, training=False), names)

    return ServingSignature(fn=serve, input_signature=[input_spec])


def multi_label_outputs(probabilities, thresholds):
    """`probabilities` float32 [N, L] and `predicted` bool [N, L] (probabilities >= the per-label `thresholds`)."""
    import tensorflow as tf

    probabilities = tf.cast(probabilities, tf.float32)
    return {"probabilities": probabilities, "predicted": tf.greater_equal(probabilities, thresholds)}


def with_thresholds(signatures, thresholds):
    """The signatures with multi-label outputs (`multi_label_outputs`) in place of the class outputs.

    Args:
        signatures: name -> `ServingSignature` whose outputs hold `probabilities` (sigmoid, [N, L]).
        thresholds: one float per label, in labels.txt's order; a constant of the exported graph.

    Examples:
        >>> import numpy as np, tensorflow as tf
        >>> plain = ServingSignature(lambda x: {"probabilities": x}, [tf.TensorSpec([None, 2], tf.float32)])
        >>> wrapped = with_thresholds({"serving_default": plain}, [0.5, 0.2])["serving_default"]
        >>> wrapped.fn(tf.constant([[0.6, 0.1], [0.4, 0.3]]))["predicted"].numpy().tolist()
        [[True, False], [False, True]]
    """
    import numpy as np
    import tensorflow as tf

    cut = tf.constant(np.asarray(thresholds, np.float32))

    def wrap(signature):
        def serve(*inputs):
            return multi_label_outputs(signature.fn(*inputs)["probabilities"], cut)

        return ServingSignature(fn=serve, input_signature=signature.input_signature)

    return {name: wrap(signature) for name, signature in signatures.items()}
