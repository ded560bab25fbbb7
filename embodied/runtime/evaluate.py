"""Evaluation over a task file: one line per episode appended to `results.jsonl` as it finishes (so an
interrupted run loses nothing and resumes where it stopped), then `report.json` with rates by family and
failure reasons.

The eval folder (`--out`) has one writer at a time: an exclusive lock (`fcntl.flock` on `eval.lock`) is held
for the whole run, so a second eval -- or a `--fresh` that would delete the rows another eval is writing --
is refused. Every row carries `task_hash` (its task's definition) and `config_hash` (the configuration keys
that change results, `RESULT_KEYS`); resuming keeps only rows that match both and refuses a folder whose
`config.json` differs in those keys, naming them. Rows are validated as they are read (the line is named),
and a torn last line (a kill in the middle of a write) is cut back to the last complete row before appending.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embodied.planners.base import Planner
from embodied.runtime.episode import EpisodeResult, GoalReader, run_episode
from embodied.runtime.sensing import Sensing
from embodied.world.errors import EmbodiedError
from embodied.world.paths import check_output_dir
from embodied.world.tasks import Task

if TYPE_CHECKING:
    from embodied.runtime.recording import RecordSpec
    from envs.tabletop import TabletopEnv

log = logging.getLogger(__name__)

RESULTS, REPORT, CONFIG, LOCK = "results.jsonl", "report.json", "config.json", "eval.lock"
# Keys of `Agent.describe()` that change what an episode does; a resume must match all of them.
RESULT_KEYS: tuple[str, ...] = ("planner", "planner_config", "state", "affordance", "success", "looks", "library",
                                "infer_goal", "image_size")
# A results row without these cannot be reported on or matched to its task.
ROW_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str, "success": bool, "outcome": str, "reason": str, "steps": list, "seconds": (int, float),
    "task_hash": str, "config_hash": str}
OUTCOMES = ("success", "failed", "cannot")


class EvalFolderError(EmbodiedError):
    """An eval folder that cannot be used as asked: locked by another eval, other config, a bad row."""


def _digest(obj: Any) -> str:
    """A short, stable sha256 of a JSON value (sorted keys), for matching rows to what made them."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def task_hash(task: Task) -> str:
    """Hash of the task's definition (its JSON: instruction, scene, goal, seed, max_steps, ...)."""
    return _digest(task.to_dict())


