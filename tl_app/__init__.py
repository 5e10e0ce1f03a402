"""tl_app: transfer-learning recipes on Keras/TensorFlow, exported for TF Serving.

Import cost matters for the CLI, so this package imports nothing heavy here;
TensorFlow is loaded by the modules that need it.
"""
__version__ = "0.1.0"
