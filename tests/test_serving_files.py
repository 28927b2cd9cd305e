"""serving/: the TF Serving config files parse as the model server parses them and name every shipped model;
the gRPC client's requests are what each shipped model's `serving_default` takes (no server here: they are
run through the SavedModel's signature instead)."""

import importlib.util
import json

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from tests.helpers import REPO
from toolkit.serving import resolve_model_dir

SERVING = REPO / "serving"
SHIPPED = sorted(p.name for p in (REPO / "saved_models").iterdir() if any(v.name.isdigit() for v in p.iterdir()))


def grpc_client():
    """serving/grpc_client.py as a module (serving/ is a folder of examples, not a package)."""
    spec = importlib.util.spec_from_file_location("grpc_client", SERVING / "grpc_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_config_serves_every_shipped_model_from_the_docker_mount():
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse((SERVING / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    models = config.model_config_list.config
    assert sorted(m.name for m in models) == SHIPPED
    for model in models:
        assert model.base_path == f"/models/{model.name}" and model.model_platform == "tensorflow"


def batching_parameters_message():
    """TF Serving's BatchingParameters (tensorflow_serving/servables/tensorflow/session_bundle_config.proto),
    which the pip package lacks: its fields rebuilt here, so the file is parsed as the model server parses it."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    field = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(name="batching.proto", package="tensorflow.serving", syntax="proto3",
                                               dependency=["google/protobuf/wrappers.proto"])
    message = proto.message_type.add(name="BatchingParameters")
    wrapped = [("max_batch_size", "Int64Value"), ("batch_timeout_micros", "Int64Value"),
               ("max_enqueued_batches", "Int64Value"), ("num_batch_threads", "Int64Value"),
               ("thread_pool_name", "StringValue")]
    for number, (name, wrapper) in enumerate(wrapped, start=1):
        message.field.add(name=name, number=number, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                          type_name=f".google.protobuf.{wrapper}")
    message.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))()


def test_batching_parameters_parse_and_need_no_padding():
    params = text_format.Parse((SERVING / "batching_parameters.txt").read_text(), batching_parameters_message())
    assert params.max_batch_size.value >= 64 and params.num_batch_threads.value >= 1
    assert 0 <= params.batch_timeout_micros.value <= 10_000 and params.max_enqueued_batches.value >= 1
    assert not params.pad_variable_length_inputs


def test_the_docker_line_mounts_what_the_config_files_expect():
    readme = (SERVING / "README.md").read_text()
    for part in ('-v "$PWD/saved_models:/models"', '-v "$PWD/serving:/config"', "-p 8500:8500 -p 8501:8501",
                 "--model_config_file=/config/models.config", "--enable_batching",
                 "--batching_parameters_file=/config/batching_parameters.txt"):
        assert part in readme, part


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "red.png"
    Image.new("RGB", (40, 30), (210, 25, 25)).save(path)
    return str(path)


@pytest.mark.parametrize("model", SHIPPED)
def test_the_grpc_clients_request_is_what_the_models_signature_takes(model, photo):
    import tensorflow_text  # noqa: F401  (the translator's SentencePiece ops)
    from tensorflow_serving.apis import predict_pb2

    client = grpc_client()
    served = resolve_model_dir(REPO / "saved_models" / model)  # the newest: what TF Serving serves
    signature = tf.saved_model.load(str(served)).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    (name, spec), = specs.items()  # every shipped model takes one input; the client sends it from arguments
    arguments = {"text": ["A wonderful film", "Ein Hund."], "image_bytes": [photo, photo],
                 "window": [str(v) for v in 330 + np.sin(np.arange(spec.shape[-1] or 1))]}[name]
    request = predict_pb2.PredictRequest.FromString(
        client.predict_request(model, client.inputs_for(arguments)).SerializeToString())
    assert request.model_spec.name == model and request.model_spec.signature_name == "serving_default"
    assert set(request.inputs) == set(specs)
    assert tf.dtypes.as_dtype(request.inputs[name].dtype) == spec.dtype
    outputs = signature(**{key: tf.constant(tf.make_ndarray(tensor)) for key, tensor in request.inputs.items()})
    response = predict_pb2.PredictResponse()
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    answers = client.answers(response)
    assert len(answers) == len(tf.make_ndarray(request.inputs[name]))
    assert set(answers[0]) == set(outputs) and json.dumps(answers, ensure_ascii=False)  # plain, printable
