"""The skill library's one store: an embedded SQLite database in WAL mode. It holds every skill (code,
description, typed parameters, postcondition, provenance, verification statistics, version history and
the description embedding) and the `learn` log. Any in-memory index is rebuilt from it, never kept beside it.

Every write is one `BEGIN IMMEDIATE` transaction, so several processes can write at once (SQLite
serialises them; `busy_timeout` waits) and a process killed mid-run loses only what it had not committed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.scene import suggest

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PARAM_KINDS = ("block", "bowl", "location")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS skills (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    params TEXT NOT NULL,          -- JSON [{"name": ..., "kind": "block" | "bowl" | "location"}]
    code TEXT NOT NULL,            -- the source of one Python function (see embodied.library.executor)
    postcondition TEXT NOT NULL,   -- JSON goal over parameter names; [] when unknown
    provenance TEXT NOT NULL,      -- JSON: task, instruction, family, episode, model, ...
    version INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    successes INTEGER NOT NULL DEFAULT 0,
    last_verified TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    embedding BLOB NOT NULL,       -- float32 unit vector of description + source instruction
    embed_model TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS skill_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    description TEXT NOT NULL,
    params TEXT NOT NULL,
    code TEXT NOT NULL,
    postcondition TEXT NOT NULL,
    created TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS learn_log (
    run TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    record TEXT NOT NULL,          -- JSON: task, family, level, outcome, reason, skill, llm_calls, ...
    created TEXT NOT NULL,
    PRIMARY KEY (run, iteration)
);
"""


class LibraryError(EmbodiedError):
    """A bad library path, skill record or request."""


class _Rollback(Exception):
    """Ends a `SkillStore.transaction` without committing (a write probe)."""


