"""The library's layers import one way: each subpackage of emodna_jax imports only from itself and the
layers below it (audio < model < method < eval < train < workflows), read from every module's imports
with `ast`, lazy imports inside functions included."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "emodna_jax"
LAYERS = ("audio", "model", "method", "eval", "train", "workflows")


def library_imports(path: pathlib.Path) -> set[str]:
    """The emodna_jax modules a file imports, as dotted names below emodna_jax ("train.trainer"); a
    `from emodna_jax.X import name` counts as X.name when X.name is a module, else as X."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import; the layout test reads absolute ones only")
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != "emodna_jax" or len(parts) < 2:
                continue
            as_module = PACKAGE.joinpath(*parts[1:]).with_suffix(".py")
            found.add(".".join(parts[1:]) if as_module.exists() else ".".join(parts[1:-1]) or parts[1])
    found.discard("")
    return found


def modules() -> list[pathlib.Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_sits_in_a_layer_and_has_a_docstring():
    for path in modules():
        rel = path.relative_to(PACKAGE)
        assert len(rel.parts) == 1 and rel.name == "__init__.py" or (
            len(rel.parts) == 2 and rel.parts[0] in LAYERS), f"{rel} is outside the layers {LAYERS}"
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and doc.strip(), f"{rel} has no module docstring"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


def test_layers_import_only_downwards():
    bad = []
    for path in modules():
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) < 2:
            continue
        layer = LAYERS.index(rel.parts[0])
        for name in library_imports(path):
            target = name.split(".")[0]
            assert target in LAYERS, f"{rel} imports emodna_jax.{name}, which is in no layer"
            if LAYERS.index(target) > layer:
                bad.append(f"{rel} imports emodna_jax.{name}")
    assert not bad, "imports against the layer order " + " < ".join(LAYERS) + ":\n" + "\n".join(bad)


@pytest.mark.parametrize("layer,forbidden", [
    ("method", ("train.", "eval.", "workflows.")),    # the math knows no train state or step settings
    ("model", ("method.losses", "train.", "eval.", "workflows.")),
    ("eval", ("train.trainer", "workflows.")),        # evaluation never needs the host loop
])
def test_named_rules(layer, forbidden):
    for path in sorted((PACKAGE / layer).glob("*.py")):
        for name in library_imports(path):
            assert not (name + ".").startswith(forbidden), f"{layer}/{path.name} imports emodna_jax.{name}"


def test_the_reader_finds_a_lazy_import_against_the_order(tmp_path):
    """A test that cannot fail is a defect: the reader sees a module-level and a function-level import,
    in both spellings, and names the module (not the package) where it is one."""
    src = tmp_path / "example.py"
    src.write_text("from emodna_jax.eval import metrics\n"
                   "def f():\n"
                   "    from emodna_jax.train import trainer, model_setup\n"
                   "    import emodna_jax.method.losses\n"
                   "    from emodna_jax.model.layers import batch_norm\n")
    assert library_imports(src) == {"eval.metrics", "train.trainer", "train.model_setup", "train",
                                    "eval", "method.losses", "model.layers"}
