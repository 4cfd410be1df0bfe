"""Each collection has one owner (docs/architecture.md §4).

Every module of the server rooms is parsed (not imported). Each subscript ``db[<key>]``
(``db`` a name or an attribute) whose key resolves to a collection name is an access: a
string literal written in place, a module-level constant, a constant imported from another
module (``from documents.x import NAME`` or ``x.NAME``), or an alias of one. An access
followed by a write method is a write. The owner of a collection is the module whose constant
holds its name, widened to the group of modules the §4 table lists with it. Only the owner
reads it too: every other module asks the owner's functions.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("config", "documents", "handlers", "jobs", "providers", "realtime", "storage")
WRITES = {"insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one",
          "delete_many", "find_one_and_update", "find_one_and_replace", "find_one_and_delete",
          "bulk_write"}


class Access(NamedTuple):
    module: str         # who touches the collection
    line: int
    collection: str
    declared_in: str    # the module whose constant names it (`module` for a literal in place)
    write: bool
    inline: bool        # the name written as a literal inside ``db[...]``


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → path, for every module of the server rooms under `root`."""
    out = {}
    for room in ROOMS:
        for path in (root / room).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _module_names(name: str, tree: ast.Module, mods: dict) -> tuple[dict, dict]:
    """(local name → module imported as a name, (module, NAME) → its constant's source)."""
    imported, consts = {}, {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                local = alias.asname or alias.name
                if f"{node.module}.{alias.name}" in mods:
                    imported[local] = f"{node.module}.{alias.name}"
                elif node.module in mods:
                    consts[(name, local)] = ("ref", node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in mods:
                    imported[alias.asname or alias.name.rsplit(".", 1)[-1]] = alias.name
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], ast.Name)):
            target, value = node.targets[0].id, node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                consts[(name, target)] = ("literal", value.value)
            elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) \
                    and value.value.id in imported:
                consts[(name, target)] = ("ref", imported[value.value.id], value.attr)
            elif isinstance(value, ast.Name):
                consts[(name, target)] = ("ref", name, value.id)
    return imported, consts


def accesses(root: Path = ROOT) -> list[Access]:
    """Every ``db[...]`` access with a resolvable collection name under `root`."""
    mods = modules(root)
    trees = {name: ast.parse(path.read_text()) for name, path in mods.items()}
    imported, consts = {}, {}
    for name, tree in trees.items():
        imported[name], found = _module_names(name, tree, mods)
        consts.update(found)

    def resolve(module: str | None, const: str, depth: int = 0) -> tuple[str, str] | None:
        entry = consts.get((module, const))
        if entry is None or depth > 10:
            return None
        if entry[0] == "literal":
            return entry[1], module
        return resolve(entry[1], entry[2], depth + 1)

    found = []
    for name, tree in trees.items():
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Subscript):
                continue
            base, key = node.value, node.slice
            if not ((isinstance(base, ast.Name) and base.id == "db")
                    or (isinstance(base, ast.Attribute) and base.attr == "db")):
                continue
            inline = isinstance(key, ast.Constant) and isinstance(key.value, str)
            if inline:
                resolved = (key.value, name)
            elif isinstance(key, ast.Name):
                resolved = resolve(name, key.id)
            elif isinstance(key, ast.Attribute) and isinstance(key.value, ast.Name):
                resolved = resolve(imported[name].get(key.value.id), key.attr)
            else:
                resolved = None     # a collection the caller passes in (see §4)
            if resolved is None:
                continue
            parent = parents.get(node)
            write = isinstance(parent, ast.Attribute) and parent.attr in WRITES
            found.append(Access(name, node.lineno, resolved[0], resolved[1], write, inline))
    return found


def _section_4(root: Path) -> str:
    text = (root / "docs" / "architecture.md").read_text()
    return text.split("## 4.", 1)[1].split("\n## ", 1)[0]


def owner_groups(root: Path = ROOT) -> dict[str, set[str]]:
    """Collection → the modules (``documents.x``) of its row in the §4 owner table."""
    section = _section_4(root)
    groups: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        owners = {f"documents.{m}" for m in re.findall(r"`([a-z_]+)`", cells[0])}
        for collection in re.findall(r"`([a-z_]+)`", cells[1]):
            groups[collection] = owners
    return groups


def problems(root: Path = ROOT) -> list[str]:
    """What breaks the one-owner rule under `root`, one line each."""
    found, groups = accesses(root), owner_groups(root)
    out = [f"{a.module}:{a.line} names collection {a.collection!r} inline"
           for a in found if a.inline]
    declared = defaultdict(set)
    for access in found:
        declared[access.collection].add(access.declared_in)
    out += [f"collection {c!r} is declared in {', '.join(sorted(m))}"
            for c, m in sorted(declared.items()) if len(m) > 1]
    for access in found:
        owners = groups.get(access.collection, set()) | {access.declared_in}
        if access.module in owners:
            continue
        verb = "writes" if access.write else "reads"
        out.append(f"{access.module}:{access.line} {verb} {access.collection!r}, "
                   f"owned by {', '.join(sorted(owners))}")
    return out


def test_every_collection_is_declared_once_and_used_by_its_owner_only():
    assert problems() == []


def test_the_owner_table_names_modules_and_collections_that_exist():
    mods, found = modules(), {a.collection: a.declared_in for a in accesses()}
    for collection, owners in owner_groups().items():
        assert owners <= set(mods), sorted(owners - set(mods))
        assert found.get(collection) in owners, (collection, found.get(collection))


def test_the_check_sees_a_foreign_write_or_read_an_inline_name_and_a_second_declaration(
        tmp_path):
    docs = tmp_path / "documents"
    docs.mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "architecture.md").write_text(
        "## 4. Documents\n\n| owner modules | collections |\n|---|---|\n"
        "| `owner`, `helper` | `things` |\n\nNot an owner: `bystander`.\n\n## 5. Next\n")
    (docs / "owner.py").write_text('THINGS = "things"\n\nasync def f(db):\n'
                                   '    await db[THINGS].insert_one({})\n')
    (docs / "other.py").write_text('from documents import owner\n\nasync def g(db):\n'
                                   '    await db[owner.THINGS].update_one({}, {})\n'
                                   '    await db["stuff"].find_one({})\n'
                                   '    return await db[owner.THINGS].find_one({})\n')
    (docs / "report.py").write_text('from documents.owner import THINGS\n\nasync def r(db):\n'
                                    '    await db[THINGS].count_documents({})\n'
                                    '    await db[THINGS].delete_many({})\n')
    (docs / "bystander.py").write_text('from documents import owner\n\nasync def b(db):\n'
                                       '    return await db[owner.THINGS].find({}).to_list(1)\n')
    (docs / "again.py").write_text('STUFF = "stuff"\n\nasync def h(db):\n'
                                   '    return await db[STUFF].find_one({})\n')
    (docs / "helper.py").write_text('from documents.owner import THINGS\n\nasync def k(db):\n'
                                    '    await db[THINGS].update_one({}, {})\n'
                                    '    return await db[THINGS].find_one({})\n')
    owners = "owned by documents.helper, documents.owner"
    assert sorted(problems(tmp_path)) == [
        "collection 'stuff' is declared in documents.again, documents.other",
        f"documents.bystander:4 reads 'things', {owners}",
        f"documents.other:4 writes 'things', {owners}",
        "documents.other:5 names collection 'stuff' inline",
        f"documents.other:6 reads 'things', {owners}",
        f"documents.report:4 reads 'things', {owners}",
        f"documents.report:5 writes 'things', {owners}",
    ]
