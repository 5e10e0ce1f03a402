"""ResNet50V2 (He et al., 2016, pre-activation) from `keras.applications`: `resnet50_v2`.

Inputs scaled to -1..1 (`resnet_v2.preprocess_input`) by a layer of the model.
ImageNet weights: a Keras download (Keras applications, MIT); no offline asset.
"""
from tl_app.image.backbones.backbone import ImageNetWeights
from tl_app.image.backbones.keras_application import KerasApplicationBackbone

RESNET50_V2 = KerasApplicationBackbone(
    name="resnet50_v2", architecture="ResNet50V2 (pre-activation, 50 layers)", parameters=23_564_800,
    feature_size=2048, native_size=224,
    imagenet=ImageNetWeights("keras", "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                             "MIT (Keras applications)"),
    block_pattern=r"^(conv\d_block\d+|post)_", constructor="ResNet50V2", family="resnet")
