"""The shape of the code: one module per task behind one table, layers that only import downwards, no cycles."""

import ast
import dataclasses

import pytest

from tests.helpers import REPO
from toolkit import config
from toolkit.tasks import TASKS

PACKAGES = ("toolkit", "cli")


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules():
    """{module name: path} of every module in toolkit/ and cli/."""
    return {module_name(p): p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))}


def imports_of(path, modules):
    """The toolkit/cli modules `path` imports anywhere (inside functions too), with the packages each import runs."""
    found = set()
    this = module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # The root packages are façades (`toolkit.load`): every module runs them first, so they import
    # submodules inside functions, on first call; only their top-level imports run at import time.
    for node in tree.body if this in PACKAGES else ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = this.split(".") if is_package else this.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules)
    found.discard(this)
    return found


@pytest.fixture(scope="module")
def graph():
    modules = source_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, stack + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_among_toolkit_and_cli_modules(graph):
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_graph_sees_imports_inside_functions(graph):
    # toolkit.tasks.translation imports the translator model only inside train(): the graph must still see it.
    assert "toolkit.models.translator" in graph["toolkit.tasks.translation"]


@pytest.mark.parametrize("lower", ["toolkit.layers", "toolkit.models", "toolkit.preprocessing", "toolkit.data",
                                   "toolkit.serving", "toolkit.training", "toolkit.export", "toolkit.config"])
def test_lower_modules_import_nothing_above_them(graph, lower):
    above = ("toolkit.tasks", "cli")
    if lower in ("toolkit.layers", "toolkit.models", "toolkit.preprocessing", "toolkit.data"):
        above += ("toolkit.training", "toolkit.serving", "toolkit.export", "toolkit.diagnostics")
    for module, imported in graph.items():
        if module == lower or module.startswith(lower + "."):
            wrong = sorted(m for m in imported if m.startswith(above))
            assert not wrong, f"{module} imports {wrong}, which sit above it"


def test_layers_import_no_models(graph):
    for module, imported in graph.items():
        if module.startswith("toolkit.layers"):
            assert not [m for m in imported if m.startswith("toolkit.models")], module


def test_task_modules_import_no_other_task(graph):
    for kind, task in TASKS.items():
        others = {t.__name__ for t in TASKS.values()} - {task.__name__}
        assert not graph[task.__name__] & (others | {"toolkit.tasks"}), task.__name__


def kind_comparisons(source, kinds):
    """What `source` compares kinds with: kind names (`kind == "translator"`, `kind in ("a", "b")`) and
    task modules' KIND (`kind == translation.KIND`): the if/elif chains a table replaces."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                values = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                found.update(v.value for v in values if isinstance(v, ast.Constant) and v.value in kinds)
                found.update(f"{v.value.id}.KIND" for v in values
                             if isinstance(v, ast.Attribute) and v.attr == "KIND" and isinstance(v.value, ast.Name))
    return found


def test_kind_comparisons_are_found():
    source = 'if kind == "translator": pass\nok = x in ("captioner", 1)\nelif kind == images.KIND: pass'
    assert kind_comparisons(source.replace("elif", "if"), TASKS) == {"translator", "captioner", "images.KIND"}


def test_no_if_elif_over_kinds():
    """Code asks the table (`toolkit.tasks.TASKS`) for a kind's task; it never compares kinds by name."""
    for name, path in source_modules().items():
        assert not kind_comparisons(path.read_text(encoding="utf-8"), TASKS), name


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_every_task_has_the_same_shape(kind):
    task = TASKS[kind]
    assert task.KIND == kind and task.PREDICTOR.kind == kind
    assert issubclass(task.TrainConfig, config.RunConfig)
    task.TrainConfig().validate()  # the defaults are a valid run
    for name in ("train", "export_run", "evaluate"):
        assert callable(getattr(task, name)), name
    assert isinstance(task.ENSEMBLES, bool) and task.SHIPPED_MODEL and task.COMMAND


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_training_options_take_their_defaults_from_the_config(kind):
    """`toolkit train COMMAND`'s options and the task's TrainConfig never disagree about a default."""
    from cli.train import train

    task = TASKS[kind]
    command = train.commands[task.COMMAND]
    fields = {f.name: f.default for f in dataclasses.fields(task.TrainConfig)}
    checked = 0
    for param in command.params:
        if param.name in fields and param.name != "dataset":  # images: no --dataset means "guess from the files"
            assert param.default == fields[param.name], f"--{param.name}: {param.default!r} != {fields[param.name]!r}"
            checked += 1
    assert checked >= len(fields) - 3, f"only {checked} of {len(fields)} settings are options"


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_every_task_can_be_evaluated_from_the_command_line(kind):
    from cli.evaluate import evaluate

    assert TASKS[kind].COMMAND in evaluate.commands


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_bad_settings_are_refused_before_anything_is_written(kind, tmp_path):
    from toolkit.training import Run

    task = TASKS[kind]
    bad = dataclasses.replace(task.TrainConfig(), batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        Run(tmp_path / "run", kind, bad)
    assert not (tmp_path / "run").exists()


def test_the_root_package_imports_only_leaves_at_import_time(graph):
    """`import toolkit` stays instant, and the façade's lazy imports cannot form a cycle."""
    assert graph["toolkit"] <= {"toolkit.errors"}
    assert not graph["toolkit.errors"]
