"""Asks a TF Serving model server for an answer over gRPC: an example client of the shipped models.

    python serving/grpc_client.py sentiment "A wonderful film" "Dull and far too long"
    python serving/grpc_client.py translator_en_de "A dog runs across the grass."
    python serving/grpc_client.py cifar10_resnet photo.jpg other.png
    python serving/grpc_client.py captioner photo.jpg
    python serving/grpc_client.py forecast_co2 $(tail -n 104 weekly_co2.txt)

What to send follows from the arguments, as the models' `serving_default` signatures take it: paths
of files are sent as their bytes (`image_bytes`: JPEG, PNG, GIF or BMP, decoded in the graph), numbers
as one row of a window (`window`), anything else as text (`text`), one row per argument. Prints
one JSON object per row, the model's outputs by name. Needs `tensorflow-serving-api` (a dependency of
the toolkit); start the server as serving/README.md says.
"""

import argparse
import json
import os
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def inputs_for(values):
    """{input name: numpy array} of a `serving_default` request for `values` (command-line arguments)."""
    if all(os.path.isfile(value) for value in values):
        return {"image_bytes": np.array([Path(value).read_bytes() for value in values], dtype=object)}
    try:
        return {"window": np.array([[float(value) for value in values]], dtype=np.float32)}
    except ValueError:
        return {"text": np.array([value.encode("utf-8") for value in values], dtype=object)}


def predict_request(model, inputs, signature="serving_default"):
    """The PredictRequest for `inputs` ({name: array}, one row per example) to MODEL's SIGNATURE."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def answers(response):
    """One dict per row of a PredictResponse: output name -> plain Python value (text decoded)."""
    outputs = {name: tf.make_ndarray(tensor).tolist() for name, tensor in response.outputs.items()}
    rows = len(next(iter(outputs.values())))
    return [{name: _plain(values[row]) for name, values in outputs.items()} for row in range(rows)]


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the model's name in serving/models.config, e.g. sentiment")
    parser.add_argument("values", nargs="+", help="texts, image files or the numbers of one window")
    parser.add_argument("--server", default="localhost:8500", help="host:port of TF Serving's gRPC API")
    parser.add_argument("--signature", default="serving_default", help="the signature to call")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
    args = parser.parse_args()
    request = predict_request(args.model, inputs_for(args.values), args.signature)
    with grpc.insecure_channel(args.server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=args.timeout)
        except grpc.RpcError as e:
            raise SystemExit(f"Error: {args.server}: {e.code().name}: {e.details()}") from None
    for answer in answers(response):
        print(json.dumps(answer, ensure_ascii=False))


if __name__ == "__main__":
    main()
