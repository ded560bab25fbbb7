"""Export and import: the library as a JSON list of skills (`name`, `description`, `params`, `code`, plus
postcondition, provenance, statistics and version history when known). Import checks every skill against
the executor's rules and rejects what breaks them, naming the skill and the rule; export -> import ->
export gives the same file."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embodied.library.api import API_METHODS
from embodied.library.executor import SkillCodeError, check_source
from embodied.library.store import NAME_RE, LibraryError, SkillRecord, SkillStore, parse_params

log = logging.getLogger(__name__)

# Largest text field of an imported skill (UTF-8 bytes): learned skills are a few hundred bytes; anything
# near this is not a skill a language model should read or the executor should run.
MAX_SKILL_FIELD_BYTES = 20_000


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


def _item_lines(text: str) -> list[int]:
    """The line (1-based) where each top-level list item of a JSON text starts, for messages; one pass at
    the JSON decoder's speed, so a multi-megabyte export is not rescanned per item."""
    decoder, lines = json.JSONDecoder(), []
    skip = re.compile(r"[\s,]*")
    pos = text.find("[") + 1
    line, counted = 1, 0
    while 0 < pos < len(text):
        pos = skip.match(text, pos).end()
        if pos >= len(text) or text[pos] == "]":
            break
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        try:
            _, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
    return lines


def read_export(path: str | Path) -> list[Any]:
    """The JSON list in ``path``, with errors naming the file and line."""
    p = Path(path)
    if not p.exists():
        raise LibraryError(f"file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise LibraryError(f"{p}: not UTF-8 text (byte {e.start}); save the export as UTF-8") from None
    except OSError as e:
        raise LibraryError(f"{p}: cannot read: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LibraryError(f"{p}:{e.lineno}: not valid JSON: {e.msg} (column {e.colno})") from e
    except RecursionError:
        raise LibraryError(f"{p}: JSON nested too deeply to read") from None
    if not isinstance(data, list):
        raise LibraryError(f"{p}: expected a JSON list of skills, got {type(data).__name__}")
    return data


def _world_api(world: object, where: str) -> tuple[str, ...]:
    """The API methods a skill of ``world`` (its provenance) may call: the tabletop's or Crafter's."""
    if world == "tabletop":
        return API_METHODS
    if world == "crafter":
        from embodied.library.crafter import API_METHODS as CRAFTER_API  # only when a Crafter skill comes in

        return CRAFTER_API
    raise LibraryError(f"{where}: provenance 'world' is {world!r}; known worlds: tabletop, crafter")


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
    for key in ("description", "code"):
        size = len(item[key].encode("utf-8", "surrogatepass"))
        if size > MAX_SKILL_FIELD_BYTES:
            raise LibraryError(f"{where}: {key!r} is {size:,} bytes; the limit is {MAX_SKILL_FIELD_BYTES:,}")
    for key, limit in (("postcondition", MAX_SKILL_FIELD_BYTES), ("provenance", MAX_SKILL_FIELD_BYTES),
                       ("versions", 50 * MAX_SKILL_FIELD_BYTES)):
        size = len(json.dumps(item.get(key)).encode("utf-8", "surrogatepass"))
        if size > limit:
            raise LibraryError(f"{where}: {key!r} is {size:,} bytes as JSON; the limit is {limit:,}")
    params = parse_params(item["params"], where)
    provenance = item.get("provenance")
    if provenance is not None and not isinstance(provenance, dict):
        raise LibraryError(f"{where}: 'provenance' must be an object")
    try:
        spec = check_source(item["code"], _world_api((provenance or {}).get("world", "tabletop"), where))
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
    text = Path(path).read_text(encoding="utf-8")
    report = ImportReport()
    embed = None
    lines = _item_lines(text)
    for i, item in enumerate(data):
        where = f"{path}:{lines[i] if i < len(lines) else 1}"
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
