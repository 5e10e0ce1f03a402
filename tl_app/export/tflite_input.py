"""What a recipe's TFLite model takes: which export signature converts, and how a client feeds it.

Each family says this once through `Recipe.tflite_input(export_dir)`; the converter
(`export.tflite`), the LiteRT evaluation (`export.litert_eval`) and the `input.json`
written beside the `.tflite` files all read it.

    images  serving_images   float32 [1, S, S, 3] in 0..255 (int8: uint8, the pixels as they are)
    MLP     serving_default  float32 [1, H, W] in 0..pixel_max (int8: uint8, scale and zero point in input.json)
    text    serving_token_ids  int32 token_ids, segment_ids, padding_mask [1, L] (+ vocab.txt, tokenizer.json)
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple


def feed_single_input(name):
    """The default `feed`: a batch of the data's inputs is the signature's one input `name`."""

    def feed(batch):
        return {name: batch}

    return feed


@dataclass
class TFLiteInput:
    """How an export converts to TFLite and how its inputs are made from the recipe's data.

    Args:
        signature: the export's signature with tensor inputs that converts (e.g. "serving_images").
        client: what a client does before calling the model (written to input.json and printed).
        shapes: input name -> shape of one example, no batch dimension; inputs left out keep the
            signature's shape (their unknown dimensions must then be fixed here).
        value_range: (low, high) of the float input, or None. int8 pins the input quantization to it,
            so e.g. image pixels 0..255 go in as uint8 unchanged (scale 1, zero point 0).
        feed: a batch of the data set's raw inputs (numpy) -> {input name: numpy array} of the signature.
            None: the signature's one input takes the raw inputs as they are.
        reference: the export signature that gives the float model's predictions on the raw inputs
            (default: `signature`, fed by `feed`); the text family compares against `serving_default`
            on the raw strings, so tokenization is checked too.
        files: name -> content shipped beside the .tflite files (the text family's vocab.txt, tokenizer.json).

    Examples:
        >>> spec = TFLiteInput("serving_images", "decode to RGB, resize to 96x96", shapes={"images": [96, 96, 3]},
        ...                    value_range=(0.0, 255.0))
        >>> spec.reference_signature
        'serving_images'
    """

    signature: str
    client: str
    shapes: Dict[str, List[int]] = field(default_factory=dict)
    value_range: Optional[Tuple[float, float]] = None
    feed: Optional[Callable] = None
    reference: Optional[str] = None
    files: Dict[str, object] = field(default_factory=dict)

    @property
    def reference_signature(self):
        return self.reference or self.signature