def now() -> str:
    """UTC timestamp with seconds, as stored."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def default_library_path() -> Path:
    """`$EMBODIED_LIBRARY`, else `$XDG_DATA_HOME/embodied/skills.db` (~/.local/share by default)."""
    if os.environ.get("EMBODIED_LIBRARY"):
        return Path(os.environ["EMBODIED_LIBRARY"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "embodied" / "skills.db"


@dataclass(frozen=True)
class Param:
    """A skill parameter: its name in the code and the kind of object it binds to."""

    name: str
    kind: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind}


@dataclass
class SkillRecord:
    """One skill as stored (without its embedding)."""

    name: str
    description: str
    params: list[Param]
    code: str
    postcondition: list[list] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    attempts: int = 0
    successes: int = 0
    last_verified: str | None = None
    created: str = ""
    updated: str = ""

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0

    def embed_text(self) -> str:
        """What retrieval compares a request with: the description and the request it was learned from."""
        source = self.provenance.get("instruction", "")
        return f"{self.description}. {source}".strip()

    def to_export(self, versions: list[dict[str, Any]]) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "params": [p.to_dict() for p in self.params],
                "code": self.code, "postcondition": self.postcondition, "provenance": self.provenance,
                "version": self.version, "attempts": self.attempts, "successes": self.successes,
                "last_verified": self.last_verified, "created": self.created, "updated": self.updated,
                "versions": versions}


@dataclass
class Verification:
    """How a skill did on fresh seeds (tables or worlds): what verification in any world reports."""

    seeds: list[int]
    successes: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.seeds)

    @property
    def rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0


def parse_params(raw: Any, where: str) -> list[Param]:
    """Parameters from JSON: ``[{"name", "kind"}]`` or plain names whose prefix gives the kind (block_1)."""
    if not isinstance(raw, list):
        raise LibraryError(f"{where}: 'params' must be a list, got {type(raw).__name__}")
    out = []
    for i, p in enumerate(raw):
        if isinstance(p, str):
            kind = next((k for k in PARAM_KINDS if p.startswith(k)), None)
            if kind is None:
                raise LibraryError(f"{where}: params[{i}] {p!r}: give its kind ({{'name': ..., 'kind': ...}}) "
                                   f"or start its name with one of {', '.join(PARAM_KINDS)}")
            out.append(Param(p, kind))
            continue
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not isinstance(p.get("kind"), str):
            raise LibraryError(f"{where}: params[{i}] must be a name or {{'name': str, 'kind': str}}, got {p!r}")
        if p["kind"] not in PARAM_KINDS:
            raise LibraryError(f"{where}: params[{i}] has unknown kind {p['kind']!r}"
                               f"{suggest(p['kind'], PARAM_KINDS)}; kinds: {', '.join(PARAM_KINDS)}")
        out.append(Param(p["name"], p["kind"]))
    return out


def _row_to_record(row: sqlite3.Row) -> SkillRecord:
    return SkillRecord(name=row["name"], description=row["description"],
                       params=[Param(**p) for p in json.loads(row["params"])], code=row["code"],
                       postcondition=json.loads(row["postcondition"]), provenance=json.loads(row["provenance"]),
                       version=row["version"], attempts=row["attempts"], successes=row["successes"],
                       last_verified=row["last_verified"], created=row["created"], updated=row["updated"])


class _Connection(sqlite3.Connection):
    """A connection whose database errors are `LibraryError`s naming the file: a damaged, foreign or
    read-only library is a clear message, never a traceback."""

    path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().execute(sql, parameters)
        except sqlite3.DatabaseError as e:
            raise _library_error(self.path, e) from None

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.DatabaseError as e:
            raise _library_error(self.path, e) from None


def _library_error(path: Path, e: sqlite3.DatabaseError) -> LibraryError:
    """One line for a database error: read-only, busy, damaged, or not a library at all."""
    text = str(e)
    if "readonly" in text or "read-only" in text:
        return LibraryError(f"{path} is read-only ({text}): nothing was written; make it writable or give "
                            "another --library")
    if "not a database" in text:
        return LibraryError(f"{path} is not a usable skill library: not an SQLite database")
    if "malformed" in text or "corrupt" in text:
        return LibraryError(f"{path} is damaged ({text}); restore it from an export (`embodied skills import`) "
                            "or a backup")
    return LibraryError(f"{path}: library database error: {text}")


class SkillStore:
    """The library database. Open with a path; the file and its folder are created on first write.

    ``readonly`` opens an existing library without ever writing to it (no schema, no journal change), for
    commands that only read (`skills list/show/search/export`, retrieval). Every open checks that the file
    is a library and passes SQLite's quick integrity check."""

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path).expanduser()
        if (readonly or not create) and not self.path.exists():
            raise LibraryError(f"no skill library at {self.path} (create one with `embodied learn` or "
                               "`embodied skills import`)")
        if self.path.exists() and self.path.is_dir():
            raise LibraryError(f"library path {self.path} is a folder; give a database file, e.g. {self.path}/skills.db")
        empty = not self.path.exists() or self.path.stat().st_size == 0
        if empty and (readonly or not create):
            raise LibraryError(f"{self.path} is empty (0 bytes): not a skill library yet (create one with "
                               "`embodied learn` or `embodied skills import`)")
        self.readonly = readonly
        try:
            if not readonly:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LibraryError(f"cannot create the library's folder {self.path.parent}: {e.strerror or e}") from None
        try:
            target = f"file:{self.path}?mode=ro" if readonly else str(self.path)
            self.conn = sqlite3.connect(target, timeout=60.0, isolation_level=None, check_same_thread=False,
                                        uri=readonly, factory=_Connection)
        except sqlite3.DatabaseError as e:
            raise _library_error(self.path, e) from None
        self.conn.path = self.path
        self.conn.row_factory = sqlite3.Row
        try:
            self._open(empty)
        except BaseException:
            self.conn.close()
            raise
        self._index: tuple[int, list[str], np.ndarray] | None = None

    def _open(self, empty: bool) -> None:
        """Check the file is a healthy library of this schema; a new (empty) one gets the schema."""
        self.conn.execute("PRAGMA busy_timeout = 60000")
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not empty and "meta" not in tables:
            raise LibraryError(f"{self.path} is not a usable skill library: an SQLite database without its tables")
        check = " ".join(str(self.conn.execute("PRAGMA quick_check").fetchone()[0]).split())
        if check != "ok":
            raise LibraryError(f"{self.path} fails its integrity check ({check}); restore it from an export "
                               "(`embodied skills import`) or a backup")
        if not self.readonly:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS)
            with self.transaction():
                if self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() is None:
                    self.conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        found = self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is None or str(found["value"]) != str(SCHEMA_VERSION):
            raise LibraryError(f"{self.path}: schema version {found['value'] if found else 'missing'}, this "
                               f"embodied reads {SCHEMA_VERSION}")

    def check_writable(self) -> None:
        """Refuse up front (`LibraryError`) when the library cannot be written, rather than after the work
        whose result it would store."""
        if self.readonly:
            raise LibraryError(f"{self.path} was opened read-only")
        with self.transaction() as c:
            c.execute("UPDATE meta SET value = value WHERE key = 'schema'")
            raise _Rollback

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SkillStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (BEGIN IMMEDIATE) so concurrent writers queue, not fail."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except _Rollback:
            self.conn.rollback()
        except BaseException:
            if self.conn.in_transaction:
                self.conn.rollback()
            raise

    # ------------------------------------------------------------------ skills
    def names(self) -> list[str]:
        return [r["name"] for r in self.conn.execute("SELECT name FROM skills ORDER BY name")]

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM skills").fetchone()[0])

    def get(self, name: str) -> SkillRecord:
        row = self.conn.execute("SELECT * FROM skills WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise LibraryError(f"no skill named {name!r} in {self.path}{suggest(name, self.names())}")
        return _row_to_record(row)

    def all(self) -> list[SkillRecord]:
        return [_row_to_record(r) for r in self.conn.execute("SELECT * FROM skills ORDER BY name")]

    def find_code(self, code: str) -> str | None:
        """The name of a skill whose current code is exactly ``code``, if any."""
        row = self.conn.execute("SELECT name FROM skills WHERE code = ?", (code,)).fetchone()
        return None if row is None else row["name"]

    def versions(self, name: str) -> list[dict[str, Any]]:
        return _versions(self.conn, name)

    def put(self, record: SkillRecord, embedding: np.ndarray, embed_model: str, note: str = "added",
            versions: Sequence[dict[str, Any]] | None = None) -> SkillRecord:
        """Insert a skill, or store a new version of an existing one (its history kept); returns what is stored.
        ``versions`` (from an export) restores the record and its history verbatim instead."""
        with self.transaction() as c:
            _write(c, record, embedding, embed_model, note, versions)
        return record

    def record_verification(self, name: str, attempts: int, successes: int) -> SkillRecord:
        """Add verification runs to a skill's statistics (atomic, so concurrent verifiers add up)."""
        with self.transaction() as c:
            n = c.execute("UPDATE skills SET attempts = attempts + ?, successes = successes + ?, last_verified = ? "
                          "WHERE name = ?", (attempts, successes, now(), name)).rowcount
        if n == 0:
            raise LibraryError(f"no skill named {name!r} in {self.path}{suggest(name, self.names())}")
        return self.get(name)

    def remove(self, name: str) -> None:
        with self.transaction() as c:
            n = c.execute("DELETE FROM skills WHERE name = ?", (name,)).rowcount
            c.execute("DELETE FROM skill_versions WHERE name = ?", (name,))
            c.execute("DELETE FROM meta WHERE key = ?", (f"status/{name}",))
            c.execute("DELETE FROM meta WHERE key LIKE ?", (f"verify/{name}/%",))
        if n == 0:
            raise LibraryError(f"no skill named {name!r} in {self.path}{suggest(name, self.names())}")

    # ------------------------------------------------------------------ retrieval index
    def _data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0]) * 1_000_003 + \
            int(self.conn.execute("SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM skills").fetchone()[0])

    def index(self) -> tuple[list[str], np.ndarray]:
        """(names, (n, d) embedding matrix), rebuilt from the database whenever it changed."""
        version = self._data_version()
        if self._index is None or self._index[0] != version:
            rows = self.conn.execute("SELECT name, embedding FROM skills ORDER BY name").fetchall()
            names = [r["name"] for r in rows]
            mat = (np.stack([np.frombuffer(r["embedding"], np.float32) for r in rows]) if rows
                   else np.zeros((0, 0), np.float32))
            self._index = (version, names, mat)
        return self._index[1], self._index[2]

    def search(self, query_vec: np.ndarray, k: int = 5, deprecated: bool = False) -> list[tuple[SkillRecord, float]]:
        """The ``k`` skills whose embeddings are closest (cosine) to ``query_vec``, best first; deprecated
        skills only when asked for (planners never retrieve them)."""
        names, mat = self.index()
        if not names:
            return []
        sims = mat @ np.asarray(query_vec, np.float32).reshape(-1)
        hidden = set() if deprecated else {n for n, s in self.statuses().items() if s == "deprecated"}
        order = [i for i in np.argsort(-sims, kind="stable") if names[i] not in hidden][:k]
        return [(self.get(names[i]), float(sims[i])) for i in order]

    # ------------------------------------------------------------------ curation
    STATUSES = ("new", "approved", "deprecated")

    def log_verification(self, name: str, entry: dict[str, Any]) -> None:
        """One verification run of a skill (when, on which seeds, the result, its videos), kept for its
        history; `verifications` reads them back in time order."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"verify/{name}/{now()}", json.dumps(entry)))

    def verifications(self, name: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT key, value FROM meta WHERE key LIKE ? ORDER BY key",
                                 (f"verify/{name}/%",)).fetchall()
        return [{"time": r["key"].rsplit("/", 1)[1], **json.loads(r["value"])} for r in rows]

    def statuses(self) -> dict[str, str]:
        """Every skill's curation status other than "new" (`set_status`)."""
        rows = self.conn.execute("SELECT key, value FROM meta WHERE key LIKE 'status/%'").fetchall()
        return {r["key"][len("status/"):]: r["value"] for r in rows}

    def status(self, name: str) -> str:
        return self.meta(f"status/{name}") or "new"

    def set_status(self, name: str, status: str) -> None:
        """Approve or deprecate a skill (a person's call; deprecated ones are no longer retrieved)."""
        if status not in self.STATUSES:
            raise LibraryError(f"unknown status {status!r}; statuses: {', '.join(self.STATUSES)}")
        self.get(name)  # an unknown skill is named
        with self.transaction() as c:
            if status == "new":
                c.execute("DELETE FROM meta WHERE key = ?", (f"status/{name}",))
            else:
                c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"status/{name}", status))

    # ------------------------------------------------------------------ learn log
    def log_iteration(self, run: str, iteration: int, record: dict[str, Any],
                      skill: tuple[SkillRecord, np.ndarray, str] | None = None,
                      used: Sequence[tuple[str, bool]] = ()) -> None:
        """One `learn` iteration in a single transaction: its log line, the skill it added and the
        outcomes of the library skills it ran (added to their statistics) -- all or nothing."""
        with self.transaction() as c:
            for name, ok in used:
                c.execute("UPDATE skills SET attempts = attempts + 1, successes = successes + ? WHERE name = ?",
                          (int(ok), name))
            if skill is not None:
                _write(c, *skill, f"learned in {run} iteration {iteration}")
            c.execute("INSERT INTO learn_log VALUES (?,?,?,?)", (run, iteration, json.dumps(record), now()))

    def learn_log(self, run: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT iteration, record FROM learn_log WHERE run = ? ORDER BY iteration", (run,))
        return [{"iteration": r["iteration"], **json.loads(r["record"])} for r in rows]

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def integrity(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])


