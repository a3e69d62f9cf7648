"""The shape of the code: imports go one way, no module grows past ~400 lines, and dvc.yaml lists every
project file a stage really uses (its imported modules, the children it launches and the data it reads).

The import graph is read from the source (``ast``), imports inside functions included: a lazily imported
module is as much a dependency as one imported at the top. Two more edges count:
- a string literal that names a project module or a file next to the module (``"pipeline.ort_builder.child"``
  launched with ``python -m``, ``"worker.py"`` run in another environment, the family registry);
- a module's ``DATA_DEPS`` (paths it reads at run time, e.g. the shipped corpus or the templates).
One refinement keeps the stages' deps honest rather than maximal: what a target family imports inside one of
its contract functions belongs to the stages that call that function (``FAMILY_CALLERS``): the build code to
the build stage, the runtime set-up to validation, the environment checks to ``aipc doctor`` only.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

# Lowest first. A module may import its own layer or any layer below it, never one above.
LAYERS: list[tuple[str, ...]] = [
    ("pipeline", "pipeline.errors", "pipeline.fmt", "pipeline.versions", "pipeline.cache", "pipeline.fsutil",
     "pipeline.layout", "pipeline.console", "pipeline.progress", "pipeline.templating", "pipeline.textfiles",
     "pipeline.numerics"),
    ("pipeline.records", "pipeline.resources", "pipeline.mapped_pages", "pipeline.corpus", "pipeline.heldout",
     "pipeline.runlog"),
    ("pipeline.targets.base", "pipeline.targets.compression", "pipeline.runners.base"),
    ("pipeline.openvino_ir", "pipeline.ort_builder", "pipeline.npu_lib.env", "pipeline.npu_lib.client",
     "pipeline.npu_lib.worker"),
    ("pipeline.targets", "pipeline.npu_lib.family", "pipeline.npu_lib"),
    ("pipeline.params",),
    ("pipeline.resource_plan", "pipeline.stage", "pipeline.sources", "pipeline.build"),
    ("pipeline.runners", "pipeline.npu_lib.runner", "pipeline.validate"),
    ("pipeline.signing", "pipeline.manifest", "pipeline.model_card", "pipeline.package", "pipeline.report", "pipeline.report_plots",
     "pipeline.hub_upload", "pipeline.publish", "pipeline.pull", "pipeline.doctor", "pipeline.search"),
    # the CI tooling reads DVC's lock files and the params check reads dvc.yaml, whose top-level key names the stages
    ("pipeline.bench", "pipeline.npu_lib.cli", "pipeline.search.command", "pipeline.cli", "pipeline.lock_merge",
     "pipeline.dvc_params",
     "pipeline.ci_command", "pipeline.runs_command", "stages"),
]  # fmt: skip
MAX_LINES = 400
FAMILY_CALLERS = {
    "build": {"build"},
    "runtime_properties": {"validate"},
    "max_context": {"validate"},
    "environment_checks": set(),
}


def modules() -> dict[str, Path]:
    out = {}
    for top in ("pipeline", "stages"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


MODULES = modules()


def layer_of(module: str) -> int:
    best, found = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, found = len(p), i
    assert found is not None, f"{module} has no layer in tests/test_architecture.py LAYERS"
    return found


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (a module, or the package holding an imported name)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def edges(module: str) -> tuple[tuple[str, str | None], ...]:
    """(imported project module, enclosing top-level function or None) for every import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST, func: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            f = func
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) and func is None:
                f = child.name
            if isinstance(child, ast.Import):
                for a in child.names:
                    if (m := _resolve(a.name)) is not None:
                        found.append((m, f))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - child.level + 1] + ([base] if base else [])
                    )
                for a in child.names:
                    if (m := _resolve(f"{base}.{a.name}")) is not None:
                        found.append((m, f))
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                value = child.value
                if value in MODULES and value != module:
                    found.append((value, f))
                elif re.fullmatch(r"[\w-]+\.py", value) and (path.parent / value).is_file():
                    found.append((_module_of(path.parent / value), f))
            visit(child, f)

    visit(tree, None)
    return tuple((m, f) for m, f in found if m != module)


def _module_of(path: Path) -> str:
    return next(m for m, p in MODULES.items() if p == path)


