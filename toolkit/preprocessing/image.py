"""Images as model inputs: one decoder for training and serving, and training-time augmentation.

`decode_image` is what the exported `serving_default` signature runs on each encoded
image, what `toolkit classify` runs on each file before batching (`decode_pixels`), and
what reads image files for training (`toolkit.data.images`), so all three see the same
pixels. `decode_image_with_pillow` stands in for it only where TensorFlow is not installed.
`augmentation` is a Keras model of random layers, applied only while training.

Hostile files are stopped before TensorFlow sees them (`checked_bytes`): the header must be
a supported format within MAX_IMAGE_PIXELS, and an animated GIF is cut to its first frame,
because TensorFlow's GIF decoder inflates every frame of an animation before it returns the
first (a 1 MB GIF of 300 frames at 2000x2000 took 1.9 GB).
"""

import io
import re
import warnings

from toolkit.errors import ToolkitError
from toolkit.runtime import captured_stderr

MAX_IMAGE_BYTES = 50_000_000  # an image file read for training or answering
MAX_IMAGE_PIXELS = 50_000_000
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "MPO")  # what tf.io.decode_image reads (MPO: a JPEG with extra frames)
# Arrays decoded by an older decoder are not reused from the cache (`toolkit.data.images`): bump this
# whenever the pixels `decode_image` gives change.
DECODER_VERSION = 2
PILLOW_FALLBACK_MAX_DIFF = 1  # measured, after a resize; equal at native size (decode_image_with_pillow)

# What libjpeg writes to stderr when the data end before the image does or cannot be decoded (it then
# fills the rest with gray and goes on). Its other warnings ("N extraneous bytes before marker")
# are common in good photos and are ignored.
LIBJPEG_CORRUPT = re.compile(r"Corrupt JPEG data: (premature end|bad Huffman|found marker)|Premature end of JPEG")


def decode_image(image_bytes, size, channels):
    """Encoded JPEG/PNG/GIF/BMP bytes -> float32 `[height, width, channels]`, whole numbers in [0, 255].

    The first frame of an animation is used; grayscale, grayscale+alpha, RGB and RGBA
    become the model's `channels` (alpha is dropped); 16-bit images are scaled to 8 bits;
    the image is resized (bilinear, antialiased) to `size` without keeping the aspect ratio
    and rounded: these are the uint8 pixels training stores (`decode_image_uint8`), as floats.
    """
    import tensorflow as tf

    return tf.cast(decode_image_uint8(image_bytes, size, channels), tf.float32)


def decode_images(image_bytes, size, channels):
    """A batch of encoded images `[n]` -> (float32 pixels `[n, *size, channels]`, errors `[n]` strings).

    What a serving graph runs, where one bad row must not fail the others (nor, under TF
    Serving's batching, other clients' requests): a row that is not a JPEG, PNG, GIF or BMP,
    declares more than MAX_IMAGE_PIXELS pixels, is over MAX_IMAGE_BYTES, or fails to decode
    gets zero pixels and an error message; good rows get "" and `decode_image`'s pixels.
    Decoding runs in a `tf.data` pipeline whose `ignore_errors` drops the rows whose decoder
    failed (a graph cannot catch an op's error otherwise); the survivors are put back by index.
    Not caught here, unlike `decode_pixels`: a JPEG that libjpeg decodes with a warning (it
    fills missing data with gray), and an animated GIF's frames (the decoder inflates them all).
    """
    import tensorflow as tf

    rows = tf.shape(image_bytes)[0]
    problem = _header_problems(image_bytes)
    decodable = tf.data.Dataset.from_tensor_slices((tf.range(rows), image_bytes, problem))
    decodable = decodable.filter(lambda i, data, problem: tf.equal(problem, ""))
    # One row at a time: a request's memory is one decoded image (at most MAX_IMAGE_PIXELS) at a time.
    decoded = decodable.map(lambda i, data, problem: (i, decode_image(data, size, channels)))
    index, pixels = _surviving_rows(decoded.ignore_errors(), rows, tf.zeros([*size, channels]))
    good = tf.scatter_nd(index[:, None], tf.ones_like(index, tf.bool), [rows])
    pixels = tf.scatter_nd(index[:, None], pixels, [rows, *size, channels])
    errors = tf.where(tf.equal(problem, "") & ~good, "not a readable image (truncated or corrupt data)", problem)
    return pixels, errors