def _write(c: sqlite3.Connection, record: SkillRecord, embedding: np.ndarray, embed_model: str, note: str,
           versions: Sequence[dict[str, Any]] | None = None) -> None:
    """Upsert a skill row and its history inside an open transaction."""
    stamp = now()
    if versions is None:
        old = c.execute("SELECT version, created FROM skills WHERE name = ?", (record.name,)).fetchone()
        record.version = 1 if old is None else old["version"] + 1
        record.created = stamp if old is None else old["created"]
        record.updated = stamp
        versions = [*_versions(c, record.name), {
            "version": record.version, "description": record.description,
            "params": [p.to_dict() for p in record.params], "code": record.code,
            "postcondition": record.postcondition, "created": stamp, "note": note}]
    c.execute("INSERT OR REPLACE INTO skills VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
        record.name, record.description, json.dumps([p.to_dict() for p in record.params]), record.code,
        json.dumps(record.postcondition), json.dumps(record.provenance, sort_keys=True), record.version,
        record.attempts, record.successes, record.last_verified, record.created, record.updated,
        np.asarray(embedding, np.float32).reshape(-1).tobytes(), embed_model))
    c.execute("DELETE FROM skill_versions WHERE name = ?", (record.name,))
    for v in versions:
        c.execute("INSERT INTO skill_versions VALUES (?,?,?,?,?,?,?,?)", (
            record.name, v["version"], v["description"], json.dumps(v["params"]), v["code"],
            json.dumps(v["postcondition"]), v["created"], v["note"]))


def _versions(c: sqlite3.Connection, name: str) -> list[dict[str, Any]]:
    rows = c.execute("SELECT * FROM skill_versions WHERE name = ? ORDER BY version", (name,))
    return [{"version": r["version"], "description": r["description"], "params": json.loads(r["params"]),
             "code": r["code"], "postcondition": json.loads(r["postcondition"]), "created": r["created"],
             "note": r["note"]} for r in rows]
