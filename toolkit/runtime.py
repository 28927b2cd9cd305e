"""Importing TensorFlow without its start-up chatter on stderr.

TensorFlow writes log lines (oneDNN notices, a failed CUDA probe on machines without a
GPU) straight to file descriptor 2 while it imports and initialises its devices, ignoring
TF_CPP_MIN_LOG_LEVEL. The command line promises one clear line on stderr per error, so it
imports TensorFlow through `import_tensorflow()`, which silences descriptor 2 meanwhile.
Set TOOLKIT_DEBUG=1 to see everything.
"""

import contextlib
import os
import sys
import tempfile
import types


@contextlib.contextmanager
def captured_stderr():
    """Collects what native code writes straight to file descriptor 2 meanwhile, as `.text`.

    TensorFlow's start-up chatter and libjpeg's warnings bypass Python's `sys.stderr`. The
    descriptor is process-wide: what other threads write meanwhile is collected too. With
    TOOLKIT_DEBUG set, the text is written on to stderr afterwards.
    """
    captured = types.SimpleNamespace(text="")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")
    if captured.text and os.environ.get("TOOLKIT_DEBUG"):
        sys.stderr.write(captured.text)


def import_tensorflow():
    """Imports TensorFlow (once) with its start-up logging silenced; returns the module."""
    if "tensorflow" in sys.modules or os.environ.get("TOOLKIT_DEBUG"):
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with captured_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs here; the runtime itself starts later (a
        # multi-worker strategy must configure it first)
        tf.get_logger().setLevel("ERROR")  # retracing and AutoGraph notices are for developers
    return tf
