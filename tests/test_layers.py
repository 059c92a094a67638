"""Imports that run backwards across the repository's folders (the gateway's own layers are
checked by import-linter in `make lint`, pyproject.toml [tool.importlinter])."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imported(path: Path) -> set[str]:
    """Top-level names of every module a file imports, wherever the import statement is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


@pytest.mark.parametrize("folder", ["bench", "agent", "gateway", "firmware"])
def test_code_outside_the_tests_never_imports_them(folder: str) -> None:
    offenders = [p for p in sorted((ROOT / folder).rglob("*.py")) if "tests" in _imported(p)]
    assert offenders == []


def test_the_architecture_page_draws_the_checked_layers_in_their_order() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["id"] == "layers")["layers"]
    page = (ROOT / "docs" / "architecture.md").read_text()
    drawn = re.findall(r"^ \|   (\S+(?: \| \S+)*)", page, flags=re.MULTILINE)
    assert drawn == layers


def test_a_backward_import_breaks_the_layer_check(tmp_path: Path) -> None:
    for part in ("gateway", "agent", "firmware", "pyproject.toml"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, tmp_path / part)
    engine = tmp_path / "gateway" / "engine" / "model.py"
    engine.write_text(engine.read_text() + "\nfrom gateway.ledger import Ledger  # backwards\n")
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "gateway.engine.model -> gateway.ledger" in done.stdout