def _surviving_rows(rows_dataset, rows, blank):
    """(indices, values) of the (index, value) elements a `tf.data` pipeline kept, as two tensors: one
    placeholder element goes in after them, so that the batch exists even when every row was dropped."""
    import tensorflow as tf

    placeholder = tf.data.Dataset.from_tensors((tf.constant(-1), blank))
    index, values = rows_dataset.concatenate(placeholder).batch(tf.cast(rows, tf.int64) + 1).get_single_element()
    return index[:-1], values[:-1]


def _jpeg_pixels(image_bytes, jpeg):
    """The pixels each JPEG row's frame header declares (its frame header can sit after any number of
    other segments, so libjpeg finds it: `extract_jpeg_shape`); 0 for other rows and unreadable headers."""
    import tensorflow as tf

    rows = tf.shape(image_bytes)[0]
    jpegs = tf.data.Dataset.from_tensor_slices((tf.range(rows), image_bytes, jpeg)).filter(lambda i, data, j: j)
    sizes = jpegs.map(lambda i, data, j: (i, tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64))))
    index, pixels = _surviving_rows(sizes.ignore_errors(), rows, tf.constant(0, tf.int64))
    return tf.scatter_nd(index[:, None], pixels, [rows])


def _header_problems(image_bytes):
    """What is wrong with each of a batch of encoded images, from its first bytes: "" for a supported
    format within the size limits, else the message (`check_image_header`, in graph ops)."""
    import tensorflow as tf

    def number(offset, size, big_endian):  # unsigned, from `size` bytes at `offset` (0 past the end)
        raw = tf.strings.substr(tf.strings.join([image_bytes, tf.constant(b"\0" * 32)]), offset, size)
        digits = tf.reshape(tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.int64), [-1, size])
        weights = tf.constant([256 ** i for i in (reversed(range(size)) if big_endian else range(size))], tf.int64)
        return tf.reduce_sum(digits * weights, axis=-1)

    head = tf.strings.substr(image_bytes, 0, 4)
    png = tf.equal(head, b"\x89PNG")
    gif = tf.equal(tf.strings.substr(image_bytes, 0, 3), b"GIF")
    bmp = tf.equal(tf.strings.substr(image_bytes, 0, 2), b"BM")
    jpeg = tf.equal(tf.strings.substr(image_bytes, 0, 3), b"\xff\xd8\xff")
    bmp_height = number(22, 4, False)
    bmp_height = tf.where(bmp_height >= 2 ** 31, 2 ** 32 - bmp_height, bmp_height)  # negative: stored top-down
    pixels = tf.where(png, number(16, 4, True) * number(20, 4, True),
             tf.where(gif, number(6, 2, False) * number(8, 2, False),
             tf.where(bmp, number(18, 4, False) * bmp_height, _jpeg_pixels(image_bytes, jpeg))))
    size = tf.strings.length(image_bytes)
    return tf.where(tf.equal(size, 0), "empty",
           tf.where(~(png | gif | bmp | jpeg), "not an image (JPEG, PNG, GIF or BMP expected)",
           tf.where(size > MAX_IMAGE_BYTES, f"over {MAX_IMAGE_BYTES:,} bytes",
           tf.where(pixels > MAX_IMAGE_PIXELS, f"too large to decode (over {MAX_IMAGE_PIXELS:,} pixels)", ""))))


def decode_image_uint8(image_bytes, size, channels):
    """`decode_image`'s pixels as uint8 `[height, width, channels]`: how training reads image files."""
    return model_pixels(decode_native(image_bytes), size, channels)


def model_pixels(image, size, channels):
    """uint8 pixels as stored `[height, width, c]` (c: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) -> the model's
    `[*size, channels]` uint8 pixels: what `decode_image_uint8` does after decoding."""
    import tensorflow as tf

    native = tf.shape(image)[-1]
    if channels == 1:
        image = tf.cond(native >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: image[..., :1])
    else:
        image = tf.cond(native >= 3, lambda: image[..., :3], lambda: tf.image.grayscale_to_rgb(image[..., :1]))
    image = tf.cond(tf.reduce_all(tf.shape(image)[:2] == size), lambda: image, lambda: _resized(image, size))
    return tf.ensure_shape(image, [*size, channels])


