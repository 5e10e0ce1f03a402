"""Image transfer learning recipes (MobileNetV2): `cifar10`, `image_folder`. (Being written.)"""
