"""TF Serving's contract: every model answers REST requests, served as TF Serving serves it, as the toolkit does.

Each model is loaded the way TF Serving's C++ loader loads it, with the TF1 session loader (tag
"serve", `import tensorflow_text` first for the SentencePiece ops), in a subprocess so that graph
mode never reaches the pytest process (`ServingProcess`: `python -m tests.test_serving_contract`). Request
bodies are parsed as TF Serving's REST API parses them and answered in its format, the "row"
format of tensorflow_serving/util/json_tensor.cc (`parse_request`, `predictions_json`), and every
row is checked against the toolkit's Python API (`toolkit.tasks.load`) given that row alone.

The contract, for every signature of every model:
- every signature is batchable: each input and output has a leading batch dimension (-1). REST rows
  are stacked along it, and TF Serving's batching merges requests along it, different search
  settings included (so `beam_size` and `length_penalty` are one per row, not scalars);
- the signatures, inputs and outputs (with their dtypes) that a toolkit export of its kind has
  (`contract`), unreadable images answered with an `error` while the other rows are answered;
- each row's answer is the Python API's: labels, captions and translations exactly, probabilities
  and scores within 1e-4;
- the README's REST examples ("Serving with TF Serving") are answered, and with the answers it shows.
"""

import base64
import functools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, SHARED_DATA

SHIPPED = REPO / "saved_models"
README = REPO / "README.md"
TOLERANCE = 1e-4  # probabilities and scores; values the API rounds to 4 places get half a unit more
ROUNDED_4 = TOLERANCE + 5e-5
NOT_AN_IMAGE = b"this is not an image"


# === TF Serving's REST API, emulated: the row format of tensorflow_serving/util/json_tensor.cc ===
# Pure Python and numpy, so that `test_rest_format_mirrors_tf_serving` needs no TensorFlow.

class RestError(Exception):
    """What TF Serving answers with HTTP 400, `{"error": message}` (its messages, where we mirror a check)."""


NUMPY_DTYPES = {"DT_STRING": object, "DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT32": np.int32,
                "DT_INT64": np.int64, "DT_BOOL": np.bool_}