def _resized(image, size):
    """Bilinear, antialiased, rounded to uint8. (At the image's own size it would change nothing: skipped.)"""
    import tensorflow as tf

    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def decode_native(image_bytes):
    """Encoded bytes -> uint8 `[height, width, c]` as stored: c is 1 (gray), 2 (gray+alpha), 3 or 4 (RGBA).

    JPEGs use libjpeg's accurate integer DCT (what Pillow and most viewers use; tf.io.decode_image
    would use the fast one, up to 5 levels away); CMYK JPEGs come out as RGB. A 16-bit PNG
    is scaled to 8 bits by dropping its low byte. An 8-bit BMP's palette is applied
    (`_bmp_palette`: TensorFlow alone returns the palette indices as if they were gray levels).
    """
    import tensorflow as tf

    def other():
        image = tf.io.decode_image(image_bytes, channels=0, dtype=tf.uint8, expand_animations=False)
        bmp = tf.logical_and(tf.equal(tf.strings.substr(image_bytes, 0, 2), "BM"), tf.equal(tf.shape(image)[-1], 1))
        return tf.cond(bmp, lambda: _bmp_palette(image_bytes, image), lambda: image)

    image = tf.cond(tf.io.is_jpeg(image_bytes),
                    lambda: tf.io.decode_jpeg(image_bytes, channels=0, dct_method="INTEGER_ACCURATE"),
                    other)
    return tf.ensure_shape(image, [None, None, None])


def _bmp_palette(image_bytes, indices):
    """The colours of an 8-bit BMP's palette indices `[height, width, 1]`: RGB, or 1 channel if the palette is gray.

    The palette follows the 14-byte file header and the DIB header (whose size is its first
    4 bytes), 4 bytes (blue, green, red, 0) a colour; the header's colour count at byte 46
    (0: 256). An index past the palette makes the image unreadable.
    """
    import tensorflow as tf

    def number(offset):  # 4 bytes, little-endian
        raw = tf.cast(tf.io.decode_raw(tf.strings.substr(image_bytes, offset, 4), tf.uint8), tf.int64)
        return tf.reduce_sum(raw * tf.constant([1, 1 << 8, 1 << 16, 1 << 24], tf.int64))

    count = number(46)
    count = tf.where(count == 0, tf.constant(256, tf.int64), count)
    table = tf.io.decode_raw(tf.strings.substr(image_bytes, 14 + number(14), 4 * count), tf.uint8)
    palette = tf.reshape(table, [-1, 4])[:, 2::-1]
    colours = tf.gather(palette, tf.cast(indices[..., 0], tf.int32))
    gray = tf.reduce_all(tf.equal(palette, palette[:, :1]))
    return tf.cond(gray, lambda: colours[..., :1], lambda: colours)


def decode_pixels(data, image_shape, name="image"):
    """Pixels of one encoded image, decoded eagerly by `decode_image`; ToolkitError if it is not one.

    The bytes are checked first (`checked_bytes`). libjpeg's own messages are kept off stderr:
    one that says the data are truncated or corrupt (libjpeg would fill the rest with gray and
    go on) refuses the image.
    """
    from toolkit.runtime import import_tensorflow

    tf = import_tensorflow()
    data = checked_bytes(data, name)
    try:
        with captured_stderr() as stderr:
            pixels = decode_image(tf.constant(data), tuple(image_shape[:2]), image_shape[2]).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, ValueError) as e:
        raise ToolkitError(f"{name}: not a readable image ({readable_reason(str(e))})") from None
    if LIBJPEG_CORRUPT.search(stderr.text):
        raise ToolkitError(f"{name}: not a readable image (truncated or corrupt data)")
    return pixels


def light_pixels(data, image_shape, name="image"):
    """`decode_pixels` without TensorFlow (the LiteRT path): the same checks, then Pillow imitating the graph
    (`decode_image_with_pillow`: equal at the image's own size, at most 1 level apart after a resize).

    One difference by design: Pillow keeps libjpeg's warnings to itself, so a JPEG whose data stop early
    but which still ends with its end marker is answered (gray where data are missing), where
    `decode_pixels` refuses it; a JPEG cut short without its end is refused by both.
    """
    data = checked_bytes(data, name)
    try:
        return decode_image_with_pillow(data, tuple(image_shape[:2]), image_shape[2]).astype("float32")
    except Exception:  # Pillow raises OSError, SyntaxError, ValueError... for broken data  # noqa: BLE001
        raise ToolkitError(f"{name}: not a readable image (truncated or corrupt data)") from None


