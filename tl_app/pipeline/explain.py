"""The `explain` stage (image runs that inspect their data): Grad-CAM heat maps over the most confident test
mistakes and the top suspected label errors, in `gradcam.png`, TensorBoard (`test/gradcam`) and the report.

Texts: token attributions (integrated gradients) are not implemented yet; the log says so once.
"""
import os

from tl_app import log
from tl_app.pipeline.context import Stage

FIGURE = "gradcam.png"
SHOWN = 4  # of each kind


def picks(ctx):
    """`[(split, index, class, title)]`: test mistakes (their predicted class), then label issues (the suggested
    class) when the training data was not filtered (the findings' indices are those of the unfiltered splits)."""
    p = ctx.evaluation.predictions
    names = ctx.data.class_names
    chosen = [("test", int(i), int(p.predicted[i]), f"test[{i}] {names[p.labels[i]]}\nseen as {names[p.predicted[i]]}")
              for i in p.mistakes(SHOWN)]
    inspection = ctx.inspection
    if inspection is not None and not ctx.config.exclude_issues:
        labels = [f for f in inspection.findings if f.issue == "label" and f.split == "train"][:SHOWN]
        chosen += [("train", f.index, names.index(f.suggested_label),
                    f"train[{f.index}] given {f.given_label}\nseen as {f.suggested_label}") for f in labels]
    return chosen


class Explain(Stage):
    name = "explain"

    def enabled(self, ctx):
        # Grad-CAM explains one predicted class: not a multi-label run's label sets.
        return (ctx.is_chief and ctx.config.inspect_data != "false" and ctx.evaluation is not None
                and ctx.data.label_mode != "multi_label")

    def run(self, ctx):
        from tl_app.errors import UserError
        from tl_app.evaluate import summaries
        from tl_app.inspect.gradcam import explained_examples
        from tl_app.inspect.splits import split_datasets

        if len(ctx.model.inputs[0].shape) != 4:
            log.info("explanations: token attributions for texts are not implemented yet (no heat maps)")
            return
        try:
            picture = explained_examples(ctx.model, split_datasets(ctx.data), picks(ctx), ctx.data.class_names, SHOWN)
        except UserError as exc:  # a base without a feature map: said, not fatal
            log.info(f"explanations: {exc}")
            return
        if picture is None:
            return
        with open(os.path.join(ctx.run_dir, FIGURE), "wb") as f:
            f.write(picture)
        writer = summaries.writer(os.path.join(ctx.run_dir, summaries.TEST))
        summaries.write_images(writer, {"gradcam": picture}, max(0, ctx.trainer.epoch - 1))
        writer.close()
        ctx.report_sections.append(lambda: [
            "## Explanations (Grad-CAM)", "",
            "Where the evidence for the class named under each picture lies (red: most), from the base's last "
            "convolutional feature map: the most confident test mistakes, then the top suspected label errors.", "",
            f"![Grad-CAM]({FIGURE})"])
        log.info(f"explanations: {os.path.join(ctx.run_dir, FIGURE)}")
