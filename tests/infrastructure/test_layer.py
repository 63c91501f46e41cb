"""The Lambda layer holds the runtime and nothing else: what the functions import, by construction.

The runtime is the sora_relay package (layers/shared/sora_relay, copied whole into the layer);
the tools (client, command, local stack, simulator, fault drills) are sora_relay_tools, which
the runtime must never import."""

import ast
import importlib.metadata
import re
import subprocess  # nosec B404
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..support.paths import ROOT

RUNTIME = ROOT / "layers" / "shared" / "sora_relay"
LOCK = ROOT / "layers" / "shared" / "requirements.txt"
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
TOOLS = ROOT / "tools" / "sora_relay_tools"
# One concern per module: past this, a module is split (a cookbook-sized handful of classes).
MAX_MODULE_LINES = 320
# What the layer installs from requirements.txt (and what those bring: botocore with boto3,
# httpcore with httpx, pydantic_core with pydantic), besides the standard library.
LAYER_LIBRARIES = {
    "aws_lambda_powertools",
    "boto3",
    "botocore",
    "httpcore",
    "httpx",
    "idna",
    "pydantic",
    "pydantic_core",
}


def imported_modules(path: Path) -> Iterator[str]:
    """Every absolute module name a file imports at run time (not under `if TYPE_CHECKING:`),
    `from a.b import c` giving both a.b and a.b.c."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []  # the type checker's imports: never run
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            assert node.module is not None
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_file(name: str) -> Path | None:
    """The runtime file of a sora_relay module name, or None for a name that is not one (a class)."""
    relative = RUNTIME.parent.joinpath(*name.split("."))
    for candidate in (relative.with_suffix(".py"), relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reached_from_handlers() -> set[Path]:
    """The runtime files the handlers import, directly or through each other, with their packages."""
    reached: set[Path] = set()
    pending = list(HANDLERS)
    while pending:
        for name in imported_modules(pending.pop()):
            if not name.startswith("sora_relay."):
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:depth]))
                if found is not None and found not in reached:
                    reached.add(found)
                    pending.append(found)
    return reached


@pytest.fixture(scope="module")
def built_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as the layer's build (`sam build`, BuildMethod makefile) puts it in the layer."""
    artifacts = tmp_path_factory.mktemp("layer")
    subprocess.run(  # noqa: S603  # nosec B603 B607  # make, with fixed arguments
        ["make", "--silent", "-C", str(ROOT / "layers" / "shared"), "package", f"ARTIFACTS_DIR={artifacts}"],  # noqa: S607
        check=True,
    )
    return artifacts / "python"


def test_runtime_imports_only_the_standard_library_its_layer_libraries_and_itself() -> None:
    allowed = {*sys.stdlib_module_names, *LAYER_LIBRARIES, "sora_relay"}
    strays = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in [*RUNTIME.rglob("*.py"), *HANDLERS]
        for name in imported_modules(path)
        if name.split(".")[0] not in allowed
    }
    assert strays == set()


def test_every_runtime_module_is_imported_by_a_handler() -> None:
    unused = {path.relative_to(ROOT) for path in RUNTIME.rglob("*.py")} - {
        path.relative_to(ROOT) for path in reached_from_handlers()
    }
    assert unused == set()


def test_built_layer_holds_the_runtime_package_and_only_it(built_layer: Path) -> None:
    assert sorted(path.name for path in built_layer.iterdir()) == ["sora_relay"]
    built = {path.relative_to(built_layer) for path in built_layer.rglob("*") if path.is_file()}
    runtime = [*RUNTIME.rglob("*.py"), RUNTIME / "catalogue.json"]  # the model catalogue is data of the runtime
    assert built == {path.relative_to(RUNTIME.parent) for path in runtime}


def test_built_layer_holds_no_tool_module(built_layer: Path) -> None:
    tools = {path.stem for path in TOOLS.iterdir() if not path.name.startswith("__")}
    assert {path.stem for path in (built_layer / "sora_relay").iterdir()} & tools == set()
    assert [path for path in built_layer.rglob("*.py") if "sora_relay_tools" in path.read_text()] == []


def test_no_runtime_module_is_longer_than_about_300_lines() -> None:
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in RUNTIME.rglob("*.py")}
    assert {path: length for path, length in lengths.items() if length > MAX_MODULE_LINES} == {}


def locked() -> dict[str, str]:
    """The lock's pins, by canonical name."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^ \\;]+)", LOCK.read_text(), flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


def test_lock_pins_every_declared_dependency_within_its_range_with_hashes() -> None:
    declared = [
        Requirement(line) for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    pins = locked()
    for requirement in declared:
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)]), requirement
    assert LOCK.read_text().count("==") == len(pins)
    assert all("--hash=sha256:" in block for block in LOCK.read_text().split("==")[1:])


def test_tests_run_the_locked_versions() -> None:
    installed = {name: importlib.metadata.version(name) for name in locked()}
    assert installed == locked()


def test_built_layer_holds_exactly_the_locked_versions(tmp_path: Path) -> None:
    """The layer's build as `sam build` runs it, arm64 wheels for Python 3.13 from the package
    index, each checked against the lock's hashes."""
    subprocess.run(  # noqa: S603  # nosec B603 B607  # make, with fixed arguments
        [  # noqa: S607
            "make",
            "--silent",
            "-C",
            str(ROOT / "layers" / "shared"),
            "build-SharedLayer",
            f"ARTIFACTS_DIR={tmp_path}",
            f"PIP={sys.executable} -m pip",
        ],
        check=True,
    )
    built = {
        canonicalize_name(match.group(1)): match.group(2)
        for path in (tmp_path / "python").glob("*.dist-info")
        if (match := re.fullmatch(r"(.+)-([^-]+)\.dist-info", path.name))
    }
    assert built == locked()
