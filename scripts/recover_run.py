"""Rebuilds a training-run folder from a model that `toolkit export` wrote, so that the same weights
can be exported again through the current serving code (new signatures, same answers). A migration
tool: version 2 of the shipped models was made with it from version 1 (their cards say so); it is
kept, and tested, so the next change of the serving contract can do the same.

    python scripts/recover_run.py saved_models/cifar10_resnet/1 /tmp/recover/runs/cifar10_resnet
    toolkit export /tmp/recover/runs/cifar10_resnet --name cifar10_resnet --to /tmp/recover/out

A run folder is what `toolkit export` reads (`toolkit.training.read_run`, each task's `export_run`):
config.json (the kind, the facts about the data that the export reads, the training settings),
metrics.json, best.keras and the task's own files (tokenizers, a frozen encoder's weights). The
export kept all of it, in three places:

- its metadata (`assets.extra/toolkit.json`): the kind, the settings (`train`), the test metrics
  and the facts (class names, image shape, languages);
- its variables: every weight, named by its Keras path plus ":0" (`stem_conv/kernel:0`);
- its graph: what the serving code baked in as constants: a captioner's words, a translator's
  SentencePiece models (source: the one its tokenizing op reads; target: the one its detokenizing
  op reads), an image classifier's pixel mean and variance.

The model is rebuilt by the task's own build function from the settings, saved and loaded back
(the export loads best.keras, and a loaded model's variable paths are the ones it saw), and every
weight is assigned from the SavedModel by path: each exactly once, with its shape, or nothing is
written. A path differs only where Keras named a layer itself (a `Bidirectional`'s `forward_gru`
is `forward_gru_3` when two GRUs were made before it in the training process): such names are
mapped by their stem (`auto_name_mapping`). The run folder is written to a temporary folder,
checked by loading best.keras back, and renamed into place.

Supported kinds: image_classifier, translator (one run, SentencePiece tokenizers), captioner,
forecaster, and text_classifier, one run or an ensemble: its members' variables share their names,
and are told apart by the ops that read them (`ensemble_parts`); each member becomes a run folder
inside RUN_DIR, named as in the metadata (`member1`, ... where those names repeat), and
`toolkit export RUN_DIR/<member> ... --name NAME` exports the ensemble again (members in the order printed).
"""

