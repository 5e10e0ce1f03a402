"""MobileNetV2 weights: imagenet, a file, the offline asset, or none. (Being written.)"""
