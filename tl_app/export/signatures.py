"""Serving signatures: what an export's endpoints take and return.

Every classification export returns the same outputs, whatever its input:
`probabilities` (float32 [N, C]), `class_id` (int64 [N]) and `class_name`
(string [N]). A family builds its signatures with `classification_signature`
(raw input -> optional in-graph preprocessing -> model -> those outputs).
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
