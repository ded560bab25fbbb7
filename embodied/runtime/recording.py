"""Episodes as data: `embodied record` and `eval --record FORMAT`.

Whichever process runs an episode (this one, a local worker, a Ray actor) writes it at once: an MCAP log
(`mcap_format`) in its final place, or a LeRobot episode into ``.staging/`` (`lerobot_format`). When the run
ends, or is interrupted, `finish` assembles the staged episodes in task order into a LeRobot v3.0 dataset
and checks everything that was written; a failed check raises."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embodied.world.errors import EmbodiedError
from embodied.world.recording import EpisodeFrames, check_fps
from embodied.world.tasks import Task

log = logging.getLogger(__name__)

FORMATS = ("lerobot", "mcap")
STAGING = ".staging"


@dataclass(frozen=True)
class RecordSpec:
    """Where and how episodes are recorded: ``format`` (`FORMATS`), the output ``root``, frames per simulated
    second, and the LeRobot ``repo_id`` written into the dataset's metadata."""

    format: str
    root: Path
    fps: int = 10
    repo_id: str = "embodied/tabletop"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise EmbodiedError(f"unknown recording format {self.format!r}; formats: {', '.join(FORMATS)}")
        check_fps(self.fps)
        object.__setattr__(self, "root", Path(self.root))

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "root": str(self.root), "fps": self.fps, "repo_id": self.repo_id}


def episode_name(task_id: str) -> str:
    """A file name for a task's episode (task ids are free text)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", task_id).strip("._") or "episode"


def write_episode(spec: RecordSpec, frames: EpisodeFrames) -> dict[str, Any]:
    """Write one episode where `finish` will find it; the summary goes into the task's results row."""
    name = episode_name(frames.task_id)
    if spec.format == "mcap":
        from embodied.runtime.mcap_format import write_mcap

        return {"format": "mcap", **write_mcap(frames, spec.root / f"{name}.mcap")}
    from embodied.runtime.lerobot_format import stage_episode

    return {"format": "lerobot", **stage_episode(frames, spec.root / STAGING / name)}


def missing_recordings(rows: Sequence[dict[str, Any]], spec: RecordSpec) -> list[str]:
    """Ids of finished tasks whose episode was not recorded in this format (they would be missing)."""
    return [r["id"] for r in rows if (r.get("recorded") or {}).get("format") != spec.format]


def finish(spec: RecordSpec, tasks: Sequence[Task], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """After the run: the recorded episodes of the finished ``rows`` in ``tasks``' order, assembled (LeRobot)
    and checked. Returns what the report says of the recording."""
    done = {r["id"]: r for r in rows if r.get("recorded")}
    order = [t.id for t in tasks if t.id in done]
    if spec.format == "mcap":
        from embodied.runtime.mcap_format import FORMAT_VERSION, check_mcap

        files = []
        for task_id in order:
            recorded = done[task_id]["recorded"]
            check_mcap(spec.root / recorded["file"], recorded)
            files.append(recorded["file"])
        size = sum((spec.root / f).stat().st_size for f in files)
        return {"format": "mcap", "format_version": FORMAT_VERSION, "root": str(spec.root), "episodes": len(files),
                "frames": sum(done[t]["recorded"]["frames"] for t in order), "bytes": size,
                "bytes_per_episode": round(size / max(len(files), 1)), "checked": True}
    from embodied.runtime.lerobot_format import assemble, check_dataset

    staged = [spec.root / STAGING / episode_name(t) for t in order]
    assemble(spec.root, staged, fps=spec.fps, repo_id=spec.repo_id)
    summary = check_dataset(spec.root)
    return {"format": "lerobot", "root": str(spec.root), **summary, "checked": True}


def replay(path: Path, step: int, episode: int = 0) -> dict[str, Any]:
    """Restore the simulation after skill call ``step`` (from 1) of a recording and compare every object's
    position with the recorded one (`episode.restore_state`). ``path``: an MCAP log, a LeRobot dataset
    (``episode`` picks the episode), or a run folder of `embodied run --states`."""
    from embodied.runtime.episode import replay_run, restore_state

    if path.suffix == ".mcap":
        from embodied.runtime.mcap_format import read_state

        task, size, state, then = read_state(path, step)
    elif (path / "meta" / "info.json").is_file():
        from embodied.runtime.lerobot_format import read_state

        task, size, state, then = read_state(path, episode, step)
    else:
        return replay_run(path, step)
    return restore_state(Task.from_dict(task, where=f"{path}: task"), size, state, then)
