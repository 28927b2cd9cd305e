"""Images as model inputs: one decoder for training and serving, and training-time augmentation.

`decode_image` is what the exported `serving_default` signature runs on each encoded
image, what `toolkit classify` runs on each file before batching (`decode_pixels`), and
what reads image files for training, so all three see the same pixels. `augmentation` is
a Keras model of random layers, applied only while training.
"""

import io

import keras

from toolkit.errors import ToolkitError

MAX_IMAGE_PIXELS = 50_000_000
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "MPO")  # what tf.io.decode_image reads (MPO: a JPEG with extra frames)

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


def decode_pixels(data, image_shape, name="image"):
    """Pixels of one encoded image, decoded eagerly by `decode_image`; ToolkitError if it is not one."""
    from toolkit.runtime import import_tensorflow

    tf = import_tensorflow()
    check_image_header(data, name)
    try:
        return decode_image(tf.constant(data), tuple(image_shape[:2]), image_shape[2]).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else "cannot decode"
        raise ToolkitError(f"{name}: not a readable image ({_short(reason)})") from None


def check_image_header(data, name):
    """(width, height) of an encoded image, read from its header; ToolkitError for what is not an image
    of a supported format, and for images too large to decode in bounded memory."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            kind = image.format
    except Exception:  # Pillow raises many types for non-images  # noqa: BLE001
        raise ToolkitError(f"{name}: not an image (JPEG, PNG, GIF or BMP expected)") from None
    if kind not in FORMATS:
        raise ToolkitError(f"{name}: {kind} images are not supported (JPEG, PNG, GIF or BMP expected)")
    if width * height > MAX_IMAGE_PIXELS:
        raise ToolkitError(f"{name}: {width}x{height} is too large to decode (limit {MAX_IMAGE_PIXELS:,} pixels)")
    return width, height


def _short(reason):
    return reason if len(reason) < 120 else reason[:117] + "..."


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
