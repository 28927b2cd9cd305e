"""Preprocessing as Keras/TF ops: the same code runs in `tf.data` for training and inside exported models."""
