"""Rule packages stay pure: they import nothing from the chain, the node, the API or the simulator.

Like execution-specs' import lint, this reads the import statements of every module in a rule
package (without importing it) and fails on any that reaches an I/O layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "clearhouse"
RULE_PACKAGES = ["messages", "merkle", "market", "risk", "settlement", "oracle", "disputes",
                 "incentives", "governance"]
RULE_MODULES = ["types.py", "params.py", "errors.py"]
FORBIDDEN = ("clearhouse.chain", "clearhouse.node", "clearhouse.api", "clearhouse.sim",
             "clearhouse.sdk", "clearhouse.cli", "web3", "boa", "sqlalchemy", "fastapi", "httpx",
             "requests", "socket", "urllib.request")


def _rule_files() -> list[Path]:
    files = [PACKAGE / m for m in RULE_MODULES]
    for pkg in RULE_PACKAGES:
        files.extend(sorted((PACKAGE / pkg).rglob("*.py")))
    return files


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", _rule_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_rule_module_imports_no_io_layer(path: Path) -> None:
    bad = [n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}: rule packages must stay pure"


def test_the_lint_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from clearhouse.chain import connect\nimport web3.eth\n")
    assert _imports(bad) == ["clearhouse.chain", "web3.eth"]
