"""Export and import: the library as a JSON list of skills (`name`, `description`, `params`, `code`, plus
postcondition, provenance, statistics and version history when known). Import checks every skill against
the executor's rules and rejects what breaks them, naming the skill and the rule; export -> import ->
export gives the same file."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embodied.library.api import API_METHODS
from embodied.library.executor import SkillCodeError, check_source
from embodied.library.store import NAME_RE, LibraryError, SkillRecord, SkillStore, parse_params

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # "skill 'x' (item 3): <rule>"


def export_library(store: SkillStore, path: str | Path) -> int:
    """Write every skill (sorted by name) to ``path``; returns how many."""
    records = store.all()
    data = [r.to_export(store.versions(r.name)) for r in records]
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return len(data)


def _line_of(text: str, index: int) -> int:
    """The line (1-based) of the ``index``-th top-level list item in a JSON text, for messages."""
    depth, count, in_str, esc = 0, -1, False, False
    for pos, ch in enumerate(text):
        if in_str:
            esc = not esc and ch == "\\"
            if ch == '"' and not esc:
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth == 2:
                count += 1
                if count == index:
                    return text.count("\n", 0, pos) + 1
        elif ch in "]}":
            depth -= 1
    return 1


def read_export(path: str | Path) -> list[Any]:
    """The JSON list in ``path``, with errors naming the file and line."""
    p = Path(path)
    if not p.exists():
        raise LibraryError(f"file not found: {p}")
    text = p.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LibraryError(f"{p}:{e.lineno}: not valid JSON: {e.msg} (column {e.colno})") from e
    if not isinstance(data, list):
        raise LibraryError(f"{p}: expected a JSON list of skills, got {type(data).__name__}")
    return data


def check_item(item: Any, where: str) -> tuple[SkillRecord, list[dict[str, Any]] | None]:
    """A record from one exported object, or LibraryError/SkillCodeError naming the skill and the rule."""
    if not isinstance(item, dict):
        raise LibraryError(f"{where}: expected an object with name, description, params and code")
    name = item.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise LibraryError(f"{where}: 'name' must be a lower-case identifier, got {name!r}")
    where = f"skill {name!r} ({where})"
    missing = [k for k in ("description", "params", "code") if k not in item]
    if missing:
        raise LibraryError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(item["description"], str) or not isinstance(item["code"], str):
        raise LibraryError(f"{where}: 'description' and 'code' must be strings")
    params = parse_params(item["params"], where)
    try:
        spec = check_source(item["code"], API_METHODS)
    except SkillCodeError as e:
        raise LibraryError(f"{where}: {e}") from None
    if spec.name != name:
        raise LibraryError(f"{where}: the code defines {spec.name!r}; the function must be named like the skill")
    if spec.params != [p.name for p in params]:
        raise LibraryError(f"{where}: 'params' {[p.name for p in params]} do not match the function's "
                           f"parameters after the API {spec.params}")
    record = SkillRecord(name=name, description=item["description"], params=params, code=item["code"],
                         postcondition=list(item.get("postcondition") or []),
                         provenance=dict(item.get("provenance") or {}))
    versions = item.get("versions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
            raise LibraryError(f"{where}: 'versions' must be a list of objects")
        for key in ("version", "attempts", "successes"):
            if not isinstance(item.get(key, 0), int):
                raise LibraryError(f"{where}: {key!r} must be an integer")
        record.version = int(item.get("version", len(versions) or 1))
        record.attempts = int(item.get("attempts", 0))
        record.successes = int(item.get("successes", 0))
        record.last_verified = item.get("last_verified")
        record.created = str(item.get("created", ""))
        record.updated = str(item.get("updated", ""))
        need = {"version", "description", "params", "code", "postcondition", "created", "note"}
        for v in versions:
            if not need <= set(v):
                raise LibraryError(f"{where}: a version entry lacks {', '.join(sorted(need - set(v)))}")
    return record, versions


def import_library(store: SkillStore, path: str | Path) -> ImportReport:
    """Check and store every skill in ``path``; rejected ones are listed, the rest are imported."""
    from embodied.library.embed import default_embedder

    data = read_export(path)
    text = Path(path).read_text()
    report = ImportReport()
    embed = None
    for i, item in enumerate(data):
        where = f"{path}:{_line_of(text, i)}"
        try:
            record, versions = check_item(item, where)
        except (LibraryError, SkillCodeError) as e:
            report.rejected.append(str(e))
            continue
        exists = record.name in store.names()
        if exists:
            old = store.get(record.name)
            if old.code == record.code and old.description == record.description and old.params == record.params:
                report.unchanged.append(record.name)
                continue
        embed = embed or default_embedder()
        store.put(record, embed([record.embed_text()])[0], embed.name, note=f"imported from {path}",
                  versions=versions)
        (report.updated if exists else report.added).append(record.name)
    return report
