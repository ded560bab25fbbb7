"""Episodes as a LeRobot dataset, format v3.0, written with pyarrow and ffmpeg (H.264) -- the ``lerobot``
package itself is not needed (it is an 8 GB install with a CUDA torch).

Layout (one data file and one video file per episode, which the format allows)::

    meta/info.json  meta/stats.json  meta/tasks.parquet  meta/episodes/chunk-000/file-000.parquet
    data/chunk-000/file-000.parquet ...  videos/observation.images.top/chunk-000/file-000.mp4 ...
    states/episode_000000/state_after_call_001.bullet ...  (ours, for `embodied replay`; LeRobot ignores it)

Each process stages an episode (`stage_episode`: its rows, one mp4 per camera and its statistics); `assemble`
numbers the staged episodes in task order and writes the metadata; `check_dataset` validates what is on disk
(frame counts of every video equal its episode's rows, timestamps, totals, format version)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.recording import STATE_NAMES, EpisodeFrames

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
ROBOT_TYPE = "panda"
CAMERAS = ("top", "side")
DEPTH = "observation.depth.top"  # millimetres, uint16 (0: nothing within range)
# encoder, codec name as readers report it, pixel format: full-resolution chroma (4:4:4) at the same size as
# 4:2:0 here, and 5x lower error on coloured edges, which are much of a 128 px table render (some browsers'
# players cannot show 4:4:4; LeRobot, PyAV and ffmpeg can)
VIDEO_CODEC = ("libx264", "h264", "yuv444p")
STATES_DIR = "states/episode_{episode_index:06d}"  # not part of LeRobot's format: `embodied replay` reads it
STATE_FILE = "state_after_call_{k:03d}.bullet"
_CRF = "10"  # near-lossless: decoded colours within a level or two of the rendered ones on average


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


def features(height: int, width: int, fps: int, action_names: Sequence[str]) -> dict[str, Any]:
    """``info.json``'s features: the two cameras as videos, depth, proprioception, action, and the index columns."""
    video_info = {"video.height": height, "video.width": width, "video.codec": VIDEO_CODEC[1],
                  "video.pix_fmt": VIDEO_CODEC[2], "video.is_depth_map": False, "video.fps": fps,
                  "video.channels": 3, "has_audio": False}
    out: dict[str, Any] = {
        image_key(c): {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
                       "info": dict(video_info)} for c in CAMERAS}
    out[DEPTH] = {"dtype": "uint16", "shape": [height, width], "names": ["height", "width"]}
    out["observation.state"] = {"dtype": "float32", "shape": [len(STATE_NAMES)], "names": list(STATE_NAMES)}
    out["action"] = {"dtype": "float32", "shape": [len(action_names)], "names": list(action_names)}
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        out[name] = {"dtype": "float32" if name == "timestamp" else "int64", "shape": [1], "names": None}
    return out


def _stats(array: np.ndarray, axis: int | tuple[int, ...], keepdims: bool = False) -> dict[str, Any]:
    a = array.astype(np.float64)
    out = {"min": a.min(axis=axis, keepdims=keepdims), "max": a.max(axis=axis, keepdims=keepdims),
           "mean": a.mean(axis=axis, keepdims=keepdims), "std": a.std(axis=axis, keepdims=keepdims),
           "count": np.asarray([array.shape[0]])}
    for q in QUANTILES:
        out[f"q{round(q * 100):02d}"] = np.quantile(a, q, axis=axis, keepdims=keepdims)
    return out


def _image_stats(images: np.ndarray) -> dict[str, Any]:
    """Per-channel statistics in [0, 1], shape (3, 1, 1), from up to 100 evenly spaced frames (as LeRobot)."""
    n = len(images)
    idx = np.round(np.linspace(0, n - 1, min(n, 100))).astype(int)
    chw = images[idx].transpose(0, 3, 1, 2).astype(np.float64) / 255.0
    stats = _stats(chw, axis=(0, 2, 3), keepdims=True)
    return {k: (v[0] if k != "count" else np.asarray([n])) for k, v in stats.items()}


def _depth_stats(depth_mm: np.ndarray) -> dict[str, Any]:
    """Statistics over every pixel of every frame, shape (1, 1) (they broadcast over the image, as the
    cameras' per-channel ones do; per-pixel ones would make the metadata grow by 100 KB per episode)."""
    stats = _stats(depth_mm.reshape(-1, 1, 1), axis=0)
    stats["count"] = np.asarray([len(depth_mm)])
    return stats