import argparse
import collections
import dataclasses
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python scripts/recover_run.py` from anywhere
    sys.path.insert(0, str(REPO))

from toolkit.errors import ToolkitError

RECOVERED_FROM = "recovered_from"  # the config.json fact naming the export a run was rebuilt from
_UID = re.compile(r"^(.*?)(?:_(\d+))?$")  # a name Keras or TensorFlow made unique: (stem, number or None)


# === The exported model: metadata, variables, graph ===

class SavedGraph:
    """The graph of a SavedModel as protocol buffers: its functions' nodes and what their captured inputs are bound to.

    A function's captured inputs (variables, constants, resources such as a SentencePiece model) are
    its last arguments; the object graph lists, per saved function, the objects bound to them.
    """

    def __init__(self, model_dir):
        from tensorflow.core.protobuf import saved_model_pb2

        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((Path(model_dir) / "saved_model.pb").read_bytes())
        meta_graph = proto.meta_graphs[0]
        self.graph_def = meta_graph.graph_def
        self.objects = meta_graph.object_graph_def
        self.functions = {f.signature.name: f for f in self.graph_def.library.function}
        self.top_level = {node.name: node for node in self.graph_def.node}
        self.model_dir = Path(model_dir)
        self._checkpoint = None

    def nodes(self):
        """(function name, or None for the top-level graph; NodeDef) of every node."""
        for node in self.graph_def.node:
            yield None, node
        for name, function in self.functions.items():
            for node in function.node_def:
                yield name, node

    def bound_object(self, function_name, source):
        """The object graph node bound to the input `source` of a node in `function_name` (an argument that
        is a captured input, followed through the calls of nested functions), or None."""
        if ":" in source or source.startswith("^"):
            return None  # another node's output, not an argument
        arguments = [arg.name for arg in self.functions[function_name].signature.input_arg]
        if source not in arguments:
            return None
        index = arguments.index(source)
        saved = self.objects.concrete_functions.get(function_name)
        if saved is not None and saved.bound_inputs:
            bound = list(saved.bound_inputs)
            position = index - (len(arguments) - len(bound))
            if position >= 0:
                return self.objects.nodes[bound[position]]
        for caller, node in self.nodes():
            if caller is not None and "f" in node.attr and node.attr["f"].func.name == function_name:
                inputs = [i for i in node.input if not i.startswith("^")]
                found = self.bound_object(caller, inputs[index])
                if found is not None:
                    return found
        return None

    def value(self, function_name, source):
        """The constant value of the input `source` of a node in `function_name`: a Const node there, or a
        captured constant; None for anything else."""
        from tensorflow.python.framework import tensor_util

        if ":" in source:
            node = {n.name: n for n in self.functions[function_name].node_def}.get(source.split(":")[0])
            if node is not None and node.op == "Const":
                return tensor_util.MakeNdarray(node.attr["value"].tensor)
            return None
        bound = self.bound_object(function_name, source)
        if bound is None or bound.WhichOneof("kind") != "constant":
            return None
        return tensor_util.MakeNdarray(self.top_level[bound.constant.operation].attr["value"].tensor)

    def variable_value(self, node_id):
        """The value of the variable at object graph node `node_id`, read from the checkpoint (whose object
        graph numbers its nodes as the SavedModel's does)."""
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        if self._checkpoint is None:
            import tensorflow as tf

            reader = tf.train.load_checkpoint(str(self.model_dir / "variables" / "variables"))
            graph = trackable_object_graph_pb2.TrackableObjectGraph()
            graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
            self._checkpoint = reader, graph
        reader, graph = self._checkpoint
        (key,) = [a.checkpoint_key for a in graph.nodes[node_id].attributes if a.name == "VARIABLE_VALUE"]
        return reader.get_tensor(key)

    def captures_by_scope(self):
        """{first name scope of the nodes that use it: {object graph node id of a captured variable or resource}}.

        A model called inside a traced function names its ops after itself (`text_classifier_3/...`,
        numbered in the order of the calls), so this tells apart the variables of models built by one
        function, which carry the same names."""
        scopes = collections.defaultdict(set)
        for name, function in self.functions.items():
            saved = self.objects.concrete_functions.get(name)
            if saved is None or not saved.bound_inputs:
                continue
            arguments = [arg.name for arg in function.signature.input_arg]
            bound = dict(zip(arguments[len(arguments) - len(saved.bound_inputs):], saved.bound_inputs))
            for node in function.node_def:
                if node.op in ("PartitionedCall", "StatefulPartitionedCall") or "/" not in node.name:
                    continue  # a signature's wrapper passes everything on to the function it calls
                for source in node.input:
                    if source in bound:
                        scopes[node.name.split("/")[0]].add(bound[source])
        return scopes

    def resource_op(self, resource, op, child="_create_resource"):
        """The node of type `op` in the function that creates `resource` (an object graph node), or None."""
        if resource is None or resource.WhichOneof("kind") != "resource":
            return None
        for reference in resource.children:
            if reference.local_name != child:
                continue
            creator = self.objects.nodes[reference.node_id]
            names = (list(creator.function.concrete_functions) if creator.WhichOneof("kind") == "function"
                     else [creator.bare_concrete_function.concrete_function_name])
            for name in names:
                for node in self.functions[name].node_def:
                    if node.op == op:
                        return name, node
        return None


@dataclasses.dataclass
class Exported:
    """What an exported model holds: `metadata`, `variables` ({Keras path: numpy array}), `graph` (`SavedGraph`)."""

    model_dir: Path
    metadata: dict
    variables: dict
    graph: SavedGraph

    @property
    def kind(self):
        return self.metadata["kind"]


def read_export(model_dir):
    """The `Exported` of a version folder (or a model folder: its newest version) written by `toolkit export`."""
    from toolkit.runtime import import_tensorflow
    from toolkit.serving import model_kind, read_metadata
    from toolkit.tasks import task_for_kind

    kind, model_dir = model_kind(model_dir)
    task = task_for_kind(kind, f"the model in {model_dir}")
    tf = import_tensorflow()
    for module in task.PREDICTOR.op_libraries:  # custom ops the graph needs (TF Text's SentencePiece)
        __import__(module)
    graph = SavedGraph(model_dir)
    if kind == "text_classifier":  # possibly an ensemble: its members' variables are read apart (`ensemble_parts`)
        return Exported(model_dir, read_metadata(model_dir), {}, graph)
    loaded = tf.saved_model.load(str(model_dir))
    return Exported(model_dir, read_metadata(model_dir), saved_variables(loaded), graph)


def saved_variables(loaded):
    """{Keras path: numpy array} of the variables captured by a loaded SavedModel's signatures.

    Several variables of one name (the members of an ensemble, built by one function) cannot be
    told apart by name: ToolkitError naming them.
    """
    by_name = collections.defaultdict(dict)
    for signature in loaded.signatures.values():
        for variable in signature.variables:
            by_name[variable.name.removesuffix(":0")][id(variable)] = variable
    shared = sorted(name for name, variables in by_name.items() if len(variables) > 1)
    if shared:
        raise ToolkitError(f"{len(shared)} variable names stand for several variables each ({_some(shared)}): "
                           "an ensemble's members, which only text classifiers' recovery tells apart")
    return {name: next(iter(variables.values())).numpy() for name, variables in by_name.items()}


def _some(items, count=5):
    items = list(items)
    return ", ".join(items[:count]) + (f" and {len(items) - count} more" if len(items) > count else "")


def _one(candidates, what, model_dir):
    """The one value all of `candidates` (a list) agree on; ToolkitError if there is none or they differ."""
    distinct = []
    for candidate in candidates:
        if not any(_same(candidate, seen) for seen in distinct):
            distinct.append(candidate)
    if not distinct:
        raise ToolkitError(f"no {what} in the graph of {model_dir}")
    if len(distinct) > 1:
        raise ToolkitError(f"{len(distinct)} different {what}s in the graph of {model_dir}")
    return distinct[0]


def _same(a, b):
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b)))
    return a == b


# === What the serving graphs baked in ===

def pixel_moments(exported):
    """(pixel mean, pixel variance) per channel of an image classifier: the constants its `standardize`
    layer (`toolkit.layers.heads.pixel_input`) subtracts and takes the square root of."""
    means, variances = [], []
    scope = re.compile(r"(^|/)standardize(_\d+)?/(Sub|Sqrt)$")
    for function, node in exported.graph.nodes():
        match = scope.search(node.name)
        if function is None or not match:
            continue
        if match.group(3) == "Sub":
            means.append(exported.graph.value(function, node.input[1]))
        else:
            variances.append(exported.graph.value(function, node.input[0]))
    if any(v is None for v in means + variances):
        raise ToolkitError(f"the standardize layer of {exported.model_dir} reads something that is no constant")
    mean = _one(means, "pixel mean", exported.model_dir)
    variance = _one(variances, "pixel variance", exported.model_dir)
    return [float(v) for v in mean.ravel()], [float(v) for v in variance.ravel()]


def caption_words(exported):
    """A captioner's vocabulary: the string constant its `WordTokenizer.decode` gathers words from
    (the first entries are `RESERVED`)."""
    from tensorflow.core.framework import types_pb2

    from toolkit.preprocessing.sequences import RESERVED

    reserved = [w.encode("utf-8") for w in RESERVED]
    candidates = []
    for _, node in exported.graph.nodes():
        if node.op != "Const":
            continue
        tensor = node.attr["value"].tensor
        if tensor.dtype == types_pb2.DT_STRING and list(tensor.string_val[:4]) == reserved:
            candidates.append(tuple(s.decode("utf-8") for s in tensor.string_val))
    return list(_one(candidates, "vocabulary", exported.model_dir))


SENTENCEPIECE_ROLES = {"SentencepieceTokenizeOp": "source", "SentencepieceDetokenizeOp": "target"}


def sentencepiece_models(exported):
    """{"source": proto, "target": proto}: the SentencePiece model of the resource that the graph's
    tokenizing op reads (the source side) and of the one its detokenizing op reads (the target side)."""
    found = {"source": [], "target": []}
    for function, node in exported.graph.nodes():
        if function is None or node.op not in SENTENCEPIECE_ROLES:
            continue
        resource = exported.graph.bound_object(function, node.input[0])
        creator = exported.graph.resource_op(resource, "SentencepieceOp")
        if creator is None:
            raise ToolkitError(f"cannot tell which SentencePiece model {node.name} in {exported.model_dir} reads")
        found[SENTENCEPIECE_ROLES[node.op]].append(creator[1].attr["model"].s)
    return {role: _one(protos, f"{role} SentencePiece model", exported.model_dir) for role, protos in found.items()}


def forecast_scale(exported):
    """The `scale` of a forecaster: what `scale_windows` divides `window - window[:, -1:]` by."""
    candidates = []
    for function, node in exported.graph.nodes():
        if function is None or node.op != "RealDiv":
            continue
        nodes = {n.name: n for n in exported.graph.functions[function].node_def}
        dividend = nodes.get(node.input[0].split(":")[0])
        arguments = {arg.name for arg in exported.graph.functions[function].signature.input_arg}
        if dividend is not None and dividend.op == "Sub" and dividend.input[0] in arguments:
            last = nodes.get(dividend.input[1].split(":")[0])
            if last is not None and last.op == "StridedSlice" and last.input[0] == dividend.input[0]:
                candidates.append(exported.graph.value(function, node.input[1]))
    if any(c is None or c.size != 1 for c in candidates):
        raise ToolkitError(f"the window scale of {exported.model_dir} is no constant number")
    return float(_one(candidates, "window scale", exported.model_dir))


def lookup_vocabulary(exported, table):
    """The tokens of a `TextVectorization`'s lookup `table` (an object graph node), in id order: the keys its
    initializer imports, ordered by their values (the ids, from 2: 0 is padding, 1 the unknown word)."""
    import numpy as np

    found = exported.graph.resource_op(table, "LookupTableImportV2", child="_initialize")
    if found is None:
        raise ToolkitError(f"a lookup table of {exported.model_dir} has no initializer that imports its words")
    function, node = found
    keys, ids = exported.graph.value(function, node.input[1]), exported.graph.value(function, node.input[2])
    if keys is None or ids is None:
        raise ToolkitError(f"a lookup table of {exported.model_dir} imports words that are no constants")
    order = np.argsort(ids)
    if not np.array_equal(ids[order], np.arange(2, 2 + len(ids))):
        raise ToolkitError(f"a lookup table of {exported.model_dir} does not number its words 2, 3, ...")
    return [k.decode("utf-8") for k in keys[order]]


def ensemble_parts(exported, model_name, vectorizer_name):
    """[({Keras path: value}, [tokens]) per member, in the order the serving function calls them]: the variables
    and the vectorizer's vocabulary of each model that an ensemble (`text_classifier_archive`) averages.

    Each member's ops are named after its model (`text_classifier_1`, `text_classifier_3`, ...) and its
    vectorizer (`text_vectorizer_1`, ...), numbered in call order, which is the order of the metadata's
    `ensemble`."""
    graph = exported.graph
    captures = graph.captures_by_scope()

    def members(name):
        scopes = [(int(number) if number else 0, scope) for scope in captures
                  for stem, number in [_UID.match(scope).groups()] if stem == name]
        return [captures[scope] for _, scope in sorted(scopes)]

    models, vectorizers = members(model_name), members(vectorizer_name)
    if len(models) != len(vectorizers):
        raise ToolkitError(f"{exported.model_dir} calls {len(models)} models but {len(vectorizers)} vectorizers")
    parts = []
    for variables, tables in zip(models, vectorizers):
        tables = [graph.objects.nodes[i] for i in tables if graph.objects.nodes[i].WhichOneof("kind") == "resource"]
        if len(tables) != 1:
            raise ToolkitError(f"a vectorizer of {exported.model_dir} reads {len(tables)} lookup tables")
        values, problems = {}, []
        for node_id in sorted(variables):
            node = graph.objects.nodes[node_id]
            if node.WhichOneof("kind") != "variable":
                continue
            if node.variable.name in values:
                problems.append(node.variable.name)
            values[node.variable.name] = graph.variable_value(node_id)
        if problems:
            raise ToolkitError(f"one model of {exported.model_dir} has several variables named {_some(problems)}")
        parts.append((values, lookup_vocabulary(exported, tables[0])))
    return parts


# === Weights: Keras paths of the rebuilt model <- variables of the export ===


def auto_name_mapping(model_paths, saved_paths):
    """{model path: saved path} for paths that differ only in a name Keras made up (`forward_gru` vs `forward_gru_3`).

    Keras names an unnamed layer after its class, numbered by how many of that name the process
    made before (`gru`, `gru_1`, ...; a `Bidirectional` copies it as `forward_gru`). A model built
    in another process can get another number. Unmatched paths are grouped by their first
    component; a group of the model and one of the export correspond when the component has the same
    stem (the name without its number) and the groups hold the same rest of paths. Where one stem has
    several groups on each side, numbers increase in the order the build function made the layers on
    both sides, and the groups are paired in that order.
    """
    unmatched_model = sorted(set(model_paths) - set(saved_paths))
    unmatched_saved = sorted(set(saved_paths) - set(model_paths))

    def groups(paths):
        by_first = collections.defaultdict(list)
        for path in paths:
            first, _, rest = path.partition("/")
            by_first[first].append(rest)
        by_stem = collections.defaultdict(list)
        for first, rests in by_first.items():
            stem, number = _UID.match(first).groups()
            by_stem[stem, tuple(sorted(rests))].append((int(number) if number else -1, first))
        return {key: [first for _, first in sorted(firsts)] for key, firsts in by_stem.items()}

    saved_groups = groups(unmatched_saved)
    mapping = {}
    for key, model_firsts in groups(unmatched_model).items():
        saved_firsts = saved_groups.get(key, [])
        if len(saved_firsts) != len(model_firsts):
            continue  # left unmatched: reported by `assign_weights`
        for model_first, saved_first in zip(model_firsts, saved_firsts):
            for rest in key[1]:
                mapping[f"{model_first}/{rest}"] = f"{saved_first}/{rest}"
    return mapping


def match_weights(weights, saved, complete=True):
    """[(weight, saved path)] pairing every Keras variable of `weights` with the saved variable of its path
    (`auto_name_mapping` where Keras named a layer itself); ToolkitError listing every weight without
    one or of another shape, every saved variable claimed twice and, if `complete`, left over."""
    by_path = collections.defaultdict(list)
    for weight in weights:
        by_path[weight.path].append(weight)
    problems = [f"{path}: {len(ws)} weights of this path in the rebuilt model" for path, ws in by_path.items()
                if len(ws) > 1]
    renamed = auto_name_mapping(by_path, saved)
    pairs, used = [], collections.Counter()
    for path, (weight, *_) in by_path.items():
        name = path if path in saved else renamed.get(path)
        if name is None:
            problems.append(f"{path} {tuple(weight.shape)}: not in the export")
            continue
        used[name] += 1
        if tuple(weight.shape) != tuple(saved[name].shape):
            problems.append(f"{path}: shape {tuple(weight.shape)} here, {tuple(saved[name].shape)} in the export")
        pairs.append((weight, name))
    problems += [f"{name}: matched {n} times" for name, n in used.items() if n > 1]
    if complete:
        problems += [f"{name} {tuple(saved[name].shape)}: in the export, not in the rebuilt model"
                     for name in sorted(set(saved) - set(used))]
    if problems:
        raise ToolkitError(f"the rebuilt model does not fit the export's {len(saved)} variables "
                           f"({len(problems)} problems):\n  " + "\n  ".join(problems))
    return pairs


def assign_weights(weights, saved):
    """Assigns every Keras variable of `weights` its saved value (`match_weights`); returns the pairs."""
    pairs = match_weights(weights, saved)
    for weight, name in pairs:
        weight.assign(saved[name])
    return pairs


def as_loaded(model):
    """`model` saved as a .keras file and loaded back, as the export loads best.keras: a loaded model's
    variable paths are those of its layers' names alone (`forward_gru/...`), a built one's can carry the
    scope it was built in (`encoder_1/forward_gru/...`)."""
    import keras

    with tempfile.TemporaryDirectory(prefix="recover-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return keras.saving.load_model(path, compile=False)


def check_weights(weights, saved):
    """ToolkitError unless every weight (Keras variables) equals its saved value bit for bit."""
    import numpy as np

    differ = [weight.path for weight, name in match_weights(weights, saved, complete=False)
              if not np.array_equal(np.asarray(weight.numpy()), saved[name])]
    if differ:
        raise ToolkitError(f"{len(differ)} weights read back other values than the export's: {_some(differ)}")


# === Writing the run folder ===

def write_run(exported, run_dir, facts, model, write_files=None, extra_weights=()):
    """Writes RUN_DIR: config.json (`facts` and the export's settings), metrics.json, best.keras (`model`
    with every weight assigned from the export), and what `write_files(folder)` writes.

    `extra_weights`: Keras variables kept outside best.keras (a frozen encoder's, written by
    `write_files`), matched against the export together with the model's. Written to a temporary
    folder, read back and checked, then renamed into place; RUN_DIR must not hold anything yet.
    """
    from toolkit import training
    from toolkit.atomic import atomic_path, write_json

    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ToolkitError(f"{run_dir} already exists and is not empty; give a new folder")
    model = as_loaded(model)
    assign_weights(list(model.weights) + list(extra_weights), exported.variables)
    metadata = exported.metadata
    recovered = {"model": str(Path(exported.model_dir).resolve()), "exported_at": metadata.get("exported_at"),
                 "toolkit_version": metadata.get("toolkit_version")}
    with atomic_path(run_dir) as folder:
        folder.mkdir()
        write_json(folder / training.CONFIG_FILE, {"kind": exported.kind, **facts, "train": metadata["train"],
                                                   RECOVERED_FROM: recovered, "command": sys.argv})
        if metadata.get("metrics") is not None:
            write_json(folder / training.METRICS_FILE, metadata["metrics"])
        model.save(folder / training.BEST_MODEL)
        if write_files is not None:
            write_files(folder)
        check_weights(training.load_best(folder).weights, exported.variables)  # as the export will read it
    return run_dir


# === One function per kind ===

def recover_image_classifier(exported, run_dir):
    """An image classifier: `build_model` from the settings, the class names and image shape of the
    metadata and the pixel mean and variance of the graph."""
    from toolkit.tasks import image_classification as task

    metadata = exported.metadata
    config = task.TrainConfig.from_settings(metadata["train"])
    mean, variance = pixel_moments(exported)
    model = task.build_model(config, len(metadata["class_names"]), tuple(metadata["image_shape"]), mean, variance)
    facts = {"class_names": metadata["class_names"], "image_shape": metadata["image_shape"], "pixel_mean": mean,
             "pixel_variance": variance}
    return write_run(exported, run_dir, facts, model)


def recover_translator(exported, run_dir):
    """A translator: `build_translator` from the settings and the vocabulary sizes of the SentencePiece
    models found in the graph, which are saved as the run's tokenizers."""
    from toolkit.models.translator import build_translator
    from toolkit.preprocessing.sequences import SubwordTokenizer
    from toolkit.tasks import translation as task

    metadata = exported.metadata
    settings = metadata.get("train") or {}
    if settings.get("tokenizer", "sentencepiece") != "sentencepiece":
        raise ToolkitError(f"{exported.model_dir} uses {settings['tokenizer']!r} tokenizers; only SentencePiece "
                           "translators can be recovered")
    config = task.TrainConfig.from_settings(settings)
    protos = sentencepiece_models(exported)
    tokenizers = {side: SubwordTokenizer(proto) for side, proto in protos.items()}
    model = build_translator(tokenizers["source"].vocabulary_size, tokenizers["target"].vocabulary_size,
                             **config.model_settings())
    facts = {"source_language": metadata.get("source_language"), "target_language": metadata.get("target_language")}

    def write_files(folder):
        for side, tokenizer in tokenizers.items():
            tokenizer.save(folder, side)

    return write_run(exported, run_dir, facts, model, write_files)


def recover_captioner(exported, run_dir):
    """A captioner: its words from the graph, `build_captioner` from the settings; a frozen encoder
    (rebuilt by `build_image_encoder`) gets its weights from the export too, kept in ENCODER_WEIGHTS."""
    from toolkit.models.captioner import build_captioner
    from toolkit.models.image_encoders import build_image_encoder, is_frozen
    from toolkit.preprocessing.sequences import WordTokenizer
    from toolkit.tasks import captioning as task

    metadata = exported.metadata
    config = task.TrainConfig.from_settings(metadata["train"])
    tokenizer = WordTokenizer(caption_words(exported))
    encoder = build_image_encoder(config.encoder, config.image_size, weights=None)
    if is_frozen(config.encoder):
        model = build_captioner(tokenizer.vocabulary_size, feature_shape=encoder.output_shape[1:],
                                **config.model_settings())
        extra_weights = encoder.weights
    else:
        model = build_captioner(tokenizer.vocabulary_size, encoder=encoder, **config.model_settings())
        extra_weights = ()

    def write_files(folder):
        tokenizer.save(folder, "caption")
        if extra_weights:
            encoder.save_weights(folder / task.ENCODER_WEIGHTS)
            rebuilt = build_image_encoder(config.encoder, config.image_size, weights=None)
            rebuilt.load_weights(folder / task.ENCODER_WEIGHTS)  # as the export reads it
            check_weights(rebuilt.weights, exported.variables)

    return write_run(exported, run_dir, {}, model, write_files, extra_weights)


def recover_forecaster(exported, run_dir):
    """A forecaster: `build_forecaster` from the settings; the window scale from the graph (the exact one the
    run computed where its series can be read again and agrees with the graph's float32)."""
    import numpy as np

    from toolkit.models.forecaster import build_forecaster
    from toolkit.tasks import forecasting as task

    metadata = exported.metadata
    config = task.TrainConfig.from_settings(metadata["train"])
    scale = forecast_scale(exported)
    try:
        data = task.load_series(config)
        exact = task.change_scale(task.split_windows(data.values, config)[0]) or 1.0
        if np.float32(exact) == np.float32(scale):
            scale = float(exact)
    except (ToolkitError, OSError):
        pass  # the graph's value is the one it serves with
    model = build_forecaster(config.window, config.horizon, cell=config.cell, units=config.units,
                             num_layers=config.num_layers, bidirectional=config.bidirectional,
                             activation=config.activation, dropout=config.dropout, l2=config.l2,
                             gaussian=config.loss == "gaussian")
    facts = {"series": metadata["series"], "step_seconds": metadata["step_seconds"], "season": metadata["season"],
             "scale": scale}
    return write_run(exported, run_dir, facts, model)


def recover_text_classifier(exported, run_dir):
    """A text classifier, or each member of an ensemble of them (`RUN_DIR/<member's run folder name>`):
    `build_text_classifier` from each member's settings, its variables and its vectorizer's words told apart
    by the ops that use them (`ensemble_parts`)."""
    from toolkit.models.text_classifier import build_text_classifier
    from toolkit.preprocessing.text import TextPreprocessor
    from toolkit.tasks import text_classification as task

    metadata = exported.metadata
    members = metadata.get("ensemble") or [{"run": Path(run_dir).name, "train": metadata["train"],
                                            "metrics": metadata.get("metrics")}]
    parts = ensemble_parts(exported, "text_classifier", "text_vectorizer")
    if len(parts) != len(members):
        raise ToolkitError(f"{exported.model_dir} calls {len(parts)} models; its metadata lists {len(members)}")
    names = [Path(m["run"]).name for m in members]
    if len(set(names)) != len(names):  # one run exported twice, say
        names = [f"member{i}" for i in range(1, len(members) + 1)]
    run_dir = Path(run_dir)
    run_dirs = []
    for name, member, (variables, words) in zip(names, members, parts):
        config = task.TrainConfig.from_settings(member["train"])
        preprocessor = TextPreprocessor(config.vocabulary_size, config.max_length, vocabulary=words)
        model = build_text_classifier(len(preprocessor.vocabulary), task=metadata["task"],
                                      num_classes=len(metadata["class_names"]), **config.model_settings())
        one = dataclasses.replace(exported, variables=variables,
                                  metadata={**metadata, "train": member["train"], "metrics": member["metrics"]})
        target = run_dir if len(members) == 1 else run_dir / name
        run_dirs.append(write_run(one, target, {"task": metadata["task"], "class_names": metadata["class_names"]},
                                  model, preprocessor.save))
    return run_dirs[0] if len(members) == 1 else run_dirs


RECOVER = {"image_classifier": recover_image_classifier, "translator": recover_translator,
           "captioner": recover_captioner, "forecaster": recover_forecaster,
           "text_classifier": recover_text_classifier}


def recover(model_dir, run_dir):
    """Rebuilds RUN_DIR from the model exported in MODEL_DIR; returns RUN_DIR (for an ensemble, the list of
    its members' run folders, made inside RUN_DIR)."""
    exported = read_export(model_dir)
    if exported.kind not in RECOVER:
        raise ToolkitError(f"{exported.model_dir} is a {exported.kind} model; this script recovers "
                           f"{', '.join(RECOVER)} models")
    if "train" not in exported.metadata and not (exported.kind == "text_classifier" and "ensemble" in exported.metadata):
        raise ToolkitError(f"{exported.model_dir} has no training settings in its metadata: an ensemble of "
                           f"{exported.kind} models cannot be recovered")
    return RECOVER[exported.kind](exported, run_dir)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="an exported model: TO/NAME/VERSION (or TO/NAME: its newest version)")
    parser.add_argument("run_dir", help="the run folder to write (new or empty)")
    args = parser.parse_args(argv)
    try:
        run_dirs = recover(args.model_dir, args.run_dir)
    except ToolkitError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    for run_dir in run_dirs if isinstance(run_dirs, list) else [run_dirs]:
        print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