def result_config(describe: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an agent's description that changes results (`RESULT_KEYS`), JSON-normalised."""
    return json.loads(json.dumps({k: describe.get(k) for k in RESULT_KEYS}, sort_keys=True, default=str))


def config_hash(describe: Mapping[str, Any]) -> str:
    return _digest(result_config(describe))


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys (one level into dicts) whose values differ, e.g. ``["planner", "planner_config.llm"]``."""
    diff = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diff += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            diff.append(key)
    return diff


def wilson(successes: int, n: int, z: float = 1.96) -> list[float]:
    """The 95 % Wilson score interval of a rate, [low, high]; [0, 1] when there are no trials."""
    if n <= 0:
        return [0.0, 1.0]
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """A results row with every field the report needs, or `EvalFolderError` naming ``where`` (file:line)."""
    if not isinstance(row, dict):
        raise EvalFolderError(f"{where}: a results row must be a JSON object, got {type(row).__name__}")
    for key, kind in ROW_FIELDS.items():
        if key not in row:
            raise EvalFolderError(f"{where}: results row lacks {key!r} (rows need {', '.join(ROW_FIELDS)}); "
                                  "remove the line or start over with --fresh")
        if not isinstance(row[key], kind) or (kind is not bool and isinstance(row[key], bool)):
            raise EvalFolderError(f"{where}: results row field {key!r} has the wrong type "
                                  f"({type(row[key]).__name__}); remove the line or start over with --fresh")
    if row["outcome"] not in OUTCOMES:
        raise EvalFolderError(f"{where}: results row outcome {row['outcome']!r} is not one of {', '.join(OUTCOMES)}")
    return row


def read_results(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """Rows in ``path``, each validated (errors name file:line). A torn last line -- no newline and not a
    complete row -- is cut off the file when ``repair`` (the writer holds the lock), else only skipped."""
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    rows, offset = [], 0
    for lineno, raw in enumerate(lines, start=1):
        offset += len(raw) + 1
        if not raw.strip():
            continue
        rows.append(validate_row(_parse_line(raw, f"{path}:{lineno}"), f"{path}:{lineno}"))
    if tail.strip():
        where = f"{path}:{len(lines) + 1}"
        try:
            rows.append(validate_row(json.loads(tail), where))
            if repair:  # a complete row that lost only its newline: keep it
                with path.open("ab") as f:
                    f.write(b"\n")
        except (ValueError, RecursionError, EvalFolderError):
            if repair:  # said once, when it is cut; the checks before only skip it
                log.warning("%s: torn last line (%d bytes, an interrupted write) cut off", where, len(tail))
                os.truncate(path, offset)
    return rows


def _parse_line(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise EvalFolderError(f"{where}: results row is not valid JSON ({str(e)[:80]}); remove the line or "
                              "start over with --fresh") from None


class EvalFolder:
    """An eval's output folder, held exclusively while open: ``with EvalFolder(out) as folder: ...``."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.results = self.out / RESULTS
        self._lock_fd: int | None = None

    def __enter__(self) -> EvalFolder:
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def lock(self) -> None:
        """Take the folder's lock (creating the folder) or refuse: one writer per folder."""
        import fcntl

        if self._lock_fd is not None:
            return
        check_output_dir(self.out, "--out")
        fd = os.open(self.out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise EvalFolderError(f"{self.out} is in use by another eval (pid {holder}); wait for it to "
                                      "finish or choose another --out") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock; the file stays (removing it would race)
            self._lock_fd = None

    def check(self, describe: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Before any work: validate the rows already there and, given the agent's ``describe()``, refuse a
        folder made with another configuration (naming the keys). Returns the rows; writes nothing."""
        rows = read_results(self.results, repair=False)
        if describe is not None:
            self._check_config(rows, describe)
        return rows

    def _check_config(self, rows: list[dict[str, Any]], describe: Mapping[str, Any]) -> None:
        current, chash = result_config(describe), config_hash(describe)
        stored = self._stored_config()
        if stored is not None and result_config(stored) != current:
            old = result_config(stored)
            details = "; ".join(f"{k}: {_at(old, k)!r} -> {_at(current, k)!r}" for k in config_diff(old, current)[:6])
            raise EvalFolderError(f"{self.out} holds results of another configuration ({details}); "
                                  "rerun with --fresh to start over, or choose another --out")
        other = [r for r in rows if r["config_hash"] != chash]
        if other:
            raise EvalFolderError(f"{self.out}/{RESULTS} holds {len(other)} rows of another configuration "
                                  f"(config_hash {other[0]['config_hash']}, now {chash}); rerun with --fresh "
                                  "to start over, or choose another --out")

    def start(self, tasks: Sequence[Task], describe: Mapping[str, Any], resume: bool,
              record: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Prepare the folder for ``tasks`` run by an agent that ``describe``s itself: start over (``resume``
        False), or keep the rows whose task and config hashes match -- refusing another config, named --
        then write ``config.json`` (``record`` adds to it). Returns the kept rows by task id."""
        if self._lock_fd is None:
            raise EvalFolderError(f"{self.out}: take the lock before writing (use `with EvalFolder(out)`)")
        chash = config_hash(describe)
        if not resume:
            for name in (RESULTS, REPORT, CONFIG, "results.stale.jsonl"):
                (self.out / name).unlink(missing_ok=True)
        rows = read_results(self.results, repair=True)
        self._check_config(rows, describe)
        want = {t.id: task_hash(t) for t in tasks}
        stale = [r for r in rows if r["id"] in want and r["task_hash"] != want[r["id"]]]
        if stale:  # tasks whose definition changed: their rows move aside and the tasks run again
            log.warning("%s: %d rows were made from another version of their task (%s); moved to %s and rerun",
                        self.results, len(stale), ", ".join(sorted({r["id"] for r in stale})[:5]),
                        "results.stale.jsonl")
            with (self.out / "results.stale.jsonl").open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in stale)
            keep = [r for r in rows if not (r["id"] in want and r["task_hash"] != want[r["id"]])]
            tmp = self.results.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
            os.replace(tmp, self.results)
            rows = keep
        config = {**(record or {}), **describe, "config_hash": chash, "versions": package_versions()}
        (self.out / CONFIG).write_text(json.dumps(config, indent=2, default=str) + "\n")
        return {r["id"]: r for r in rows if r["id"] in want}

    def _stored_config(self) -> dict[str, Any] | None:
        path = self.out / CONFIG
        if not path.exists():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as e:
            raise EvalFolderError(f"{path}: not valid JSON ({str(e)[:80]}); rerun with --fresh to start over") \
                from None
        if not isinstance(stored, dict):
            raise EvalFolderError(f"{path}: expected a JSON object; rerun with --fresh to start over")
        return stored

    def append(self, row: dict[str, Any]) -> None:
        """One finished episode, on its own line, flushed and synced before the next starts."""
        with self.results.open("a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_report(self, report: dict[str, Any]) -> None:
        tmp = self.out / (REPORT + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, self.out / REPORT)


def _at(d: Mapping[str, Any], dotted: str) -> Any:
    head, _, rest = dotted.partition(".")
    value = d.get(head)
    return value.get(rest) if rest and isinstance(value, dict) else value


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that produce the numbers (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("embodied", "torch", "transformers", "pybullet", "gymnasium"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def file_hashes(folders: Sequence[str | Path]) -> dict[str, str]:
    """sha256 of every file in the given checkpoint folders (or files), keyed by path."""
    out: dict[str, str] = {}
    for folder in folders:
        p = Path(folder)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p] if p.is_file() else []
        for f in files:
            h = hashlib.sha256()
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out[str(f)] = h.hexdigest()
    return out


def result_row(result: EpisodeResult) -> dict[str, Any]:
    """One `results.jsonl` line: the summary without the per-option trace. A task that expects ``cannot``
    counts as solved only when it was refused before any motion."""
    row = result.summary()
    row["n_skill_failures"] = sum(not s["result"]["success"] for s in row["steps"])
    if result.task.expect == "cannot":
        row["expect"], row["why"] = "cannot", result.task.why
        row["false_success"] = row["outcome"] == "success"
        row["success"] = row["outcome"] == "cannot" and not row["steps"]
    return row


def recorded_row(result: EpisodeResult, recording: RecordSpec | None) -> dict[str, Any]:
    """`result_row`, and with ``recording`` the episode written (`embodied.runtime.recording`) and its
    summary under ``recorded``."""
    row = result_row(result)
    if recording is not None:
        from embodied.runtime.recording import write_episode

        row["recorded"] = write_episode(recording, result.recording)
    return row


def capture_for(env: TabletopEnv, recording: RecordSpec | None) -> Any:
    """What records an episode of ``env`` for ``recording`` (None: nothing)."""
    if recording is None:
        return None
    from envs.record import FrameCapture

    return FrameCapture(env, recording.fps)


Episodes = Callable[[Sequence[Task]], Iterator[tuple[Task, dict[str, Any]]]]


def evaluate(tasks: Sequence[Task], planner: Planner, out: str | Path | EvalFolder, env: TabletopEnv,
             on_episode: Callable[[dict[str, Any]], None] | None = None, resume: bool = True,
             sensing: Sensing | None = None, reader: GoalReader | None = None,
             infer_goal: bool = False, describe: Mapping[str, Any] | None = None,
             record: Mapping[str, Any] | None = None, episodes: Episodes | None = None,
             recording: RecordSpec | None = None) -> dict[str, Any]:
    """Run every task not already done (rows matching the task and config hashes, when resuming) and write
    the report -- also when interrupted (SIGINT, SIGTERM as KeyboardInterrupt) or failing: it then covers
    what finished (``complete: false``). ``describe`` is the agent's resolved configuration (`Agent.describe`);
    ``record`` adds to ``config.json``. ``out`` may be an `EvalFolder` the caller already holds.
    ``episodes`` runs the tasks elsewhere (`embodied.runtime.rollouts.LocalWorkers.run`), yielding each
    task's row as it finishes; rows are written in that order. Default: one after another, in this process.
    ``recording`` writes every episode as data (`embodied.runtime.recording`; ``episodes`` must record
    the same way); the report's ``recording`` says what was written and checked."""
    if describe is None:
        describe = _describe(planner, sensing, infer_goal)

    def here(todo: Sequence[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        for task in todo:
            result = run_episode(env, task, planner, sensing=sensing, reader=reader, infer_goal=infer_goal,
                                 capture=capture_for(env, recording))
            yield task, recorded_row(result, recording)

    broken: EmbodiedError | None = None
    with _held(out) as folder:
        done = folder.start(tasks, describe, resume, record)
        if recording is not None:
            from embodied.runtime.recording import missing_recordings

            unrecorded = missing_recordings(list(done.values()), recording)
            if unrecorded:
                raise EvalFolderError(f"{len(unrecorded)} finished tasks in {folder.out} were not recorded as "
                                      f"{recording.format} (e.g. {unrecorded[0]}); record into a new folder, "
                                      "or start over with --fresh")
        chash = config_hash(describe)
        rows = [done[t.id] for t in tasks if t.id in done]
        complete = False
        try:
            for task, row in (episodes or here)([t for t in tasks if t.id not in done]):
                row["task_hash"], row["config_hash"] = task_hash(task), chash
                with _signals_held():  # the file and the report's rows never disagree by one
                    folder.append(row)
                    rows.append(row)
                if on_episode:
                    on_episode(row)
            complete = True
        finally:
            with _signals_held():  # a second Ctrl-C does not cut the report short
                report = make_report(rows)
                report["tasks"], report["complete"] = len(tasks), complete
                if recording is not None:
                    report["recording"], broken = _finish_recording(recording, tasks, rows)
                folder.write_report(report)
            if not complete:
                log.warning("stopped after %d of %d tasks; %s/%s covers those", len(rows), len(tasks),
                            folder.out, REPORT)
    if broken is not None:
        raise broken  # the report and every row are written first
    return report


def _finish_recording(recording: RecordSpec, tasks: Sequence[Task], rows: Sequence[dict[str, Any]]
                      ) -> tuple[dict[str, Any], EmbodiedError | None]:
    """`recording.finish`, with a failed check reported (``checked: false``) and returned to raise later."""
    from embodied.runtime.recording import finish

    try:
        return finish(recording, tasks, rows), None
    except EmbodiedError as e:
        log.error("the recording failed its check: %s", e)
        return {"format": recording.format, "root": str(recording.root), "checked": False, "error": str(e)}, e


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (are delivered right after) while a row or the report is written."""
    import signal

    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def _held(out: str | Path | EvalFolder) -> Iterator[EvalFolder]:
    """The caller's held folder, or one locked for this call."""
    if isinstance(out, EvalFolder):
        out.lock()  # a no-op when already held
        yield out
        return
    with EvalFolder(out) as folder:
        yield folder


def _describe(planner: Planner, sensing: Sensing | None, infer_goal: bool) -> dict[str, Any]:
    """What an eval without an `Agent` records: the planner, its config and the sensing sources."""
    import dataclasses

    config = getattr(planner, "config", None)
    return {"planner": getattr(planner, "name", type(planner).__name__),
            **(sensing.describe() if sensing is not None else {}), "infer_goal": infer_goal,
            "planner_config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}}


def make_report(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success rates overall and per family, failure reasons (episode outcomes and skill failures). Every
    rate ``r`` comes with ``r_n`` (its trials) and ``r_ci95`` (95 % Wilson interval), so a number is read
    with its uncertainty."""
    n = len(rows)
    by_family: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_family[r.get("family") or "unknown"].append(r)
    reasons = Counter(r["reason"] for r in rows if not r["success"])
    skill_reasons = Counter(s["result"]["reason"] for r in rows for s in r["steps"] if not s["result"]["success"])
    n_calls = sum(len(r["steps"]) for r in rows)
    report: dict[str, Any] = {"n": n}
    _rate(report, "execution_success", sum(bool(r["success"]) for r in rows), n)
    report |= {
        "outcomes": dict(Counter(r["outcome"] for r in rows)),
        "per_family": {f: _rate({"n": len(v)}, "execution_success", sum(bool(r["success"]) for r in v), len(v))
                       for f, v in sorted(by_family.items())},
        "failure_reasons": dict(reasons.most_common()),
        "skill_calls": n_calls,
        "skill_failure_reasons": dict(skill_reasons.most_common()),
    }
    _rate(report, "skill_success_rate", n_calls - sum(skill_reasons.values()), n_calls)
    report["mean_steps"] = round(sum(len(r["steps"]) for r in rows) / n, 3) if n else 0.0
    report["mean_seconds"] = round(sum(r["seconds"] for r in rows) / n, 3) if n else 0.0
    planned = [r["planning_success"] for r in rows if "planning_success" in r]
    if planned:
        _rate(report, "planning_success", sum(bool(v) for v in planned), len(planned))
    for key in ("llm_calls", "llm_tokens", "seconds_per_step"):
        vals = [r[key] for r in rows if key in r]
        if vals:
            name = {"llm_calls": "llm_calls_per_episode", "llm_tokens": "llm_tokens_per_episode"}.get(key, key)
            report[name] = round(sum(vals) / len(vals), 4)
    solved = [r for r in rows if r["success"] and "llm_calls" in r]
    if solved:
        report["llm_calls_per_solved_task"] = round(sum(r["llm_calls"] for r in solved) / len(solved), 4)
    used = [r for r in rows if r.get("library_skills")]
    if used:
        report["episodes_using_library"] = len(used)
    read = [r for r in rows if "goal_correct" in r]
    if read:  # `eval --infer-goal`: the goal read from the instruction against the file's goal, up to order
        _rate(report, "goal_inference_accuracy", sum(bool(r["goal_correct"]) for r in read), len(read))
        report["goal_inference_n"] = len(read)
    refuse = [r for r in rows if r.get("expect") == "cannot"]
    if refuse:
        refused = sum(bool(r["success"]) for r in refuse)
        report["refusals"] = _rate({"n": len(refuse), "refused": refused,
                                    "false_successes": sum(bool(r.get("false_success")) for r in refuse),
                                    "moved_before_refusing": sum(bool(r["steps"]) for r in refuse)},
                                   "refusal_rate", refused, len(refuse))
    report["false_successes"] = sum(bool(r.get("false_success")) for r in rows)
    return report


def _rate(report: dict[str, Any], name: str, successes: int, n: int) -> dict[str, Any]:
    """Set ``name`` (the rate, 0.0 without trials), ``name_n`` and ``name_ci95`` in ``report``; returns it."""
    report[name] = round(successes / n, 4) if n else 0.0
    report[f"{name}_n"] = n
    report[f"{name}_ci95"] = wilson(successes, n)
    return report
