"""Imports sit at the top of their module (docs/ARCHITECTURE.md §2): one inside a function is
a heavy or optional dependency deferred for callers that may never need it, and a comment in
the function, above the import or beside it, says why."""

from __future__ import annotations

import ast
from pathlib import Path

SCP = Path(__file__).resolve().parents[2] / "scp"
GENERATED = SCP / "codecs" / "asn" / "_inap_gen.py"


def unexplained_imports(path: Path) -> list[str]:
    """``name:line`` of each import inside a function with no comment from its ``def`` to it."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import | ast.ImportFrom):
                said = lines[fn.lineno - 1 : node.lineno]
                if not any("#" in line for line in said):
                    found.append(f"{path.name}:{node.lineno}")
    return found


def test_every_import_inside_a_function_says_why() -> None:
    found = [
        f"{path.parent.relative_to(SCP.parent)}/{where}"
        for path in sorted(SCP.rglob("*.py"))
        if path != GENERATED
        for where in unexplained_imports(path)
    ]
    assert found == []


def test_an_unexplained_import_inside_a_function_is_found(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text(
        'def f():\n    """Doc."""\n    from decimal import Decimal\n    return Decimal\n'
    )
    good = tmp_path / "n.py"
    good.write_text("def f():\n    import uvloop  # optional: the asyncio loop runs without it\n")
    assert unexplained_imports(bad) == ["m.py:3"]
    assert unexplained_imports(good) == []
