"""Train, export and serve the classic deep-learning models for text and images.

Importing `toolkit` itself is cheap: TensorFlow and Keras are imported by the
submodules that need them, so the command line answers `--help` instantly.
"""

__version__ = "0.1.0"