def _encode(images: np.ndarray, path: Path, fps: int) -> None:
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, codec=VIDEO_CODEC[0], macro_block_size=1, pixelformat=VIDEO_CODEC[2],
                            ffmpeg_log_level="error", output_params=["-crf", _CRF, "-g", str(fps)]) as writer:
        for frame in images:
            writer.append_data(frame)


def stage_episode(frames: EpisodeFrames, folder: Path) -> dict[str, Any]:
    """One episode's rows (``data.parquet``, indices local to the episode), one mp4 per camera and its
    statistics (``episode.json``), in ``folder``; the summary for the results row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, fps = len(frames), frames.fps
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    depth_mm = np.clip(np.round(frames.depth["top"] * 1000.0), 0, 65535).astype(np.uint16)
    h, w = depth_mm.shape[1:]
    columns = {
        DEPTH: pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(depth_mm.reshape(-1)), w), h),
        "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(frames.state.reshape(-1)),
                                                               frames.state.shape[1]),
        "action": pa.FixedSizeListArray.from_arrays(pa.array(frames.action.reshape(-1)), frames.action.shape[1]),
        "timestamp": pa.array(frames.timestamps.astype(np.float32)),
        "frame_index": pa.array(np.arange(n, dtype=np.int64)),
        "episode_index": pa.array(np.zeros(n, np.int64)),
        "index": pa.array(np.arange(n, dtype=np.int64)),
        "task_index": pa.array(np.zeros(n, np.int64)),
    }
    pq.write_table(pa.table(columns), tmp / "data.parquet", compression="zstd")
    for camera in CAMERAS:
        _encode(frames.images[camera], tmp / f"{camera}.mp4", fps)
    for k, state in enumerate(frames.sim_states, 1):
        (tmp / STATE_FILE.format(k=k)).write_bytes(state)
    stats = {image_key(c): _image_stats(frames.images[c]) for c in CAMERAS}
    stats[DEPTH] = _depth_stats(depth_mm)
    stats["observation.state"] = _stats(frames.state, axis=0)
    stats["action"] = _stats(frames.action, axis=0)
    for name, values in (("timestamp", frames.timestamps), ("frame_index", np.arange(n))):
        stats[name] = _stats(values.reshape(n, 1), axis=0)
    meta = {"task_id": frames.task_id, "instruction": frames.instruction, "length": n, "fps": fps,
            "height": int(h), "width": int(w), "action_names": list(frames.action_names),
            "success": frames.success, "outcome": frames.outcome, "calls": frames.calls, "task": frames.task,
            "image_size": frames.image_size, "state_poses": frames.state_poses,
            "stats": _jsonable(stats)}
    (tmp / "episode.json").write_text(json.dumps(meta))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    size = sum(f.stat().st_size for f in folder.iterdir())
    return {"frames": n, "bytes": size}


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()}


def _aggregate(per_episode: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Dataset statistics from the episodes': exact min, max, mean and std; quantiles weighted by frames
    (LeRobot's rule)."""
    out: dict[str, dict[str, Any]] = {}
    for key in per_episode[0]:
        eps = [{s: np.asarray(v, np.float64) for s, v in e[key].items()} for e in per_episode]
        counts = np.asarray([e["count"][0] for e in eps], np.float64)
        total = counts.sum()
        shape = (-1,) + (1,) * eps[0]["mean"].ndim
        w = counts.reshape(shape)
        means = np.stack([e["mean"] for e in eps])
        mean = (means * w).sum(0) / total
        var = ((np.stack([e["std"] for e in eps]) ** 2 + (means - mean) ** 2) * w).sum(0) / total
        agg = {"min": np.min([e["min"] for e in eps], 0), "max": np.max([e["max"] for e in eps], 0),
               "mean": mean, "std": np.sqrt(var), "count": np.asarray([int(total)])}
        for q in (k for k in eps[0] if k.startswith("q")):
            agg[q] = (np.stack([e[q] for e in eps]) * w).sum(0) / total
        out[key] = {s: v.tolist() for s, v in agg.items()}
    return out


def _chunked(kind: str, index: int, key: str | None = None) -> str:
    chunk, file = divmod(index, CHUNKS_SIZE)
    base = f"videos/{key}" if kind == "videos" else kind
    return f"{base}/chunk-{chunk:03d}/file-{file:03d}.{'mp4' if kind == 'videos' else 'parquet'}"