def parse_request(body, signatures):
    """(signature name, {input name: numpy array}) of a REST predict body, parsed as TF Serving parses it.

    `signatures`: {name: {"inputs": {input name: [dtype, shape]}, ...}} (from the SignatureDefs). Only
    the row format (`"instances"`) is emulated: each instance is one row, the input's value if the
    signature has one input, else an object with a value for every input; `{"b64": ...}` is the
    bytes of a DT_STRING value; rows are stacked along a new first dimension.
    """
    try:
        request = json.loads(body)
    except ValueError as e:
        raise RestError(f"JSON Parse error: {e}") from None
    if not isinstance(request, dict):
        raise RestError(f"JSON Value: {body[:80]} Is not object")
    name = request.get("signature_name", "serving_default")
    if not isinstance(name, str):
        raise RestError("'signature_name' key must be a string value.")
    if name not in signatures:
        raise RestError(f'Serving signature name: "{name}" not found in signature def')
    inputs = signatures[name]["inputs"]
    if "instances" in request and "inputs" in request:
        raise RestError("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    if "inputs" in request:
        raise RestError("the columnar format ('inputs') is not emulated here: use 'instances'")
    if "instances" not in request:
        raise RestError("Missing 'inputs' or 'instances' key")
    instances = request["instances"]
    if not isinstance(instances, list):
        raise RestError("Excepting 'instances' to be an list/array")
    if not instances:
        raise RestError("No values in 'instances' array")
    if not isinstance(instances[0], dict) and len(inputs) > 1:
        raise RestError("instances is a plain list, but expecting list of objects as multiple input tensors "
                        "required as per tensorinfo_map")
    named = _is_named(instances[0])
    leaves, shapes = {}, {}
    for row, instance in enumerate(instances):
        if named != _is_named(instance):
            raise RestError(f"Expecting {'object but got list' if named else 'value/list but got object'} at item "
                            f"{row} of input list")
        items = instance.items() if named else [(min(inputs), instance)]
        for key, value in items:
            where = f"Failed to process element: {row}{f' key: {key}' if named else ''} of 'instances' list. Error: "
            if key not in inputs:
                raise RestError(f"{where}JSON object: does not have named input: {key}")
            values, shape = _dense(value, inputs[key][0], where)
            if key in shapes and shapes[key] != shape:
                raise RestError(f"{where}Expecting shape {shapes[key]} but got: {shape}")
            shapes[key] = shape
            leaves.setdefault(key, []).extend(values)
        if named and set(instance) != set(inputs):
            raise RestError(f"Failed to process element: {row} of 'instances' list. JSON object: "
                            f"{json.dumps(instance)[:80]} keys must be equal to: {','.join(sorted(inputs))}")
    feeds = {}
    for key, values in leaves.items():
        array = np.empty(len(values), object) if inputs[key][0] == "DT_STRING" else None
        if array is not None:
            array[:] = values
        else:
            array = np.array(values, NUMPY_DTYPES[inputs[key][0]])
        feeds[key] = array.reshape([len(instances), *shapes[key]])
    return name, feeds


def _is_named(instance):
    """An instance of named inputs: an object that is not a `{"b64": ...}` value."""
    return isinstance(instance, dict) and not _is_base64(instance)


def _is_base64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _dense(value, dtype, where):
    """(the leaves of a JSON value in order, its shape), checked to be a dense tensor of `dtype`."""
    shape, probe = [], value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    leaves = []

    def fill(item, level):
        if not isinstance(item, list):
            if level != len(shape):
                raise RestError(f"{where}JSON Value: {json.dumps(item)[:40]} found at incorrect level: {level + 1} "
                                f"in the JSON DOM. Expected at level: {len(shape)}")
            leaves.append(_leaf(item, dtype, where))
            return
        if level >= len(shape):
            raise RestError(f"{where}Encountered list at unexpected level: {level} expected < {len(shape)}")
        if len(item) != shape[level]:
            raise RestError(f"{where}Encountered list at unexpected size: {len(item)} at level: {level} "
                            f"expected size: {shape[level]}")
        for element in item:
            fill(element, level + 1)

    fill(value, 0)
    return leaves, shape


def _leaf(value, dtype, where):
    """One JSON scalar as a value of `dtype` (json_tensor.cc's AddValueToTensor), or a RestError."""
    def type_error():
        kind = {dict: "Object", list: "Array", str: "String", bool: "True" if value else "False",
                type(None): "Null"}.get(type(value), "Number")
        return RestError(f"{where}JSON Value: {json.dumps(value)[:40]} Type: {kind} is not of expected type: "
                         f"{dtype[3:].lower()}")

    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(value, dict):
        if dtype != "DT_STRING":
            raise type_error()
        if not _is_base64(value):
            raise RestError(f"{where}JSON Value: {json.dumps(value)[:40]} not formatted correctly for base64 data")
        try:
            return base64.b64decode(value["b64"] + "=" * (-len(value["b64"]) % 4), validate=True)
        except ValueError:
            raise RestError(f"{where}Unable to base64 decode") from None
    if dtype == "DT_STRING":
        if not isinstance(value, str):
            raise type_error()
        return value.encode("utf-8")
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        if not number:
            raise type_error()
        bits, largest = (24, np.finfo(np.float32).max) if dtype == "DT_FLOAT" else (53, np.finfo(np.float64).max)
        lossless = abs(value) < 2 ** bits if isinstance(value, int) else not np.isfinite(value) or abs(value) <= largest
        if not lossless:
            raise RestError(f"{where}Cannot convert JSON value: {value} to {dtype[3:].lower()} without loss of "
                            "precision.")
        return value
    if dtype in ("DT_INT32", "DT_INT64"):
        bits = 31 if dtype == "DT_INT32" else 63
        if not (isinstance(value, int) and not isinstance(value, bool) and -2 ** bits <= value < 2 ** bits):
            raise type_error()
        return value
    if dtype == "DT_BOOL":
        if not isinstance(value, bool):
            raise type_error()
        return value
    raise RestError(f"{where}Conversion of JSON Value: {json.dumps(value)[:40]} to type: {dtype} is not supported")


def predictions_json(outputs):
    """TF Serving's row-format answer `{"predictions": [...]}` to a signature's output arrays {name: array}.

    Every output must have a first (batch) dimension, the same for all; each row is an object of
    every output's value for that row, or the bare value when there is one output. Floats are
    written as TF Serving writes them (`decimal_text`); DT_STRING outputs as JSON strings, except
    those whose name ends in `_bytes`, written as `{"b64": ...}`.
    """
    batch = None
    for name, value in sorted(outputs.items()):
        if value.ndim == 0:
            raise RestError(f"Tensor name: {name} has no shape information ")
        if batch is not None and value.shape[0] != batch:
            raise RestError(f"Tensor name: {name} has inconsistent batch size: {value.shape[0]} expecting: {batch}")
        batch = value.shape[0]
    rows = []
    for row in range(batch):
        if len(outputs) == 1:
            (name, value), = outputs.items()
            rows.append(_json_value(value[row], name))
        else:
            rows.append("{" + ", ".join(f"{json.dumps(name)}: {_json_value(value[row], name)}"
                                        for name, value in sorted(outputs.items())) + "}")
    return '{"predictions": [' + ", ".join(rows) + "]}"


def _json_value(value, name):
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return "[" + ", ".join(_json_value(item, name) for item in value) + "]"
    if isinstance(value, np.ndarray):
        value = value[()]
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return json.dumps({"b64": base64.b64encode(value).decode("ascii")})
        try:
            return json.dumps(value.decode("utf-8"), ensure_ascii=False)
        except UnicodeDecodeError:
            raise RestError(f"output {name!r} holds bytes that are not UTF-8 text: TF Serving would write "
                            "invalid JSON (name it *_bytes to have it written as base64)") from None
    if isinstance(value, (np.floating, float)):
        return decimal_text(value)
    if isinstance(value, (np.bool_, bool)):
        return "true" if value else "false"
    return str(int(value))


def decimal_text(value):
    """A float as TF Serving writes it (json_tensor.cc's WriteDecimal): six significant digits if they
    read back as the same number, else full precision; ".0" on whole numbers; NaN, Infinity."""
    kind = value.dtype.type if isinstance(value, np.floating) else np.float64
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    if kind(text) != value:
        text = f"{value:.{9 if kind == np.float32 else 17}g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


# === The server: one model, loaded as TF Serving loads it (runs in a subprocess) ===

def serve(export_dir, bodies):
    """{"signatures": {name: {"inputs", "outputs": {key: [dtype, shape]}}}, "answers": [{"status", "body"}]}:
    the model in `export_dir` loaded by the TF1 session loader, answering each REST body in turn.

    Feeds and fetches are the SignatureDef's tensor names; a shape is a list of dimensions (-1
    unknown), or None for an unknown rank.
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops, as TF Serving's build does)
    from tensorflow.core.framework import types_pb2

    def tensor(info):
        shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
        return [types_pb2.DataType.Name(info.dtype), shape]

    answers = []
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta_graph = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(export_dir))
        definitions = {name: d for name, d in meta_graph.signature_def.items() if not name.startswith("__")}
        signatures = {name: {side: {key: tensor(info) for key, info in getattr(d, side).items()}
                             for side in ("inputs", "outputs")} for name, d in definitions.items()}
        for body in bodies:
            try:
                name, feeds = parse_request(body, signatures)
                definition = definitions[name]
                fetched = sess.run({key: info.name for key, info in definition.outputs.items()},
                                   {definition.inputs[key].name: value for key, value in feeds.items()})
                answers.append({"status": 200, "body": predictions_json(fetched)})
            except RestError as e:
                answers.append({"status": 400, "body": json.dumps({"error": str(e)})})
            except (tf.errors.OpError, ValueError, TypeError) as e:  # what the session refuses: HTTP 400 too
                message = e.message if isinstance(e, tf.errors.OpError) else str(e)
                answers.append({"status": 400, "body": json.dumps({"error": message})})
    return {"signatures": signatures, "answers": answers}


class ServingProcess:
    """`serve` in one long-lived subprocess (`python -m tests.test_serving_contract`), a model at a time:
    graph mode and the TF1 loader stay out of the pytest process, and TensorFlow is imported once."""

    def __init__(self, folder):
        self.folder, self.process, self.jobs = Path(folder), None, 0

    def serve(self, export_dir, bodies):
        """`serve(export_dir, bodies)`'s answer; fails the test if the loader (or the process) fails."""
        if self.process is None or self.process.poll() is not None:
            with open(self.folder / "stderr.txt", "w") as stderr:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "tests.test_serving_contract"], cwd=REPO, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        self.jobs += 1
        job, answer = self.folder / f"job-{self.jobs}.json", self.folder / f"answer-{self.jobs}.json"
        job.write_text(json.dumps({"export_dir": str(export_dir), "bodies": bodies, "answer": str(answer)}),
                       encoding="utf-8")
        self.process.stdin.write(f"{job}\n")
        self.process.stdin.flush()
        if not any(line.strip() == f"served {job}" for line in self.process.stdout):
            stderr = (self.folder / "stderr.txt").read_text(encoding="utf-8", errors="replace")
            pytest.fail(f"the serving subprocess died on {export_dir}:\n{stderr[-4000:]}", pytrace=False)
        result = json.loads(answer.read_text(encoding="utf-8"))
        if "error" in result:
            pytest.fail(f"TF Serving's loader (tf.compat.v1.saved_model.loader.load, tag 'serve') failed on "
                        f"{export_dir}:\n{result['error']}", pytrace=False)
        return result

    def close(self):
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def serve_jobs():
    """The subprocess's loop: a job file name a line on stdin -> `serve` -> the answer file, then `served JOB`."""
    import traceback

    for line in sys.stdin:
        job = json.loads(Path(line.strip()).read_text(encoding="utf-8"))
        try:
            result = serve(job["export_dir"], job["bodies"])
        except Exception:  # a model the loader cannot load: the test says why  # noqa: BLE001
            result = {"error": traceback.format_exc()}
        Path(job["answer"]).write_text(json.dumps(result), encoding="utf-8")
        print(f"served {line.strip()}", flush=True)


