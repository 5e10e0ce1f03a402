"""Explanations of chosen examples, for the run's report and `tl-app evaluate`'s: Grad-CAM heat maps for
image classifiers on convolutional bases (`inspect.gradcam`), attention rollout for those on a vision
transformer (`inspect.attention_rollout`), token attributions (integrated gradients) for text classifiers
(`inspect.token_attributions`), each as one PNG with the report's words about it.

Examples:
    >>> explanation = explain(model, {"test": data.test}, [("test", 3, 1, "test[3] cat\\nseen as dog")],
    ...                       ["cat", "dog"])  # doctest: +SKIP
    >>> explanation.figure, explanation.markdown()[0]  # doctest: +SKIP
    ('gradcam.png', '## Explanations (Grad-CAM)')
"""
from dataclasses import dataclass, field
from typing import List

import numpy as np

SHOWN = 4  # of each kind of pick
TOP_WORDS = 5  # named in the report for each text


@dataclass
class Explanation:
    """One figure of explanations and what the report says of it.

    Args:
        figure: the PNG's file name beside the report (`gradcam.png`, `token_attributions.png`).
        png: its bytes.
        heading: the report section's heading.
        description: the paragraph under the heading.
        details: Markdown lines after the figure (e.g. each text's strongest words).
        tag: the TensorBoard image tag.
    """

    figure: str
    png: bytes
    heading: str
    description: str
    details: List[str] = field(default_factory=list)
    tag: str = "explanations"

    def markdown(self):
        """The report section's lines."""
        return [f"## {self.heading}", "", self.description, "", f"![{self.heading}]({self.figure})"] + (
            [""] + self.details if self.details else [])


def is_text_model(model):
    """True for a model that takes strings (the text family), False for images."""
    return model.inputs[0].dtype == "string"


def _images(model, datasets, picks, class_names):
    from tl_app.inspect.attention_rollout import attention_rollout, transformer_base
    from tl_app.inspect.gradcam import explained_examples

    transformer = transformer_base(model) is not None
    png = explained_examples(model, datasets, picks, class_names, SHOWN,
                             heat=(lambda m, images, _: attention_rollout(m, images)) if transformer else None)
    if png is None:
        return None
    if transformer:
        return Explanation("attention_rollout.png", png, "Explanations (attention rollout)",
                           "Which patches the class token gathered its information from (red: most), by attention "
                           "rollout over the transformer's blocks (Abnar and Zuidema, 2020): where the model looked, "
                           "the same for every class: the most confident mistakes, then the top suspected label "
                           "errors (in a run that inspects its data).", tag="attention_rollout")
    return Explanation("gradcam.png", png, "Explanations (Grad-CAM)",
                       "Where the evidence for the class named under each picture lies (red: most), from the base's "
                       "last convolutional feature map: the most confident mistakes, then the top suspected label "
                       "errors (in a run that inspects its data).", tag="gradcam")


def _texts(model, datasets, picks):
    from tl_app.evaluate.plots import highlighted_texts_png
    from tl_app.evaluate.predictions import inputs_at
    from tl_app.inspect.token_attributions import integrated_gradients

    picks = picks[:SHOWN * 2]
    if not picks:
        return None
    texts = inputs_at(datasets, [(split, index) for split, index, _, _ in picks])
    texts = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in texts]
    attributions = integrated_gradients(model, texts, [c for _, _, c, _ in picks])
    titles = [f"{title.replace(chr(10), ', ')} (p {a.probability:.2f})" for (*_, title), a in zip(picks, attributions)]
    details = []
    for title, a in zip(titles, attributions):
        strongest = [k for k in np.argsort(-a.scores, kind="stable")[:TOP_WORDS] if a.scores[k] > 0]
        details.append(f"- {title}: " + (", ".join(f"**{a.words[k]}** ({a.scores[k]:+.3f})" for k in strongest)
                                         or "no word counts for it"))
    png = highlighted_texts_png([(t, a.words, a.scores) for t, a in zip(titles, attributions)])
    return Explanation("token_attributions.png", png, "Explanations (token attributions)",
                       "Which words carry the evidence for the class named in each title (red: for it, blue: "
                       "against it), by integrated gradients on the token embeddings (the shares add up to the "
                       "class probability less that of an empty text): the most confident mistakes, then (in a run "
                       "that inspects its data) the top suspected label errors. The words counting most for the class "
                       "in each:", details, tag="token_attributions")


def explain(model, datasets, picks, class_names):
    """The `Explanation` of `picks` under `model`, or None when there is nothing to explain.

    Args:
        model: the trained classifier (an image or a text family's Keras model).
        datasets: `{split: unbatched (input, label) dataset}`.
        picks: `[(split, index, class explained, title)]`: e.g. the most confident mistakes (their predicted
            class) and the top suspected label errors (their suggested class).
        class_names: index = label.

    Raises:
        UserError: the model has nothing to explain with (an image base with neither a convolutional feature
            map nor a transformer's attention).
    """
    if is_text_model(model):
        return _texts(model, datasets, picks)
    if len(model.inputs[0].shape) == 4:
        return _images(model, datasets, picks, class_names)
    return None  # the MLP family's vectors: no pictures nor words to point at


def mistakes(predictions, split="test", limit=SHOWN):
    """Picks of the most confident mistakes of `predictions` (an `evaluate.predictions.Predictions`), in the
    dataset `split` of the caller's `datasets` (titled with the split's name as reported)."""
    names = predictions.class_names
    return [(split, int(i), int(predictions.predicted[i]),
             f"{predictions.split}[{i}] {names[predictions.labels[i]]}\nseen as {names[predictions.predicted[i]]}")
            for i in predictions.mistakes(limit)]
