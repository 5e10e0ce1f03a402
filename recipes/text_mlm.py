"""`text_mlm`: adapt a BERT encoder to your unlabeled text (masked LM) and save it for every text recipe."""
from tl_app.registry import register
from tl_app.text import MaskedLMAdaptation, MaskedLMConfig


@register("text_mlm")
class TextMlm(MaskedLMAdaptation):
    """Masked-LM adaptation of a BERT encoder on your text (--data-dir DIR|FILE); saves it as a preset for --set preset=."""

    defaults = MaskedLMConfig()