# === The README's REST examples ===

@functools.cache
def readme_examples(text=None):
    """The `curl` examples of the README's "Serving with TF Serving" section: dicts of `model`,
    `version` (None: the newest), `body` (the `-d` JSON, shell substitutions such as
    `$(base64 -w0 photo.jpg)` left in) and `answer` (the `# {"predictions": ...}` line after it, or None)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    parts = text.split("## Serving with TF Serving", 1)
    assert len(parts) == 2, "README.md has no \"## Serving with TF Serving\" section"
    section = parts[1].split("\n## ", 1)[0]
    examples = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", section, re.DOTALL):
        lines = block.replace("\\\n", " ").splitlines()
        for index, line in enumerate(lines):
            if not line.lstrip().startswith("curl "):
                continue
            words = shlex.split(line)
            flags = [i for i, w in enumerate(words) if w in ("-d", "--data", "--data-raw", "--data-binary")]
            urls = [w for w in words if w.startswith("http")]
            assert flags and urls, f"README: a curl line without -d BODY and a URL: {line}"
            body = words[flags[0] + 1]
            assert not body.startswith("@"), f"README: the body of {line!r} is in a file; write it in the line"
            match = re.fullmatch(r"https?://[^/]+/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", urls[0])
            assert match, f"README: {urls[0]} is not a TF Serving predict URL (/v1/models/NAME[/versions/N]:predict)"
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            answer = following[1:].strip() if following.startswith("# {") else None
            examples.append({"model": match.group(1), "version": match.group(2) and int(match.group(2)),
                             "body": body, "answer": answer})
    return tuple(examples)


def with_files(body, photo):
    """`body` with each `$(base64 -w0 FILE)` substitution replaced by the base64 of `photo`."""
    encoded = base64.b64encode(photo).decode("ascii")
    return re.sub(r"\$\(base64(?: -w ?0)? [^)\s]+\)", lambda _: encoded, body)


class Prefix(str):
    """A number the README writes with an elision, `0.97...`: what TF Serving writes must start with it."""


def readme_pattern(text):
    """A README answer line as JSON, where a number written `0.97...` becomes a `Prefix` and "..." stays a
    wildcard for any value."""
    def elide(match):
        return match.group(1) or json.dumps({"...": match.group(2)})

    pattern = json.loads(re.sub(r'("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?)\.\.\.', elide, text))

    def restore(value):
        if isinstance(value, dict) and list(value) == ["..."]:
            return Prefix(value["..."])
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        if isinstance(value, list):
            return [restore(v) for v in value]
        return value

    return restore(pattern)


def pattern_mismatches(actual, pattern, where="answer"):
    """Where `actual` (a parsed REST answer) differs from a README answer `pattern` (`readme_pattern`)."""
    if isinstance(pattern, Prefix):
        if isinstance(actual, (int, float)) and not isinstance(actual, bool):
            written = decimal_text(np.float32(actual))
            return [] if written.startswith(pattern) else [f"{where}: {written} does not start with {pattern}"]
        return [f"{where}: {actual!r} is not a number {pattern}..."]
    if pattern == "...":
        return []
    if isinstance(pattern, dict):
        if not isinstance(actual, dict) or set(actual) != set(pattern):
            keys = sorted(actual) if isinstance(actual, dict) else actual
            return [f"{where}: keys {keys!r}, README shows {sorted(pattern)}"]
        return [m for key in pattern for m in pattern_mismatches(actual[key], pattern[key], f"{where}.{key}")]
    if isinstance(pattern, list):
        if not isinstance(actual, list) or len(actual) != len(pattern):
            return [f"{where}: {json.dumps(actual)[:200]} is not {len(pattern)} values as the README shows"]
        return [m for i, (a, p) in enumerate(zip(actual, pattern)) for m in pattern_mismatches(a, p, f"{where}[{i}]")]
    if isinstance(pattern, float) and isinstance(actual, (int, float)):
        return [] if np.float32(actual) == np.float32(pattern) else [f"{where}: {actual}, README shows {pattern}"]
    return [] if actual == pattern else [f"{where}: {actual!r}, README shows {pattern!r}"]


# === Test inputs ===

@functools.cache
def photos(kind):
    """Two encoded photos for a model of `kind`: CIFAR-10 test JPEGs for image classifiers, Flickr8k test
    photos for captioners (from ../shared/data), or noisy colour squares made here when it is missing."""
    if kind == "image_classifier" and (SHARED_DATA / "cifar10" / "cifar10-jpeg.tar.gz").is_file():
        import tarfile

        with tarfile.open(SHARED_DATA / "cifar10" / "cifar10-jpeg.tar.gz") as tar:
            return tuple(tar.extractfile(f"cifar10/test/{name}/0000.jpg").read() for name in ("cat", "ship"))
    if kind == "captioner" and (SHARED_DATA / "flickr8k" / "Flickr8k_Dataset.zip").is_file():
        from toolkit.data.captions import load

        test = load(SHARED_DATA / "flickr8k")["test"]
        return tuple(test.read(name) for name in test.names[:2])
    return (encoded(image(40, 30, (210, 25, 25)), "JPEG"), encoded(image(24, 24, (30, 40, 200)), "JPEG"))


def image(width, height, rgb, seed=0):
    """A PIL image: a noisy square of one colour."""
    from PIL import Image

    noise = np.random.default_rng(seed).normal(0, 20, (height, width, 3))
    return Image.fromarray(np.clip(np.array(rgb) + noise, 0, 255).astype("uint8"))


def encoded(picture, format):
    import io

    buffer = io.BytesIO()
    picture.save(buffer, format=format)
    return buffer.getvalue()


def b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


def images(kind):
    """Rows of encoded images for a bytes signature: two photos, a grayscale PNG, and one row that is no image."""
    first, second = photos(kind)
    gray = encoded(image(20, 20, (90, 90, 90), seed=1).convert("L"), "PNG")
    return [first, second, NOT_AN_IMAGE, gray]


SENTENCES = ["A man in a blue shirt is riding a bike.", "Two dogs play in the snow.", "", "A dog runs on the beach.",
             "Über den Wolken ☃ 日本"]


# === What the API answers, as a REST row (`expect` functions) ===

def row_text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def row_bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else value


def error_like(api_error):
    """An `error` output: a message (not "") that the API's message for the same row contains."""
    def check(actual):
        if not isinstance(actual, str) or not actual or actual not in api_error:
            return f"{actual!r} is not an error message like the API's {api_error!r}"
    return check


