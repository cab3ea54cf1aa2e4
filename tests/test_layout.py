"""The house rules docs/development.md states: modules in layers, no import of a module above or in a circle, no
function over 60 lines, no test file over 25 KB."""

import ast

import pytest

from support.scripts import ROOT

# Low to high: a module imports only modules of its own layer or below (docs/development.md, "Layers").
LAYERS = (
    {"mask_detector", "errors", "quiet", "labels", "boxes", "pose", "files", "settings"},
    {"judging", "counts", "assets", "privacy", "video", "display", "zones", "motion"},
    {"faces", "classifier"},
    {"pipeline", "data", "tracking"},
    {"photos", "evaluation", "export", "training", "synthetic", "people", "evidence"},
    {"live", "parallel", "ray_cluster"},
    {"cli", "service", "__main__"},
)
LONGEST_FUNCTION = 60
LARGEST_TEST_FILE = 25_000


def package_modules():
    """{dotted name: path} of every module of the package."""
    modules = {}
    for path in sorted((ROOT / "mask_detector").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(path, modules):
    """The package's modules that the module at ``path`` imports (anywhere in it, functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mask_detector":
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names} & set(modules)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
    return found


def layer_of(module):
    """The layer of a dotted module name: that of its first name below the package (a wing is one layer)."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    return next((number for number, layer in enumerate(LAYERS) if name in layer), None)


def test_every_module_has_a_layer_and_imports_none_above_it():
    modules = package_modules()
    unplaced = sorted(module for module in modules if layer_of(module) is None)
    assert not unplaced, f"modules without a layer (add them to docs/development.md and LAYERS): {unplaced}"
    upward = sorted((module, imported) for module, path in modules.items() for imported in imports_of(path, modules)
                    if layer_of(imported) > layer_of(module))
    assert not upward, upward


def test_no_module_imports_itself_through_others():
    modules = package_modules()
    graph = {module: {m for m in imports_of(path, modules) if m in modules and m != module}
             for module, path in modules.items()}
    # The package itself is imported by every module that reads its paths: it imports only quiet.
    graph = {module: edges - {"mask_detector"} for module, edges in graph.items()}
    done, circles = set(), []

    def visit(module, path):
        if module in path:
            circles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not circles, circles


def python_files():
    return [path for folder in ("mask_detector", "tests", "benchmarks") for path in (ROOT / folder).rglob("*.py")
            ] + sorted(ROOT.glob("*.py"))


@pytest.mark.parametrize("path", python_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_function_is_over_sixty_lines(path):
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION]
    assert not long, long


def test_no_test_file_is_over_25_kb():
    large = {str(path.relative_to(ROOT)): path.stat().st_size for path in (ROOT / "tests").rglob("*.py")
             if path.stat().st_size > LARGEST_TEST_FILE}
    assert not large, large
