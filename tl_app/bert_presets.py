"""BERT presets: keras-hub names, local directories, the offline MiniLM asset. (Being written.)"""