def every(value):
    def check(actual):
        if not isinstance(actual, list) or any(item != value for item in actual):
            return f"{actual!r}: expected every value to be {value!r} (an unreadable image's row)"
    return check


def within(expected, tolerance):
    """Numbers (nested lists) within `tolerance` of `expected`, which may be cut from a longer padded answer:
    `actual` is cropped to `expected`'s shape first."""
    def check(actual):
        want = np.asarray(expected, np.float64)
        try:
            got = np.asarray(actual, np.float64)
            got = got[tuple(slice(0, n) for n in want.shape)] if got.ndim == want.ndim else got.reshape(want.shape)
        except (ValueError, TypeError):
            return f"{json.dumps(actual)[:200]} is not numbers of shape {want.shape}"
        if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=tolerance):
            worst = np.max(np.abs(got - want)) if got.shape == want.shape else "shape"
            return f"differs from the API's by {worst} (tolerance {tolerance})"
    return check


def padded(tokens):
    """A row of tokens: the API's, then only "" (a batch's rows are padded to its longest)."""
    def check(actual):
        if not isinstance(actual, list) or actual[:len(tokens)] != tokens or any(actual[len(tokens):]):
            return f"{actual!r} is not the API's {tokens!r} padded with \"\""
    return check


def attention_rows(expected, grid=None):
    """An attention output `[words(, sources)]`: its first rows (reshaped to `grid`) are the API's, which
    it rounds to 4 places."""
    def check(actual):
        if not expected:
            return None
        rows = np.asarray(actual, np.float64)[:len(expected)]
        if grid:
            rows = rows.reshape(len(expected), -1)[:, :int(np.prod(grid))].reshape(len(expected), *grid)
        return within(expected, ROUNDED_4)(rows.tolist())
    return check


