import keras
import numpy as np
import pytest

from toolkit.models import cnn, resnet


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_cifar_resnet20_has_the_papers_size():
    model = resnet.build_cifar_resnet(20)
    assert model.output_shape == (None, 10)
    assert 0.26e6 < trainable(model) < 0.28e6  # He et al. (2015), table 6: 0.27M
    assert len([l for l in model.layers if isinstance(l, keras.layers.Conv2D)]) == 19  # + 1 dense = 20 layers


def test_shortcut_options_and_the_plain_network():
    small = dict(width=4, input_shape=(16, 16, 3))  # the structure, not the size, is under test
    a = resnet.build_cifar_resnet(20, shortcut="A", **small)
    b = resnet.build_cifar_resnet(20, shortcut="B", **small)
    plain = resnet.build_cifar_resnet(20, residual=False, **small)
    assert trainable(b) > trainable(a) == trainable(plain)  # option A adds no parameters, B adds projections
    assert not any(isinstance(l, keras.layers.Add) for l in plain.layers)
    assert sum(isinstance(l, keras.layers.Add) for l in a.layers) == 9
    v2 = resnet.build_cifar_resnet(32, version=2, **small)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    for model in (a, b, plain, v2):
        out = model.predict(x, verbose=0)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("depth, expected", [(18, 11_689_512), (50, 25_557_032)])
def test_imagenet_resnets_match_the_reference_parameter_counts(depth, expected):
    # torchvision's resnet18 / resnet50 with 1000 classes (batch-norm statistics are not parameters there)
    model = resnet.build_resnet(depth, num_classes=1000, input_shape=(64, 64, 3))
    assert trainable(model) == expected


def test_conv_output_size():
    assert cnn.conv_output_size(32, 5) == 28
    assert cnn.conv_output_size(32, 3, padding=1, stride=1) == 32
    assert cnn.conv_output_size(227, 11, padding=0, stride=4) == 55
    assert cnn.conv_output_size(224, 11, padding=2, stride=4) == 55  # 55.25, rounded down
    with pytest.raises(ValueError, match="not an integer"):
        cnn.conv_output_size(224, 11, padding=2, stride=4, strict=True)
    with pytest.raises(ValueError, match="does not fit"):
        cnn.conv_output_size(3, 5)


@pytest.mark.parametrize("build, shape, params", [
    (lambda s: cnn.build_lenet5(input_shape=s), (28, 28, 1), 61_706),
    (lambda s: cnn.build_lenet5(input_shape=s), (32, 32, 1), 61_706),
    (lambda s: cnn.build_alexnet(input_shape=s, width=0.25), (32, 32, 3), None),
    (lambda s: cnn.build_alexnet(input_shape=s, width=0.25), (128, 128, 3), None),
    (lambda s: cnn.build_vgg(11, input_shape=s), (32, 32, 3), None),
])
def test_classic_cnns(build, shape, params):
    model = build(shape)
    assert model.output_shape == (None, 10)
    if params:
        assert trainable(model) == params  # LeNet-5's classic count with a 10-way output
    x = np.zeros((1, *shape), "float32")
    assert model.predict(x, verbose=0).shape == (1, 10)


@pytest.mark.parametrize("build, message", [
    (lambda: cnn.build_vgg(16, input_shape=(16, 16, 3)), "input too small for vgg16"),
    (lambda: cnn.build_lenet5(input_shape=(8, 8, 1)), "input too small for lenet5"),
    (lambda: resnet.build_cifar_resnet(21), "depth=21"),
    (lambda: resnet.build_cifar_resnet(20, shortcut="C"), "shortcut='C'"),
    (lambda: resnet.build_resnet(19), "depth=19"),
    (lambda: resnet.build_resnet(18, input_shape=(16, 16, 3)), "at least 32x32"),
    (lambda: resnet.build_cifar_resnet(20, num_classes=1), "num_classes=1"),
])
def test_builders_refuse_bad_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_resnet_round_trips_through_keras_format(tmp_path):
    model = resnet.build_cifar_resnet(8, width=4, input_shape=(16, 16, 3), num_classes=3)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
