"""Does Grad-CAM point at the object? The screenshot-level check of issue 29 on real weights and real photos.

A scene of scikit-image's cat (`chelsea`) and espresso (`coffee`), each resized to a quarter of a 448 px grey
picture, in two layouts (cat top left and cup bottom right; cup top right and cat bottom left), through the
ImageNet classifier of each EfficientNet-Lite asset (`efficientnet_lite_convert.imagenet_classifier`: the
base, its pooling and its ImageNet dense layer, at its native size: 7 x 7 (Lite0) and 8 x 8 (Lite2) feature
maps). For "Egyptian cat" (285) and "espresso" (967) it prints the share of each class's heat that lies on
that class's object (a quarter of the picture: 0.25 by chance), and writes the overlays as one PNG.

    python benchmarks/gradcam_photos.py [--bases efficientnet_lite0,efficientnet_lite2] [--png gradcam_photos.png]

Needs `tl-app assets` (the Lite assets) and scikit-image (the test extra).
"""
import argparse
import json

import numpy as np

CLASSES = {285: "Egyptian cat", 967: "espresso"}


def scenes(half=224):
    """(pictures [2, 2 half, 2 half, 3], [{class: (rows, cols) of its object}] per picture)."""
    import tensorflow as tf
    from skimage import data

    photos = {285: data.chelsea(), 967: data.coffee()}
    photos = {c: tf.image.resize(p[None].astype("float32"), (half, half), antialias=True).numpy()[0]
              for c, p in photos.items()}
    top, bottom, left, right = slice(0, half), slice(half, None), slice(0, half), slice(half, None)
    layouts = [{285: (top, left), 967: (bottom, right)}, {967: (top, right), 285: (bottom, left)}]
    pictures = np.full((len(layouts), 2 * half, 2 * half, 3), 128.0, np.float32)
    for picture, layout in zip(pictures, layouts):
        for c, (rows, cols) in layout.items():
            picture[rows, cols] = photos[c]
    return pictures, layouts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", default="efficientnet_lite0,efficientnet_lite2")
    parser.add_argument("--png", default="gradcam_photos.png")
    args = parser.parse_args()

    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app import assets
    from tl_app.evaluate.plots import examples_png
    from tl_app.image.backbones import get
    from tl_app.image.backbones.efficientnet_lite_convert import imagenet_classifier
    from tl_app.inspect.gradcam import grad_cam, overlay

    pictures, layouts = scenes()
    overlays, titles, rows = [], [], []
    for name in args.bases.split(","):
        backbone = get(name)
        base = backbone.build(backbone.native_size)
        base.load_weights(assets.require(name))
        model = imagenet_classifier(backbone, base, assets.cache_dir())
        probabilities = model.predict(pictures, verbose=0)
        for c, label in CLASSES.items():
            heat = grad_cam(model, pictures, [c] * len(pictures))
            for k, (picture, layout) in enumerate(zip(pictures, layouts)):
                share = float(heat[k][layout[c]].sum() / heat[k].sum())
                rows.append({"base": name, "class": label, "layout": k, "probability": round(float(probabilities[k, c]), 3),
                             "heat_on_object": round(share, 3)})
                overlays.append(overlay(picture, heat[k]))
                titles.append(f"{name}\n{label}: {share:.0%} of heat on it")
    for row in rows:
        print(json.dumps(row))
    with open(args.png, "wb") as f:
        f.write(examples_png(overlays, titles, [True] * len(overlays), columns=4, tile=224))
    print(f"min share on the object: {min(r['heat_on_object'] for r in rows):.3f} (chance 0.25); {args.png}")


if __name__ == "__main__":
    main()