def array_pixels(array, image_shape, name="image", light=False):
    """The pixels the model reads from a numpy array `[height, width]` or `[height, width, 1-4 channels]`
    of values in [0, 255] (uint8, or floats that are rounded), as `decode_image` would give them for an
    image file with those pixels; ToolkitError for an array that is no image. `light`: resized by Pillow
    (`pillow_model_pixels`), without TensorFlow."""
    import numpy as np

    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or 0 in array.shape:
        raise ToolkitError(f"{name}: an array of shape {array.shape} is not an image "
                           "([height, width] or [height, width, channels] with 1 to 4 channels expected)")
    if array.shape[0] * array.shape[1] > MAX_IMAGE_PIXELS:
        raise ToolkitError(f"{name}: {array.shape[1]}x{array.shape[0]} is too large (limit {MAX_IMAGE_PIXELS:,} pixels)")
    if array.dtype != np.uint8:
        if array.dtype.kind not in "biuf" or not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
            raise ToolkitError(f"{name}: pixel values must be finite numbers in [0, 255]")
        array = np.round(array).astype(np.uint8)
    size, channels = tuple(image_shape[:2]), image_shape[2]
    if light:
        return pillow_model_pixels(array, size, channels).astype("float32")
    from toolkit.runtime import import_tensorflow

    tf = import_tensorflow()
    return model_pixels(tf.constant(array), size, channels).numpy().astype("float32")


def sample_png(height, width, channels=3):
    """A small PNG of a gray gradient, `height` x `width`: a valid image for warm-up requests and examples."""
    import tensorflow as tf

    ramp = tf.cast(tf.linspace(0.0, 255.0, width), tf.uint8)
    image = tf.tile(ramp[None, :, None], [height, 1, channels])
    return tf.io.encode_png(image).numpy()


def checked_bytes(data, name):
    """The bytes to hand `decode_image`: ToolkitError for what is not an image of a supported format
    (`check_image_header`) or is too large; an animated GIF is cut to its first frame (`first_gif_frame`)."""
    check_image_header(data, name)
    return first_gif_frame(data)


def check_image_header(data, name):
    """(width, height) of an encoded image, read from its header; ToolkitError for what is not an image
    of a supported format, and for images too large to decode in bounded memory."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # Pillow's own, lower-key limit: ours below is the one that counts
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                kind = image.format
    except Image.DecompressionBombError:
        raise ToolkitError(f"{name}: too large to decode (over {MAX_IMAGE_PIXELS:,} pixels)") from None
    except Exception:  # Pillow raises many types for non-images  # noqa: BLE001
        raise ToolkitError(f"{name}: not an image (JPEG, PNG, GIF or BMP expected)") from None
    if kind not in FORMATS:
        raise ToolkitError(f"{name}: {kind} images are not supported (JPEG, PNG, GIF or BMP expected)")
    if width * height > MAX_IMAGE_PIXELS:
        raise ToolkitError(f"{name}: {width}x{height} is too large to decode (limit {MAX_IMAGE_PIXELS:,} pixels)")
    return width, height


# === Animated GIFs: the first frame only ===

def first_gif_frame(data):
    """A GIF's bytes cut after its first image (and a trailer added); any other bytes unchanged.

    TensorFlow's GIF decoder (giflib's DGifSlurp) inflates every frame before it returns the
    first, so the frames of an animation, not the header's size, bound its memory. Cutting
    the bytes costs a walk over the block lengths, decodes nothing, and leaves the first
    frame's pixels exactly as TensorFlow decodes them from the whole file. (Re-encoding the
    first frame with Pillow, or refusing frames x pixels over the limit, were the other
    choices: the first costs a decode and can differ in transparency; the second refuses
    good animations.) A first frame larger than the screen the header gives counts with its
    own size: Pillow's header size, which `check_image_header` holds to the limit, grows to it.
    """
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        return data
    try:
        end = _gif_first_image_end(data)
    except IndexError:
        return data  # cut short before the first image ends: TensorFlow says it is unreadable
    return data if end >= len(data) - 1 else data[:end] + b"\x3b"


def _gif_first_image_end(data):
    """The offset just past the first image's data in GIF bytes."""
    packed = data[10]
    position = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)  # after the global colour table
    while data[position] == 0x21:  # extensions (animation control, comments): label, then sub-blocks
        position = _past_sub_blocks(data, position + 2)
    if data[position] != 0x2C:
        raise IndexError("no image descriptor")
    packed = data[position + 9]
    position += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)  # after the local colour table
    return _past_sub_blocks(data, position + 1)  # + 1: the LZW minimum code size


def _past_sub_blocks(data, position):
    while data[position]:  # each sub-block: its length (1-255), then that many bytes; 0 ends them
        position += data[position] + 1
    return position + 1


# === Without TensorFlow: Pillow imitating the graph ===

