"""The new classification head the families put on pooled features, with an optional hidden layer.

    hidden_units = 0:  features -> Dropout("head_dropout") -> Dense(num_classes, "probabilities")
    hidden_units > 0:  features -> Dense(hidden_units, relu, "head_hidden") -> Dropout("head_dropout")
                                -> Dense(num_classes, "probabilities")

(the MLP family's order: Dense -> Dropout -> classifier). With `hidden_units=0` the layers and their names
are those the families' heads always had, so exports and `--init-from` seeds made before the field existed
keep loading. The layers are built once and can be called on several inputs: the full model's pooled
features and a feature cache's `Input`, so both share (and train) the same weights.
"""


def head_layers(num_classes, dropout, hidden_units=0, regularizer=None, activation="softmax"):
    """The head's layers in order; call them in turn on the pooled features (`apply_head`).

    Args:
        num_classes: size of the output (classes, or labels for label_mode=multi_label).
        dropout: rate of the head's Dropout.
        hidden_units: width of a relu Dense layer before the Dropout; 0 = none.
        regularizer: of the Dense kernels (`engine.regularizers.head_regularizer`), or None.
        activation: of the output: "softmax" (one class) or "sigmoid" (multi_label).

    Examples:
        >>> [layer.name for layer in head_layers(3, 0.2)]
        ['head_dropout', 'probabilities']
        >>> [layer.name for layer in head_layers(3, 0.2, hidden_units=16)]
        ['head_hidden', 'head_dropout', 'probabilities']
    """
    from keras import layers

    if hidden_units < 0:
        raise ValueError(f"hidden_units must be 0 (no hidden layer) or more, not {hidden_units}")
    hidden = [layers.Dense(hidden_units, activation="relu", kernel_regularizer=regularizer, name="head_hidden")] \
        if hidden_units else []
    return hidden + [layers.Dropout(dropout, name="head_dropout"),
                     layers.Dense(num_classes, activation=activation, dtype="float32", kernel_regularizer=regularizer,
                                  name="probabilities")]


def apply_head(head, features):
    """`features` through the layers of `head_layers` in order.

    Args:
        head: the list `head_layers` returned.
        features: a pooled-features tensor [N, D].
    """
    x = features
    for layer in head:
        x = layer(x)
    return x
