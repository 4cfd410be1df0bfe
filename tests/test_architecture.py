"""The rooms of `docs/architecture.md` §2 hold in the code.

Every module of the server is parsed (not imported); each import, at module level or inside
a function, is resolved to one of our modules and checked against the table of §2; the import
graph must have no cycle.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import demo_accounts
import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("config", "documents", "handlers", "jobs", "providers", "realtime", "storage")
TOP_MODULES = ("server", "composition", "worker")  # modules beside the rooms


def _table() -> dict[str, set[str]]:
    """Room → the rooms it may import, read from the table of docs/architecture.md §2."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## 2.", 1)[1].split("\n## ", 1)[0]
    allowed: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z_./]+)`", cells[0])
        named = {n.strip("/").removesuffix(".py") for n in re.findall(r"`([a-z_./]+)`", cells[2])}
        if cells[2].startswith("everything"):          # "everything" or "everything but `x`"
            named = (set(ROOMS) | set(TOP_MODULES)) - named
        for name in names:
            allowed[name.strip("/").removesuffix(".py")] = named
    return allowed


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        in_room = len(rel.parts) > 1 and rel.parts[0] in ROOMS
        if not in_room and not (len(rel.parts) == 1 and rel.stem in TOP_MODULES):
            continue
        name = ".".join(rel.with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _own_row(module: str) -> str:
    """The row of the §2 table that governs `module`."""
    return "handlers/app" if module == "handlers.app" else module.split(".")[0]


def test_the_table_names_every_room():
    table = _table()
    assert set(ROOMS) | set(TOP_MODULES) | {"handlers/app"} <= set(table), sorted(table)


def test_no_module_imports_a_room_the_table_forbids():
    table, modules = _table(), _modules()
    wrong = []
    for name, path in modules.items():
        allowed = table[_own_row(name)] | {name.split(".")[0]}
        for target in _imports(name, path, modules):
            room = target.split(".")[0]
            if (target == "server" and name != "server") or (
                    room not in allowed and target not in allowed):
                wrong.append(f"{name} imports {target}")
    assert wrong == []


OUTSIDE_CLIENTS = ("stripe", "tornado.httpclient", "aiohttp", "requests", "httpx", "urllib.request")


def test_documents_talk_to_no_outside_service():
    """HTTP clients and the payment SDK belong to `providers/`, never to `documents/`."""
    wrong = []
    for path in (ROOT / "documents").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{path.name} imports {n}" for n in names
                      if n.startswith(OUTSIDE_CLIENTS)]
    assert wrong == []


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(node: str) -> None:          # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_checker_sees_function_level_imports(tmp_path):
    source = tmp_path / "documents" / "probe.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from handlers import base\n    return base\n")
    modules = {"documents.probe": source, "handlers.base": tmp_path / "base.py"}
    assert _imports("documents.probe", source, modules) == {"handlers.base"}


def test_a_staff_route_names_a_permission_of_the_role_table():
    from handlers.base import staff

    assert staff("models.moderate") and staff()
    with pytest.raises(ValueError, match="models.moderte"):
        staff("models.moderte")


def test_modules_import_code_of_the_suite_from_helper_modules_only():
    """What several test modules share lives in helper modules (`tests/*_support.py`,
    `conftest.py`, ...); a test module never imports another test module, so a test file
    can be moved or deleted without breaking its neighbours (docs/architecture.md §8)."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name} imports {name}" for name in names
                          if name.split(".")[-1].startswith("test_")]
    assert offenders == []


MAX_MODULE_LINES = 500
SIZED_ROOMS = ("config", "documents", "handlers", "jobs", "providers", "realtime", "storage")
TOP_MODULES = ("server", "composition", "worker")  # modules beside the rooms


def test_no_module_is_over_500_lines():
    """A module of the server rooms holds one concern and stays readable: at most
    MAX_MODULE_LINES lines (docs/architecture.md §4)."""
    offenders = sorted(
        f"{path.relative_to(ROOT)} ({lines} lines)"
        for room in SIZED_ROOMS for path in (ROOT / room).rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES)
    assert not offenders, f"over {MAX_MODULE_LINES} lines: {', '.join(offenders)}"


def _fixture_user_ids() -> set[str]:
    users = json.loads((ROOT / "fixtures" / "data" / "users.json").read_text())
    return {user["_id"]["$oid"] for user in users}


def test_demo_accounts_are_declared_once():
    """The fixtures' demo accounts (emails and user ids) are declared in `demo_accounts.py`
    only; every other module of the suite imports them from there (docs/architecture.md §8):
    no module-level constant holds one, no test function spells a demo email out, and no
    module rebinds one of the account names to something else."""
    ids = _fixture_user_ids()
    emails = {value for name, value in vars(demo_accounts).items()
              if name.isupper() and isinstance(value, str) and value.endswith("@hwc3d.com")}
    names = {name for name in vars(demo_accounts) if name.isupper()}
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name == "demo_accounts.py":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                continue
            literals = {sub.value for sub in ast.walk(node.value)
                        if isinstance(sub, ast.Constant) and isinstance(sub.value, str)}
            found = sorted(v for v in literals if v.endswith("@hwc3d.com") or v in ids)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += sorted(sub.id for target in targets for sub in ast.walk(target)
                            if isinstance(sub, ast.Name) and sub.id in names)
            if found:
                offenders.append(f"{path.name}:{node.lineno} {', '.join(found)}")
        offenders += [f"{path.name}:{sub.lineno} {sub.value}" for sub in ast.walk(tree)
                      if isinstance(sub, ast.Constant) and sub.value in emails]
    assert ids, "fixtures/data/users.json names no user"
    assert offenders == [], "declare demo accounts in tests/demo_accounts.py:\n" + "\n".join(offenders)