def image_rows(answers, error):
    """The API's image classifier answers as REST rows: an `error` output if the signature has one."""
    rows = []
    for answer in answers:
        if "error" in answer:
            rows.append({"label": "", "probability": 0.0, "top_k_labels": every(""), "top_k_probabilities": every(0.0),
                         "error": error_like(answer["error"])})
            continue
        rows.append({"label": answer["label"], "probability": answer["probability"],
                     "top_k_labels": [t["label"] for t in answer["top_k"]],
                     "top_k_probabilities": [t["probability"] for t in answer["top_k"]]})
        if error:
            rows[-1]["error"] = ""
    return rows


def caption_row(answer, error, grid=None):
    """One of the API's captioner answers as a REST row."""
    if "error" in answer:
        return {"caption": "", "score": 0.0, "error": error_like(answer["error"])}
    row = {"caption": answer["caption"], "score": answer["score"], **({"error": ""} if error else {})}
    if "attention" in answer:
        row.update(tokens=padded(answer["tokens"]), attention=attention_rows(answer["attention"], grid))
    return row


def translation_row(answer):
    row = {"translation": answer["translation"], "score": answer["score"]}
    if "attention" in answer:
        row.update(source_tokens=padded(answer["source_tokens"]), target_tokens=padded(answer["target_tokens"]),
                   attention=attention_rows(answer["attention"]))
    return row


def forecast_rows(api, windows, gaussian):
    """Each window's REST row, twice: from `predict_windows` (the whole batch) and from `forecast` (that
    window alone, rounded to 4 places; its 95% interval gives the standard deviation)."""
    means, stddevs = api.predict_windows(np.asarray(windows, np.float64))
    rows = []
    for i, window in enumerate(windows):
        direct = {"forecast": within(means[i], TOLERANCE)}
        forecast = api.forecast(window, steps=len(means[i]))
        alone = {"forecast": within([r["forecast"] for r in forecast], ROUNDED_4)}
        if gaussian:
            direct["stddev"] = within(stddevs[i], TOLERANCE)
            alone["stddev"] = within([(r["upper_95"] - r["lower_95"]) / 3.92 for r in forecast], ROUNDED_4)
        rows.append([direct, alone])
    return rows


# === The contract of each kind: its signatures, their inputs and outputs, the API's answers, test rows ===

class Signature:
    """One signature of the contract: `inputs` and `outputs` {name: dtype}; `expect(api, rows)`, the API's
    answer to decoded rows ({input: value}) as REST rows; `rows`, the test rows (REST instances)."""

    def __init__(self, inputs, outputs, expect, rows):
        self.inputs, self.outputs, self.expect, self.rows = inputs, outputs, expect, rows


