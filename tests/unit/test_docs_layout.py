"""docs/ARCHITECTURE.md §2 draws the package as it is: every module of ``scp`` in its
directory, and no module that is gone."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layout_tree(text: str) -> dict[tuple[str, ...], set[str]]:
    """The names the §2 tree lists in each directory (comments left out), by directory path."""
    section = text.split("## 2. Layout", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    listed: dict[tuple[str, ...], set[str]] = {}
    stack: list[tuple[int, str]] = []  # (indent, name) of the directories we are inside
    for line in block.splitlines():
        names = line.split("#", 1)[0].split()
        if not names:
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        where = tuple(name for _, name in stack)
        listed.setdefault(where, set()).update(names)
        first = names[0]
        if first.endswith("/") and len(names) == 1:
            stack.append((indent, first.rstrip("/")))
    return listed


def test_the_layout_lists_every_module_of_the_package() -> None:
    listed = layout_tree((ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    missing = []
    for path in sorted((ROOT / "scp").rglob("*.py")):
        *where, name = path.relative_to(ROOT).parts
        if name == "__init__.py":  # the package itself: its directory is named in its parent
            *where, name = where
            name += "/"
        if name not in listed.get(tuple(where), set()):
            missing.append("/".join((*where, name)))
    assert missing == []


def test_the_layout_names_no_module_that_is_gone() -> None:
    listed = layout_tree((ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    gone = [
        "/".join((*where, name))
        for where, names in listed.items()
        if where[:1] == ("scp",)
        for name in names
        if name.endswith(".py") and not ROOT.joinpath(*where, name).is_file()
    ]
    assert gone == []
    assert ("scp", "codecs") in listed  # the parser found the tree at all
