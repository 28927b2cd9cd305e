"""Images as model inputs: decoding inside the serving graph, and training-time augmentation.

`decode_image` is what the exported `serving_default` signature runs on each encoded
image, and what `toolkit classify` runs on each file before batching, so both see the
same pixels. `augmentation` is a Keras model of random layers, applied only while training.
"""

import keras

def decode_image(image_bytes, size, channels):
    """Encoded JPEG/PNG/GIF/BMP bytes -> float32 `[height, width, channels]` in [0, 255].

    The first frame of an animation is used; grayscale, grayscale+alpha, RGB and RGBA
    become the model's `channels` (alpha is dropped); 16-bit images are scaled to 8 bits;
    the image is resized (bilinear, antialiased) to `size` without keeping the aspect ratio.
    """
    import tensorflow as tf

    image = tf.io.decode_image(image_bytes, channels=0, dtype=tf.uint8, expand_animations=False)
    image = tf.ensure_shape(image, [None, None, None])
    native = tf.shape(image)[-1]
    color = tf.cond(native >= 3, lambda: image[..., :3], lambda: tf.image.grayscale_to_rgb(image[..., :1]))
    if channels == 1:
        image = tf.cond(native >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: image[..., :1])
    else:
        image = color
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def augmentation(image_shape, *, translate=4, flip=True, erase=0.0, seed=None):
    """Random shifts of up to `translate` pixels (zero fill: pad-and-random-crop), horizontal flips,
    and random erasing (cutout) with probability `erase`, each drawn per image.

    Returns None when no augmentation is asked for.
    """
    height, width = image_shape[:2]
    layers = []
    if translate:
        layers.append(keras.layers.RandomTranslation(translate / height, translate / width, fill_mode="constant",
                                                     interpolation="nearest", seed=seed, name="random_shift"))
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="random_flip"))
    if erase:
        layers.append(keras.layers.RandomErasing(factor=erase, scale=(0.02, 0.2), fill_value=0.0, seed=seed,
                                                 name="random_erasing"))
    if not layers:
        return None
    return keras.Sequential([keras.Input(image_shape), *layers], name="augmentation")