def contract(kind, metadata, api):
    """{signature name: Signature}: what an export of `kind` promises, and how to check it against `api`."""
    S, F, I = "DT_STRING", "DT_FLOAT", "DT_INT32"
    search = {"beam_size": I, "length_penalty": F}
    if kind == "text_classifier":
        outputs = {"value": F} if metadata.get("task") == "regression" else {"label": S, "probability": F}
        texts = ["A wonderful film.", "Dull and far too long.", "", b64("Ein großartiger Film ☃".encode()),
                 "great " * 1000]
        return {"serving_default": Signature(
            {"text": S}, outputs, lambda api, rows: api.predict([row_text(r["text"]) for r in rows]), texts)}

    if kind == "image_classifier":
        answer = {"label": S, "probability": F, "top_k_labels": S, "top_k_probabilities": F}
        pixels = [api.decode(photo).tolist() for photo in photos(kind)]
        noise = np.random.default_rng(2).integers(0, 256, tuple(metadata["image_shape"])).astype(float).tolist()
        return {
            "serving_default": Signature(
                {"image_bytes": S}, {**answer, "error": S},
                lambda api, rows: image_rows(api.predict([row_bytes(r["image_bytes"]) for r in rows]), error=True),
                [b64(data) for data in images(kind)]),
            "predict_pixels": Signature(
                {"pixels": F}, answer,
                lambda api, rows: image_rows(api.predict(np.asarray([r["pixels"] for r in rows], np.float32)),
                                             error=False),
                [*pixels, noise])}

    if kind == "captioner":
        answer = {"caption": S, "score": F}
        data = images(kind)
        pixels = [api.decode(photo).tolist() for photo in photos(kind)]
        grid = api.attention_grid

        def one_by_one(source, attention=False, error=False):
            def expect(api, rows):
                return [caption_row(api.caption([source(r)], beam_size=r["beam_size"],
                                                length_penalty=r["length_penalty"], attention=attention)[0],
                                    error, grid) for r in rows]
            return expect

        def bytes_of(row):
            return row_bytes(row["image_bytes"])

        def pixels_of(row):
            return np.asarray(row["pixels"], np.float32)

        return {
            "serving_default": Signature(
                {"image_bytes": S}, {**answer, "error": S},
                lambda api, rows: [caption_row(a, error=True) for a in api.caption([bytes_of(r) for r in rows])],
                [b64(d) for d in data]),
            "caption": Signature(
                {"image_bytes": S, **search}, {**answer, "error": S}, one_by_one(bytes_of, error=True),
                [{"image_bytes": b64(d), "beam_size": b, "length_penalty": p}
                 for d, b, p in zip(data + data[:1], (1, 3, 2, 2, 4), (0.0, 1.0, 0.5, 1.5, 2.0))]),
            "caption_pixels": Signature(
                {"pixels": F, **search}, answer, one_by_one(pixels_of),
                [{"pixels": p, "beam_size": b, "length_penalty": lp} for p, b, lp in zip(pixels, (2, 1), (1.0, 0.0))]),
            "caption_pixels_attention": Signature(
                {"pixels": F, **search}, {**answer, "attention": F, "tokens": S}, one_by_one(pixels_of, attention=True),
                [{"pixels": p, "beam_size": b, "length_penalty": lp} for p, b, lp in zip(pixels, (3, 1), (0.5, 1.0))])}

    if kind == "translator":
        answer = {"translation": S, "score": F}

        def one_by_one(attention=False):
            def expect(api, rows):
                return [translation_row(api.translate([row_text(r["text"])], beam_size=r["beam_size"],
                                                      length_penalty=r["length_penalty"], attention=attention)[0])
                        for r in rows]
            return expect

        return {
            "serving_default": Signature(
                {"text": S}, answer,
                lambda api, rows: [translation_row(a) for a in api.translate([row_text(r["text"]) for r in rows])],
                SENTENCES),
            "translate": Signature(
                {"text": S, **search}, answer, one_by_one(),
                [{"text": s, "beam_size": b, "length_penalty": p}
                 for s, b, p in zip(SENTENCES + SENTENCES[:1], (1, 5, 2, 3, 4, 3), (0.0, 1.0, 1.0, 0.5, 1.0, 2.0))]),
            "translate_attention": Signature(
                {"text": S, **search},
                {**answer, "attention": F, "source_tokens": S, "target_tokens": S}, one_by_one(attention=True),
                [{"text": s, "beam_size": b, "length_penalty": p}
                 for s, b, p in zip(SENTENCES[:2], (2, 1), (1.0, 0.5))])}

    if kind == "forecaster":
        from toolkit.tasks.forecasting import TrainConfig, load_series

        values = load_series(TrainConfig.from_settings(metadata["train"])).values
        window, gaussian = metadata["window"], metadata.get("gaussian", False)
        windows = [values[-window:].tolist(), values[:window].tolist(),
                   values[len(values) // 2:len(values) // 2 + window].tolist()]
        return {"serving_default": Signature(
            {"window": F}, {"forecast": F, **({"stddev": F} if gaussian else {})},
            lambda api, rows: forecast_rows(api, [r["window"] for r in rows], gaussian), windows)}
    raise AssertionError(f"no serving contract for models of kind {kind!r}: add one to `contract`")


# === Checking one model ===

def decoded_rows(instances, input_names):
    """REST instances as {input: value} rows, `{"b64": ...}` decoded to bytes (what `expect` reads)."""
    def decode(value):
        if _is_base64(value):
            return base64.b64decode(value["b64"] + "=" * (-len(value["b64"]) % 4))
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    if len(input_names) == 1 and not _is_named(instances[0]):
        return [{input_names[0]: decode(instance)} for instance in instances]
    return [{key: decode(value) for key, value in instance.items()} for instance in instances]


def mismatches(actual, expected, where):
    """Where a REST value differs from the API's: strings exactly, floats within TOLERANCE, a callable
    `expected` says what is wrong itself."""
    if callable(expected):
        problem = expected(actual)
        return [f"{where}: {problem}"] if problem else []
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            keys = sorted(actual) if isinstance(actual, dict) else actual
            return [f"{where}: outputs {keys!r}, expected {sorted(expected)}"]
        return [m for key in expected for m in mismatches(actual[key], expected[key], f"{where}.{key}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: {json.dumps(actual)[:200]}, the API answers {json.dumps(expected)[:200]}"]
        return [m for i, (a, e) in enumerate(zip(actual, expected)) for m in mismatches(a, e, f"{where}[{i}]")]
    if isinstance(expected, float):
        if not isinstance(actual, (int, float)) or not abs(actual - expected) <= TOLERANCE:
            return [f"{where}: {actual!r}, the API answers {expected!r} (tolerance {TOLERANCE})"]
        return []
    return [] if actual == expected else [f"{where}: {actual!r}, the API answers {expected!r}"]


def contract_problems(model, kind, signatures, promised):
    """The broken contracts of a model's signatures (from its SignatureDefs): (signature, line) pairs."""
    problems = []
    for name, signature in sorted(signatures.items()):
        for side in ("inputs", "outputs"):
            for key, (dtype, shape) in sorted(signature[side].items()):
                if not shape or shape[0] != -1:
                    problems.append((name, (
                        f"{model}: signature {name!r} {side[:-1]} {key!r} has shape {tuple(shape or ())}: every "
                        "signature must be batchable, each input and output with a leading batch dimension (-1): "
                        "TF Serving's REST rows are stacked along it and its batching merges requests along it")))
        if name not in promised:
            problems.append((name, (f"{model}: signature {name!r} has no contract here: add what it takes and "
                                    "answers to `contract` in tests/test_serving_contract.py")))
    for name, signature in promised.items():
        if name not in signatures:
            problems.append((name, (f"{model}: no signature {name!r}, which an export of kind {kind} has (its "
                                    f"signatures: {', '.join(sorted(signatures))}): export it again with this "
                                    "toolkit")))
            continue
        for side, want in (("inputs", signature.inputs), ("outputs", signature.outputs)):
            have = {key: dtype for key, (dtype, _) in signatures[name][side].items()}
            if have != want:
                problems.append((name, (f"{model}: signature {name!r} has {side} {dict(sorted(have.items()))}; "
                                        f"an export of kind {kind} has {dict(sorted(want.items()))}")))
    return problems


def check_model(model_dir, label, examples, tf_serving, readme_answers=True):
    """Serves the model in `model_dir` as TF Serving would and checks it against the Python API; returns a
    summary line per signature, and fails the test with every broken contract and wrong answer at once.

    `examples`: README examples for this model (`readme_examples`); their `answer`s are checked when
    `readme_answers` (the README's own models). A signature whose contract is broken is not asked.
    """
    import time

    import toolkit.tasks
    from toolkit.serving import read_metadata

    start = time.monotonic()
    metadata = read_metadata(model_dir)
    kind = metadata["kind"]
    api = toolkit.tasks.load(model_dir, runtime="tensorflow")  # the light path's parity: tests/test_lite.py
    promised = contract(kind, metadata, api)
    photo = photos(kind)[0]
    requests = []  # (signature name, body, README answer line or None, where)
    for number, example in enumerate(examples, 1):
        body = with_files(example["body"], photo)
        name = json.loads(body).get("signature_name", "serving_default")
        requests.append((name, body, example["answer"] if readme_answers else None, f"README example {number}"))
    for name, signature in promised.items():
        request = {"instances": signature.rows} if name == "serving_default" else {
            "signature_name": name, "instances": signature.rows}
        requests.append((name, json.dumps(request), None, "generated request"))

    served = tf_serving.serve(model_dir, [body for _, body, _, _ in requests])
    signatures = served["signatures"]
    problems = contract_problems(label, kind, signatures, promised)
    broken = {name for name, _ in problems}
    rows = {name: 0 for name in signatures}
    for (name, body, answer_line, where), answer in zip(requests, served["answers"]):
        where = f"{label} {name}, {where}"
        if name in broken:  # said once, by its contract
            continue
        response = json.loads(answer["body"])
        if answer["status"] != 200:
            problems.append((name, f"{where}: refused: {response['error']}"))
            continue
        instances = json.loads(body)["instances"]
        predictions = response["predictions"]
        if len(predictions) != len(instances):
            problems.append((name, f"{where}: {len(predictions)} predictions for {len(instances)} rows"))
            continue
        outputs = promised[name].outputs
        if len(outputs) == 1:  # TF Serving answers bare values for one output
            predictions = [{next(iter(outputs)): p} for p in predictions]
        expected = promised[name].expect(api, decoded_rows(instances, sorted(promised[name].inputs)))
        for i, (prediction, want) in enumerate(zip(predictions, expected)):
            for each in want if isinstance(want, list) else [want]:
                problems += [(name, m) for m in mismatches(prediction, each, f"{where}, row {i}")]
        if answer_line is not None:
            problems += [(name, (f"{where}: README.md shows another answer than the model gives: {m}\n"
                                 f"  the model answers: {answer['body'][:600]}"))
                         for m in pattern_mismatches(response, readme_pattern(answer_line))]
        rows[name] += len(instances)

    lines = []
    for name, signature in sorted(signatures.items()):
        outputs = ", ".join(f"{key} {dtype}{tuple(shape) if shape is not None else '(?)'}"
                            for key, (dtype, shape) in sorted(signature["outputs"].items()))
        verdict = "FAIL" if any(n == name for n, _ in problems) else "PASS"
        lines.append(f"{label} {name}: {rows[name]} rows; outputs {outputs}; {verdict}")
    lines.append(f"{label}: {len(requests)} requests served and checked in {time.monotonic() - start:.1f} s")
    print("\n" + "\n".join(lines))
    if problems:
        pytest.fail(f"{len(problems)} broken serving contract(s) of {label}:\n" + "\n".join(m for _, m in problems),
                    pytrace=False)
    return lines


# === Tests ===

def test_rest_format_mirrors_tf_serving():
    """The emulated parser and writer behave as json_tensor.cc on what the contract tests use."""
    text = {"serving_default": {"inputs": {"text": ["DT_STRING", [-1]]}}}
    decoder = {"caption": {"inputs": {"image_bytes": ["DT_STRING", [-1]], "beam_size": ["DT_INT32", [-1]],
                                      "length_penalty": ["DT_FLOAT", [-1]]}},
               "pixels": {"inputs": {"pixels": ["DT_FLOAT", [-1, 2, 2]]}}}

    name, feeds = parse_request('{"instances": ["good", {"b64": "Ym9v"}, {"b64": "YQ=="}]}', text)
    assert name == "serving_default" and feeds["text"].tolist() == [b"good", b"boo", b"a"]
    assert parse_request('{"instances": [{"text": "named"}]}', text)[1]["text"].tolist() == [b"named"]
    body = {"signature_name": "caption", "instances": [{"image_bytes": {"b64": "AAE="}, "beam_size": 3,
                                                        "length_penalty": 1}, {"image_bytes": "x", "beam_size": 1,
                                                                               "length_penalty": 0.5}]}
    _, feeds = parse_request(json.dumps(body), decoder)
    assert feeds["beam_size"].dtype == np.int32 and feeds["beam_size"].tolist() == [3, 1]
    assert feeds["length_penalty"].tolist() == [1.0, 0.5] and feeds["image_bytes"].tolist() == [b"\0\1", b"x"]
    _, feeds = parse_request('{"signature_name": "pixels", "instances": [[[1, 2], [3, 4.5]]]}', decoder)
    assert feeds["pixels"].shape == (1, 2, 2) and feeds["pixels"].dtype == np.float32

    refused = [
        ('{"instances": []}', text, "No values"),
        ('{"inputs": ["a"]}', text, "columnar"),
        ('{"signature_name": "nope", "instances": ["a"]}', text, "not found in signature def"),
        ('{"instances": [1]}', text, "is not of expected type: string"),
        ('{"instances": [{"b64": "%%%"}]}', text, "Unable to base64 decode"),
        ('{"signature_name": "caption", "instances": ["a"]}', decoder, "expecting list of objects"),
        ('{"signature_name": "caption", "instances": [{"image_bytes": "a", "beam_size": 1.0, "length_penalty": 1}]}',
         decoder, "is not of expected type: int32"),
        ('{"signature_name": "caption", "instances": [{"image_bytes": "a", "beam_size": 1}]}', decoder,
         "keys must be equal to"),
        ('{"signature_name": "pixels", "instances": [[[1, 2], [3]]]}', decoder, "unexpected size"),
        ('{"signature_name": "pixels", "instances": [[[1, 2], [3, 4]], [[1, 2, 3], [4, 5, 6]]]}', decoder,
         "Expecting shape"),
        ('{"signature_name": "pixels", "instances": [[[1, 2], [3, 16777216]]]}', decoder, "without loss of precision"),
    ]
    for body, signatures, message in refused:
        with pytest.raises(RestError, match=re.escape(message)):
            parse_request(body, signatures)

    answer = predictions_json({"label": np.array([b"pos", b"neg"], object), "probability": np.float32([0.5, 0.1]),
                               "top": np.float32([[1, 3e-5], [2.5, 1e7]])})
    assert answer == ('{"predictions": [{"label": "pos", "probability": 0.5, "top": [1.0, 3e-05]}, '
                      '{"label": "neg", "probability": 0.1, "top": [2.5, 1e+07]}]}')
    assert predictions_json({"value": np.float32([0.25, np.nan])}) == '{"predictions": [0.25, NaN]}'
    assert json.loads(predictions_json({"image_bytes": np.array([b"\xff"], object)}))["predictions"] == [
        {"b64": "/w=="}]
    with pytest.raises(RestError, match="no shape information"):
        predictions_json({"beam": np.int32(3), "caption": np.array([b"a"], object)})
    with pytest.raises(RestError, match="inconsistent batch size"):
        predictions_json({"a": np.float32([1, 2]), "b": np.float32([1])})

    pattern = readme_pattern('{"predictions": [{"label": "pos", "probability": 0.97...}, "...", -1.5...]}')
    assert pattern_mismatches(json.loads('{"predictions": [{"label": "pos", "probability": 0.9712}, [1, 2], '
                                         '-1.52]}'), pattern) == []
    assert pattern_mismatches({"predictions": [{"label": "pos", "probability": 0.961}, 0, -1.5]}, pattern)
    assert pattern_mismatches({"predictions": [{"label": "neg", "probability": 0.97}, 0, -1.5]}, pattern)


def test_readme_rest_examples_address_the_shipped_models():
    """Each curl example of the README names a shipped model (and a version TF Serving serves: the newest)
    and sends JSON once its `$(base64 ...)` substitutions are made."""
    from toolkit.serving import model_versions

    for example in readme_examples():
        assert (SHIPPED / example["model"]).is_dir(), f"README: no shipped model {example['model']!r}"
        newest = model_versions(SHIPPED / example["model"])[0]
        assert example["version"] in (None, newest), (
            f"README: /versions/{example['version']} of {example['model']}, but TF Serving's default version "
            f"policy serves only the newest, {newest}")
        body = json.loads(with_files(example["body"], b"photo"))
        assert isinstance(body.get("instances"), list) and body["instances"], f"README: no instances in {body}"
        if example["answer"] is not None:
            assert "predictions" in readme_pattern(example["answer"]), example["answer"]


@pytest.fixture(scope="module")
def tf_serving(tmp_path_factory):
    """The serving subprocess, shared by this module's tests."""
    process = ServingProcess(tmp_path_factory.mktemp("tf_serving"))
    yield process
    process.close()


@pytest.fixture(scope="module")
def tiny_forecaster(tmp_path_factory):
    """A tiny forecaster of a daily toy series, trained for two epochs and exported as MODELS/toy_series/1."""
    from toolkit.tasks.forecasting import TrainConfig, export_run, train

    root = tmp_path_factory.mktemp("serving_forecaster")
    t = np.arange(200)
    values = 10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 7)
    days = np.datetime64("2020-01-01") + t
    (root / "series.csv").write_text("day,sales\n" + "\n".join(f"{d},{v:.4f}" for d, v in zip(days, values)) + "\n")
    train(TrainConfig(csv=str(root / "series.csv"), window=8, horizon=4, units=4, epochs=2, patience=2,
                      batch_size=16), root / "run")
    export_run(root / "run", root / "models", "toy_series", 1)
    return root / "models" / "toy_series"


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_image_model", "tiny_translator", "tiny_captioner",
                                     "tiny_forecaster"])
