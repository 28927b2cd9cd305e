"""Data sets as `tf.data` pipelines, read from a local copy or downloaded into a cache."""