def _tasks_table(tasks: list[str]) -> Any:
    """``meta/tasks.parquet`` as pandas writes ``DataFrame({"task_index": ...}, index=tasks)``: LeRobot reads
    it with ``pandas.read_parquet`` and looks tasks up by the index."""
    import pyarrow as pa

    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {"index_columns": ["task"], "column_indexes": [],
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                "numpy_type": "int64", "metadata": None},
                               {"name": "task", "field_name": "task", "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}],
                   "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def assemble(root: Path, staged: Sequence[Path], fps: int, repo_id: str) -> None:
    """Number the staged episodes 0..N-1 in the given order and write the dataset at ``root`` (``data/``,
    ``videos/``, ``meta/`` are rebuilt; videos are hard links to the staged files, or copies)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for part in ("data", "videos", "meta", "states"):
        shutil.rmtree(root / part, ignore_errors=True)
    if not staged:
        return
    metas = [json.loads((s / "episode.json").read_text()) for s in staged]
    first = metas[0]
    tasks: dict[str, int] = {}
    episodes: list[dict[str, Any]] = []
    offset = 0
    for k, (folder, meta) in enumerate(zip(staged, metas, strict=True)):
        n = meta["length"]
        if (meta["height"], meta["width"], meta["fps"]) != (first["height"], first["width"], fps):
            raise EmbodiedError(f"episode {meta['task_id']} was recorded at {meta['width']}x{meta['height']} px, "
                                f"{meta['fps']} fps; the others at {first['width']}x{first['height']}, {fps}")
        task_index = tasks.setdefault(meta["instruction"], len(tasks))
        table = pq.read_table(folder / "data.parquet")
        table = table.set_column(table.schema.get_field_index("episode_index"), "episode_index",
                                 pa.array(np.full(n, k, np.int64)))
        table = table.set_column(table.schema.get_field_index("index"), "index",
                                 pa.array(np.arange(offset, offset + n, dtype=np.int64)))
        table = table.set_column(table.schema.get_field_index("task_index"), "task_index",
                                 pa.array(np.full(n, task_index, np.int64)))
        path = root / _chunked("data", k)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
        chunk, file = divmod(k, CHUNKS_SIZE)
        row: dict[str, Any] = {"episode_index": k, "tasks": [meta["instruction"]], "length": n,
                               "data/chunk_index": chunk, "data/file_index": file,
                               "dataset_from_index": offset, "dataset_to_index": offset + n}
        for camera in CAMERAS:
            key = image_key(camera)
            target = root / _chunked("videos", k, key)
            target.parent.mkdir(parents=True, exist_ok=True)
            _link(folder / f"{camera}.mp4", target)
            row.update({f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file,
                        f"videos/{key}/from_timestamp": 0.0, f"videos/{key}/to_timestamp": n / fps})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        states = root / STATES_DIR.format(episode_index=k)
        states.mkdir(parents=True)
        for j in range(1, len(meta["state_poses"]) + 1):
            _link(folder / STATE_FILE.format(k=j), states / STATE_FILE.format(k=j))
        (states / "episode.json").write_text(json.dumps(
            {"task": meta["task"], "image_size": meta["image_size"], "state_poses": meta["state_poses"]}))
        for key, stats in meta["stats"].items():
            for name, value in stats.items():
                row[f"stats/{key}/{name}"] = value
        row.update({"embodied/task_id": meta["task_id"], "embodied/success": meta["success"],
                    "embodied/outcome": meta["outcome"], "embodied/skill_calls": json.dumps(meta["calls"])})
        episodes.append(row)
        offset += n
    (root / "meta/episodes/chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episodes), root / "meta/episodes/chunk-000/file-000.parquet")
    pq.write_table(_tasks_table(list(tasks)), root / "meta/tasks.parquet")
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": ROBOT_TYPE, "total_episodes": len(episodes),
            "total_frames": offset, "total_tasks": len(tasks), "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
            "splits": {"train": f"0:{len(episodes)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": features(first["height"], first["width"], fps, first["action_names"]),
            "embodied": {"repo_id": repo_id, "depth_unit": "mm"}}
    (root / "meta/info.json").write_text(json.dumps(info, indent=2))
    (root / "meta/stats.json").write_text(json.dumps(_aggregate([m["stats"] for m in metas]), indent=None))


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def read_state(root: Path, episode: int, step: int) -> tuple[dict[str, Any], int, bytes, dict[str, list[float]]]:
    """From a dataset `assemble` wrote: episode ``episode``'s task, image size, the simulation after its
    skill call ``step`` and every object's pose then (for `embodied replay`)."""
    folder = root / STATES_DIR.format(episode_index=episode)
    if not (folder / "episode.json").is_file():
        raise EmbodiedError(f"{root} has no episode {episode} with saved states (states/ is written by "
                            "`embodied record --format lerobot`)")
    meta = json.loads((folder / "episode.json").read_text())
    poses = meta["state_poses"]
    if not 1 <= step <= len(poses):
        raise EmbodiedError(f"episode {episode} of {root} has no state after skill call {step}; it has 1..{len(poses)}")
    return meta["task"], meta["image_size"], (folder / STATE_FILE.format(k=step)).read_bytes(), poses[step - 1]


def count_video_frames(path: Path) -> int:
    """Frames in a video, by decoding it (ffmpeg)."""
    import imageio_ffmpeg

    try:
        return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
    except (RuntimeError, OSError) as e:
        raise EmbodiedError(f"{path}: not a readable video ({e})") from None


def check_dataset(root: Path) -> dict[str, Any]:
    """Validate a dataset on disk: format version, every episode's rows (contiguous indices, timestamps
    ``frame_index / fps``), every video's decoded frame count equal to its episode's rows, and the totals of
    ``info.json``. Raises `EmbodiedError` naming the first thing wrong; returns the totals and sizes."""
    import pyarrow.parquet as pq

    def fail(what: str) -> None:
        raise EmbodiedError(f"LeRobot dataset {root}: {what}")

    info_file = root / "meta/info.json"
    if not info_file.is_file():
        fail("no meta/info.json")
    info = json.loads(info_file.read_text())
    if info.get("codebase_version") != CODEBASE_VERSION:
        fail(f"codebase_version {info.get('codebase_version')!r}, expected {CODEBASE_VERSION!r}")
    fps = info["fps"]
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    tasks = pq.read_table(root / "meta/tasks.parquet").column("task").to_pylist()
    video_keys = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    total, video_bytes = 0, 0
    for k, ep in enumerate(episodes):
        if ep["episode_index"] != k:
            fail(f"episode {k} is numbered {ep['episode_index']}")
        data = pq.read_table(root / info["data_path"].format(chunk_index=ep["data/chunk_index"],
                                                             file_index=ep["data/file_index"]))
        n = data.num_rows
        if n != ep["length"] or ep["dataset_from_index"] != total or ep["dataset_to_index"] != total + n:
            fail(f"episode {k}: {n} rows, metadata says {ep['length']} from index {ep['dataset_from_index']}")
        frame_index = np.asarray(data.column("frame_index").to_pylist())
        stamps = np.asarray(data.column("timestamp").to_pylist(), np.float64)
        index = np.asarray(data.column("index").to_pylist())
        if not (np.array_equal(frame_index, np.arange(n)) and np.array_equal(index, np.arange(total, total + n))):
            fail(f"episode {k}: frame or dataset indices are not contiguous")
        if np.any(np.diff(stamps) <= 0) or np.max(np.abs(stamps - frame_index / fps)) > 1e-4:
            fail(f"episode {k}: timestamps are not frame_index / fps, increasing")
        if set(data.column("episode_index").to_pylist()) != {k}:
            fail(f"episode {k}: rows carry another episode_index")
        for key in video_keys:
            video = root / info["video_path"].format(video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                                                     file_index=ep[f"videos/{key}/file_index"])
            frames = count_video_frames(video)
            if frames != n:
                fail(f"episode {k}: {video.relative_to(root)} has {frames} frames for {n} rows")
            video_bytes += video.stat().st_size
        total += n
    if (info["total_frames"], info["total_episodes"], info["total_tasks"]) != (total, len(episodes), len(tasks)):
        fail(f"info.json totals {info['total_frames']} frames, {info['total_episodes']} episodes, "
             f"{info['total_tasks']} tasks; on disk {total}, {len(episodes)}, {len(tasks)}")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and ".staging" not in f.parts)
    return {"codebase_version": CODEBASE_VERSION, "episodes": len(episodes), "frames": total, "tasks": len(tasks),
            "fps": fps, "bytes": size, "bytes_per_episode": round(size / max(len(episodes), 1)),
            "video_bytes": video_bytes}