def decode_image_with_pillow(data, size=None, channels=None):
    """A fallback for machines without TensorFlow: `decode_image` imitated with Pillow and NumPy,
    as uint8 `[height, width, channels]`. Where TensorFlow is installed, it is never used.
    Without `size`, the image keeps its own; without `channels`, gray images get 1, others 3.

    It follows the graph step by step (first frame; a GIF's transparent pixels black; a
    16-bit image's low byte dropped, not clipped; CMYK and grayscale converted with
    TensorFlow's formulas; an 8-bit BMP's gray palette read as 1 channel; a float bilinear,
    antialiased resize), and JPEGs decode with the same libjpeg DCT. Measured against
    `decode_image` on every kind of image `toolkit classify` accepts (tests/test_image_decoding.py)
    and on 2,000 CIFAR-10 JPEGs, resized to several sizes and to 1 and 3 channels: the pixels
    are equal at native size, and after a resize at most PILLOW_FALLBACK_MAX_DIFF = 1 apart
    (0.6% of the pixels, where the float arithmetic rounds to the other side of .5).
    """
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        native = _native_pixels(image, np)
    return pillow_model_pixels(native, size, channels)


def pillow_model_pixels(native, size=None, channels=None):
    """`model_pixels` in Pillow and NumPy: uint8 `[height, width, c]` as stored (c from 1 to 4) -> the model's
    uint8 `[*size, channels]` (`decode_image_with_pillow` after decoding; arrays on the light path)."""
    import numpy as np
    from PIL import Image

    size = tuple(size or native.shape[:2])
    channels = channels or (1 if native.shape[-1] <= 2 else 3)
    if native.shape[-1] >= 3:
        image = native[..., :3]
        if channels == 1:  # tf.image.rgb_to_grayscale on uint8, in float32
            s = image.astype(np.float32) * np.float32(1 / 255)
            w = np.array([0.2989, 0.5870, 0.1140], np.float32)  # summed in TensorFlow's order: equal on all 2^24 colours
            gray = (s[..., 0] * w[0] + s[..., 1] * w[1]) + s[..., 2] * w[2]
            image = (gray[..., None] * np.float32(255.5)).astype(np.uint8)
    else:
        image = native[..., :1]
        if channels == 3:
            image = np.repeat(image, 3, axis=-1)
    if image.shape[:2] == size:
        return image
    planes = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), "F").resize(
        (size[1], size[0]), Image.Resampling.BILINEAR)) for c in range(image.shape[-1])]
    return np.clip(np.round(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def _native_pixels(image, np):
    """What `decode_native` gives, from an open Pillow image: uint8 `[height, width, c]`."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return np.minimum(np.asarray(image).astype(np.int64) >> 8, 255).astype(np.uint8)[..., None]
    if image.format == "BMP" and image.mode == "P":  # a gray palette gives 1 channel (`_bmp_palette`)
        colours = np.asarray(image.getpalette() or [0], np.uint8).reshape(-1, 3)
        return _native_pixels(image.convert("L" if (colours == colours[:, :1]).all() else "RGB"), np)
    if image.format == "GIF":
        rgba = np.asarray(image.convert("RGBA"))
        return np.where(rgba[..., 3:] == 0, 0, rgba[..., :3]).astype(np.uint8)
    if image.mode == "CMYK":  # libjpeg's CMYK as TensorFlow turns it into RGB
        cmyk = np.asarray(image).astype(np.int32)
        return ((255 - cmyk[..., :3]) * (255 - cmyk[..., 3:]) // 255).astype(np.uint8)
    if image.mode in ("1", "L", "LA", "RGB", "RGBA"):
        pixels = np.asarray(image.convert("L") if image.mode == "1" else image)
        return pixels[..., None] if pixels.ndim == 2 else pixels
    return np.asarray(image.convert("RGBA" if "transparency" in image.info else "RGB"))


# === Error messages and what libjpeg says on stderr ===

def readable_reason(message):
    """A short reason from a TensorFlow decoding error, without its `{{function_node ...}}` wrapping."""
    message = re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]", "", message).strip()
    if re.search(r"Invalid (JPEG|PNG|GIF) data|jpeg::Uncompress|Input size should match|Premature end|truncated",
                 message, re.IGNORECASE):
        return "truncated or corrupt data"
    if "Number of channels inherent" in message:
        return "unsupported pixel format"
    message = message.splitlines()[0] if message else "cannot decode"
    return message if len(message) < 120 else message[:117] + "..."


# === Augmentation ===

def augmentation(image_shape, *, translate=4, flip=True, erase=0.0, seed=None):
    """Random shifts of up to `translate` pixels (zero fill: pad-and-random-crop), horizontal flips,
    and random erasing (cutout) with probability `erase`, each drawn per image.

    Returns None when no augmentation is asked for.
    """
    import keras  # here, not above: reading and checking images needs neither Keras nor TensorFlow

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
