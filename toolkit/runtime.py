"""Importing TensorFlow without its start-up chatter on stderr.

TensorFlow writes log lines (oneDNN notices, a failed CUDA probe on machines without a
GPU) straight to file descriptor 2 while it imports and initialises its devices, ignoring
TF_CPP_MIN_LOG_LEVEL. The command line promises one clear line on stderr per error, so it
imports TensorFlow through `import_tensorflow()`, which silences descriptor 2 meanwhile.
Set TOOLKIT_DEBUG=1 to see everything.
"""

import os
import sys


def import_tensorflow():
    """Imports TensorFlow (once) with its start-up logging silenced; returns the module."""
    if "tensorflow" in sys.modules or os.environ.get("TOOLKIT_DEBUG"):
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_logical_devices()  # initialises the devices: the CUDA probe logs here
        tf.get_logger().setLevel("ERROR")  # retracing and AutoGraph notices are for developers
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tf
