"""The `explain` stage (runs that inspect their data): explanations of the most confident test mistakes and the
top suspected label errors (`inspect.explanations`): Grad-CAM heat maps for images (`gradcam.png`; attention
rollout, `attention_rollout.png`, on a ViT base), token attributions for texts (`token_attributions.png`), in
the run directory, TensorBoard (`test/<tag>`) and the report.
"""
import os

from tl_app import log
from tl_app.pipeline.context import Stage


def picks(ctx):
    """`[(split, index, class, title)]`: test mistakes (their predicted class), then label issues (the suggested
    class) when the training data was not filtered (the findings' indices are those of the unfiltered splits)."""
    from tl_app.inspect.explanations import SHOWN, mistakes

    names = ctx.data.class_names
    chosen = mistakes(ctx.evaluation.predictions, "test", SHOWN)
    inspection = ctx.inspection
    if inspection is not None and not ctx.config.exclude_issues:
        labels = [f for f in inspection.findings if f.issue == "label" and f.split == "train"][:SHOWN]
        chosen += [("train", f.index, names.index(f.suggested_label),
                    f"train[{f.index}] given {f.given_label}\nseen as {f.suggested_label}") for f in labels]
    return chosen


class Explain(Stage):
    name = "explain"

    def enabled(self, ctx):
        # An explanation is of one predicted class: not of a multi-label run's label sets.
        return (ctx.is_chief and ctx.config.inspect_data != "false" and ctx.evaluation is not None
                and ctx.data.label_mode != "multi_label")

    def run(self, ctx):
        from tl_app.errors import UserError
        from tl_app.evaluate import summaries
        from tl_app.inspect.explanations import explain
        from tl_app.inspect.splits import split_datasets

        try:
            explanation = explain(ctx.model, split_datasets(ctx.data), picks(ctx), ctx.data.class_names)
        except UserError as exc:  # a base without a feature map: said, not fatal
            log.info(f"explanations: {exc}")
            return
        if explanation is None:
            return
        path = os.path.join(ctx.run_dir, explanation.figure)
        with open(path, "wb") as f:
            f.write(explanation.png)
        writer = summaries.writer(os.path.join(ctx.run_dir, summaries.TEST))
        summaries.write_images(writer, {explanation.tag: explanation.png}, max(0, ctx.trainer.epoch - 1))
        writer.close()
        ctx.report_sections.append(explanation.markdown)
        log.info(f"explanations: {path}")