def data_deps(module: str) -> list[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DATA_DEPS" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def family_modules() -> set[str]:
    from pipeline.targets import FAMILIES

    return set(FAMILIES.values())


def closure(root: str, stage: str) -> set[str]:
    """Every project module ``root`` may run, for the DVC stage named ``stage`` (``FAMILY_CALLERS`` applied)."""
    families = family_modules()
    seen: set[str] = set()
    todo = [root]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]  # packages
        for dep, func in edges(m):
            if m in families and func in FAMILY_CALLERS and stage not in FAMILY_CALLERS[func]:
                continue
            todo.append(dep)
    return seen


def required_paths(root: str, stage: str) -> set[str]:
    mods = closure(root, stage)
    paths = {MODULES[m].relative_to(ROOT).as_posix() for m in mods}
    for m in mods:
        paths |= set(data_deps(m))
    return paths


def stages_of(dvc_yaml: dict, params: dict) -> dict[str, tuple[str, list[str]]]:
    """stage name → (stage kind, deps), foreach expanded over params.targets."""
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        if "foreach" in stage:
            for key, item in params["targets"].items():
                deps = [d.replace("${key}", key).replace("${item.family}", item["family"]) for d in stage["do"]["deps"]]
                out[f"{name}@{key}"] = (stage["do"]["cmd"].split()[2], deps)
        else:
            out[name] = (stage["cmd"].split()[2], list(stage.get("deps", [])))
    return out


def missing_deps(dvc_yaml: dict, params: dict) -> list[str]:
    problems = []
    for name, (module, deps) in stages_of(dvc_yaml, params).items():
        kind = name.split("@")[0]
        for path in sorted(required_paths(module, kind)):
            if not any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps):
                problems.append(f"{name}: uses {path} but dvc.yaml does not list it")
        for d in deps:
            if not (ROOT / d).exists() and not d.startswith("artifacts/"):
                problems.append(f"{name}: lists {d}, which does not exist")
    return problems


def load_dvc() -> tuple[dict, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text()), yaml.safe_load((ROOT / "params.yaml").read_text())


def test_dvc_yaml_lists_everything_each_stage_uses():
    assert missing_deps(*load_dvc()) == []


def test_the_deps_check_catches_a_removed_dep():
    dvc_yaml, params = load_dvc()
    build = dvc_yaml["stages"]["build"]["do"]
    assert missing_deps(dvc_yaml, params) == []
    for removed in ("pipeline/ort_builder", "pipeline/data/corpus", "pipeline/params"):
        assert removed in build["deps"], removed
        mutated = yaml.safe_load(yaml.safe_dump(dvc_yaml))
        mutated["stages"]["build"]["do"]["deps"].remove(removed)
        problems = missing_deps(mutated, params)
        assert any(removed in p and p.startswith("build@") for p in problems), (removed, problems)


def test_build_code_of_a_family_is_not_a_dep_of_the_reference():
    """The refinement is real: the reference never runs the OpenVINO toolbox, the build of ov-int4 does."""
    assert "pipeline.openvino_ir.derive" not in closure("stages.reference", "reference")
    assert "pipeline.openvino_ir.derive" in closure("stages.build", "build")
    assert "pipeline.ort_builder.lowmem" in closure("stages.build", "build")  # launched as a child process


def test_no_import_cycles():
    graph = {m: {d for d, _ in edges(m)} for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in graph:
        if m not in index:
            strong(m)
    assert cycles == []


def test_no_module_imports_a_module_above_it():
    upward = [
        f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
        for m in MODULES
        for d, _ in edges(m)
        if layer_of(d) > layer_of(m)
    ]
    assert upward == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_small(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


# Nested lookups that are not records: pydantic's own error dicts, onnxruntime-genai's config file (one typed
# reader), the benchmark's results document and the raw params mapping it edits.
NOT_RECORDS = ("pipeline/params/messages.py", "pipeline/ort_builder/graph.py", "pipeline/bench/")


def test_records_are_read_through_their_models():
    """No ``.get`` chains or ``["x"]["y"]`` lookups on stage records: they are read through their models."""
    pattern = re.compile(r"\.get\([^()]*\)\s*\.get\(|\[\"[a-z_]+\"\]\[\"[a-z_]+\"\]")
    offenders = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in (ROOT / "pipeline").rglob("*.py")
        if not path.relative_to(ROOT).as_posix().startswith(NOT_RECORDS)
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_every_family_fulfils_the_contract():
    from pipeline.targets import FAMILIES, family_module
    from pipeline.targets.base import StrictSettings, TargetFamily

    for name in FAMILIES:
        module = family_module(name)
        assert isinstance(module, TargetFamily), name
        assert issubclass(module.Settings, StrictSettings), name
