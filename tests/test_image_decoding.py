"""Training reads image files with the serving graph's own decoder: the same pixels, every kind of image (issue 11).

Three paths are compared on each kind of image `toolkit classify` accepts, at native size and
resized, for 3-channel and 1-channel models: training (`read_class_folders`), the exported
`serving_default` signature (`decode_image` in a `tf.function` over a batch of bytes with
`tf.map_fn`, as `image_classifier_archive`'s `serve_bytes`) and `decode_pixels` (the CLI).
"""

import functools
import io
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO, save
from toolkit.data import images
from toolkit.preprocessing.image import (
    PILLOW_FALLBACK_MAX_DIFF,
    decode_image_with_pillow,
    decode_images,
    decode_pixels,
)

MAX_DIFF = 1.0  # on the 0-255 scale; the paths share one decoder, so 0 is expected
HEIGHT, WIDTH = 20, 24
SIZES = [None, (16, 16), (28, 32)]  # native (20x24), smaller with another aspect ratio, larger


def image_kinds():
    """{file name: encoded bytes}: one tiny image of each kind, a gradient with noise (so resizing matters)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([x * 255 / (WIDTH - 1), y * 255 / (HEIGHT - 1), (x * 7 + y * 13) % 256], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    color = Image.fromarray(rgb)
    alpha = Image.fromarray((x * 10 + y * 3).astype(np.uint8))
    rgba = color.copy()
    rgba.putalpha(alpha)
    gray_alpha = color.convert("L")
    gray_alpha.putalpha(alpha)
    deep = Image.fromarray((x * 2600 + y * 180 + rng.integers(0, 300, x.shape)).astype(np.uint16))  # all 16 bits used
    palette = color.quantize(16)
    frames = [color.quantize(32), Image.fromarray(255 - rgb).quantize(32)]

    def encoded(image, **options):
        return save(io.BytesIO(), image, **options).getvalue()

    return {
        "rgb.jpg": encoded(color, format="JPEG", quality=90),
        "gray.jpg": encoded(color.convert("L"), format="JPEG", quality=90),
        "cmyk.jpg": encoded(color.convert("CMYK"), format="JPEG", quality=90),
        "rgb.png": encoded(color, format="PNG"),
        "gray.png": encoded(color.convert("L"), format="PNG"),
        "gray_alpha.png": encoded(gray_alpha, format="PNG"),
        "rgba.png": encoded(rgba, format="PNG"),
        "palette_alpha.png": encoded(palette, format="PNG", transparency=3),
        "16bit.png": encoded(deep, format="PNG"),
        "animated.gif": encoded(frames[0], format="GIF", save_all=True, append_images=frames[1:], transparency=5,
                                duration=100),
        "rgb.bmp": encoded(color, format="BMP"),
        "gray.bmp": encoded(color.convert("L"), format="BMP"),
        "palette.bmp": encoded(palette, format="BMP"),
    }


KINDS = image_kinds()


def class_folder(root, first):
    """ROOT/a/ holding every kind, led by `first` (which sets the channels training reads); returns the names in
    the order `read_class_folders` reads them."""
    (root / "a").mkdir(parents=True)
    names = [first] + [name for name in KINDS if name != first]
    for number, name in enumerate(names):
        (root / "a" / f"{number:02d}_{name}").write_bytes(KINDS[name])
    return names


def serve_bytes(data, shape):
    """What `serving_default` decodes: a batch of encoded images through `decode_images` in a `tf.function`."""
    import tensorflow as tf

    pixels, errors = server(shape)(tf.constant(data))
    assert not any(errors.numpy()), errors
    return pixels.numpy()


@functools.cache
def server(shape):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)])
    def serve(image_bytes):
        return decode_images(image_bytes, shape[:2], shape[2])

    return serve


def largest_difference(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


@pytest.mark.parametrize("channels, first", [(3, "rgb.png"), (1, "gray.png")])
@pytest.mark.parametrize("size", SIZES, ids=["native", "smaller", "larger"])
def test_training_reads_the_pixels_serving_and_the_cli_see(tmp_path, size, channels, first):
    names = class_folder(tmp_path, first)
    trained, labels = images.read_class_folders(tmp_path, ["a"], size)
    shape = (*(size or (HEIGHT, WIDTH)), channels)
    assert trained.shape == (len(KINDS), *shape) and trained.dtype == np.uint8 and labels.tolist() == [0] * len(KINDS)
    served = serve_bytes([KINDS[name] for name in names], shape)
    for name, train, serve in zip(names, trained, served):
        cli = decode_pixels(KINDS[name], shape, name)
        assert largest_difference(train, serve) <= MAX_DIFF, f"{name}: training and serving differ"
        assert largest_difference(cli, serve) <= MAX_DIFF, f"{name}: the CLI and serving differ"


def test_what_the_kinds_decode_to():
    """The served pixels are the right ones, not merely the same ones: 16-bit scaled like TensorFlow
    (>> 8, not clipped to 255), CMYK as RGB, a GIF's first frame, alpha dropped, a BMP's palette applied."""
    from PIL import Image

    served = dict(zip(KINDS, serve_bytes(list(KINDS.values()), (HEIGHT, WIDTH, 3))))
    deep = np.asarray(Image.open(io.BytesIO(KINDS["16bit.png"])))
    assert deep.max() > 40000
    np.testing.assert_array_equal(served["16bit.png"][..., 0], deep >> 8)
    rgb = np.asarray(Image.open(io.BytesIO(KINDS["rgb.png"])))
    np.testing.assert_array_equal(served["rgb.png"], rgb)
    np.testing.assert_array_equal(served["rgba.png"], rgb)
    assert largest_difference(served["cmyk.jpg"], rgb) < 40  # colours, not 3 of 4 raw CMYK planes
    assert np.abs(served["cmyk.jpg"] - rgb).mean() < 4
    first_frame = np.asarray(Image.open(io.BytesIO(KINDS["animated.gif"])).convert("RGB")).astype(float)
    assert np.abs(served["animated.gif"] - first_frame).mean() < 10  # the first frame, not the inverted second
    assert np.abs(served["animated.gif"] - (255 - first_frame)).mean() > 60
    palette = np.asarray(Image.open(io.BytesIO(KINDS["palette.bmp"])).convert("RGB"))
    assert len(np.unique(palette.reshape(-1, 3), axis=0)) > 8
    np.testing.assert_array_equal(served["palette.bmp"], palette)
    gray = np.asarray(Image.open(io.BytesIO(KINDS["gray.png"])))
    np.testing.assert_array_equal(served["gray.bmp"], np.repeat(gray[..., None], 3, axis=-1))
    np.testing.assert_array_equal(decode_pixels(KINDS["gray.bmp"], (HEIGHT, WIDTH, 1))[..., 0], gray)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("size", SIZES, ids=["native", "smaller", "larger"])
def test_pillow_fallback_stays_within_its_measured_bound(size, channels):
    shape = (*(size or (HEIGHT, WIDTH)), channels)
    for name, data in KINDS.items():
        graph = decode_pixels(data, shape, name)
        fallback = decode_image_with_pillow(data, shape[:2], channels)
        assert fallback.shape == shape and fallback.dtype == np.uint8
        difference = largest_difference(fallback, graph)
        assert difference <= (0 if size is None else PILLOW_FALLBACK_MAX_DIFF), f"{name}: {difference}"


def test_training_without_tensorflow_uses_the_fallback(tmp_path, monkeypatch):
    names = class_folder(tmp_path, "gray.png")
    (tmp_path / "a" / "broken.png").write_bytes(KINDS["rgb.png"][:100])
    with_graph, _ = images.read_class_folders(tmp_path, ["a"], (16, 16))
    monkeypatch.setattr(images, "_has_tensorflow", lambda: False)
    assert images.decoder().startswith("pillow")
    with_pillow, labels = images.read_class_folders(tmp_path, ["a"], (16, 16))
    assert with_pillow.shape == with_graph.shape == (len(names), 16, 16, 1) and len(labels) == len(names)
    assert largest_difference(with_pillow, with_graph) <= PILLOW_FALLBACK_MAX_DIFF


def test_the_serving_graph_answers_each_row_and_names_what_is_wrong_with_the_others():
    """One bad row does not fail a batch: its error says why, its pixels are zero, the others decode as alone."""
    import tensorflow as tf

    good = [KINDS[name] for name in sorted(KINDS)]
    jpeg = bytearray(KINDS["rgb.jpg"])
    frame = jpeg.find(b"\xff\xc0")  # a baseline JPEG's frame header: claim 23000x23000 pixels
    jpeg[frame + 5:frame + 9] = (23000).to_bytes(2, "big") * 2
    png = bytearray(KINDS["rgb.png"])
    png[16:24] = (100_000).to_bytes(4, "big") * 2  # a PNG header claiming 10^10 pixels
    bad = {b"": "empty", b"hello": "not an image (JPEG, PNG, GIF or BMP expected)",
           KINDS["rgb.png"][:60]: "not a readable image (truncated or corrupt data)",
           bytes(jpeg): "too large to decode (over 50,000,000 pixels)",
           bytes(png): "too large to decode (over 50,000,000 pixels)"}
    batch = good[:2] + list(bad) + good[2:]
    pixels, errors = server((HEIGHT, WIDTH, 3))(tf.constant(batch))
    pixels, errors = pixels.numpy(), [e.decode() for e in errors.numpy()]
    assert errors == [""] * 2 + list(bad.values()) + [""] * (len(good) - 2)
    assert not pixels[2:2 + len(bad)].any()
    alone = serve_bytes(good, (HEIGHT, WIDTH, 3))
    np.testing.assert_array_equal(np.concatenate([pixels[:2], pixels[2 + len(bad):]]), alone)
    empty_pixels, empty_errors = server((HEIGHT, WIDTH, 3))(tf.constant([], tf.string))
    assert empty_pixels.shape == (0, HEIGHT, WIDTH, 3) and empty_errors.shape == (0,)


def test_reading_images_without_tensorflow_imports_neither_tensorflow_nor_keras(tmp_path):
    """The checks and the Pillow decoder stand alone: what a TensorFlow-free path (LiteRT) will read images with."""
    (tmp_path / "rgb.png").write_bytes(KINDS["rgb.png"])
    code = ("import sys\n"
            "from toolkit.preprocessing.image import check_image_header, decode_image_with_pillow, first_gif_frame\n"
            f"data = open({str(tmp_path / 'rgb.png')!r}, 'rb').read()\n"
            "print(check_image_header(data, 'rgb.png'), decode_image_with_pillow(first_gif_frame(data), (8, 8), 3).shape,\n"
            "      [m for m in ('tensorflow', 'keras') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == [f"({WIDTH},", f"{HEIGHT})", "(8,", "8,", "3)", "[]"], out.stdout