def test_fixture_models_keep_the_serving_contract(fixture, request, tf_serving):
    """The export code of this working tree keeps the contract: tiny models of every kind, exported now, fed
    the generated requests and the README's examples for the shipped model of their kind (whose answers
    are not theirs to give)."""
    import toolkit.tasks
    from toolkit.serving import read_metadata, resolve_model_dir

    model_dir = resolve_model_dir(request.getfixturevalue(fixture))
    shipped = toolkit.tasks.TASKS[read_metadata(model_dir)["kind"]].SHIPPED_MODEL
    examples = [e for e in readme_examples() if e["model"] == shipped]
    check_model(model_dir, f"{fixture} ({model_dir.parent.name}/{model_dir.name})", examples, tf_serving,
                readme_answers=False)


def shipped_models():
    return sorted(p.name for p in SHIPPED.iterdir() if p.is_dir() and any(v.name.isdigit() for v in p.iterdir()))


@pytest.mark.parametrize("name", shipped_models())
def test_shipped_models_keep_the_serving_contract(name, tf_serving):
    """The newest version of every shipped model, served as TF Serving serves it, answers the README's
    examples (with the answers the README shows) and the generated requests as the Python API does."""
    from toolkit.serving import resolve_model_dir

    model_dir = resolve_model_dir(SHIPPED / name)
    examples = [e for e in readme_examples() if e["model"] == name]
    check_model(model_dir, f"{name}/{model_dir.name}", examples, tf_serving)


if __name__ == "__main__":  # the subprocess of `ServingProcess`
    serve_jobs()
