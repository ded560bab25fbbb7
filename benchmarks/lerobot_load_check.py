"""Load a dataset `embodied record --format lerobot` wrote with LeRobot itself, and compare what it decodes
with the raw frames of MCAP logs of the same tasks (`embodied record --format mcap`; same seeds, same
episodes). Run it in a throwaway venv that has ``lerobot`` (it is not a dependency of embodied):

    python3.11 -m venv /tmp/lerobot-venv
    /tmp/lerobot-venv/bin/pip install torch==2.9.1 torchvision==0.24.1
    /tmp/lerobot-venv/bin/pip install --no-deps lerobot==0.4.4
    /tmp/lerobot-venv/bin/pip install 'datasets>=4,<5' 'huggingface-hub>=0.34.2,<0.36' 'av>=15,<16' \\
        'jsonlines>=4,<5' 'packaging>=24.2,<26' 'einops>=0.8,<0.9' draccus==0.10.0 'deepdiff>=7.0.1,<9' \\
        'termcolor>=2.4,<4' 'imageio>=2.34,<3' 'gymnasium>=1.1.1,<2' 'accelerate>=1.10,<2' pandas pyarrow \\
        mcap mcap-ros2-support
    /tmp/lerobot-venv/bin/python benchmarks/lerobot_load_check.py DATASET [--mcap FOLDER]

Prints one JSON object: what LeRobot loaded (frames, episodes, tasks, fps, features) and, with ``--mcap``,
the largest differences between decoded and recorded frames (colour levels and PSNR, depth mm, joint
positions) at the first,
middle and last frame of every episode. Exits 1 when loading fails or a frame differs beyond codec error."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"  # a local dataset; LeRobot must not reach for the Hub
os.environ["HF_DATASETS_OFFLINE"] = "1"
_CACHE = tempfile.mkdtemp(prefix="lerobot-check-")
os.environ["HF_DATASETS_CACHE"] = _CACHE  # no stale arrow cache of an earlier dataset at the same path

MIN_PSNR_DB = 35.0  # H.264 at CRF 10, 4:4:4 (`lerobot_format.VIDEO_CODEC`): visually lossless
MAX_MEAN_COLOUR_ERROR = 2.0


def mcap_frames(path: str, frames: list[int]) -> dict[int, dict]:
    """Raw top/side colour, top depth (m) and joint positions of the given frames of one log."""
    import numpy as np
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    topics = {"/camera/top/image_raw": "top", "/camera/side/image_raw": "side", "/camera/top/depth": "depth",
              "/joint_states": "joints"}
    seen: dict[str, int] = dict.fromkeys(topics.values(), 0)
    out: dict[int, dict] = {f: {} for f in frames}
    with open(path, "rb") as f:
        decoded = list(make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages(
            topics=list(topics), log_time_order=False))
    for _, channel, _, msg in decoded:
        key = topics[channel.topic]
        i = seen[key]
        seen[key] += 1
        if i not in out:
            continue
        if key == "joints":
            out[i][key] = np.asarray(msg.position)
        elif key == "depth":
            out[i][key] = np.frombuffer(bytes(msg.data), "<f4").reshape(msg.height, msg.width)
        else:
            out[i][key] = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--mcap", help="folder of MCAP logs of the same tasks")
    parser.add_argument("--repo-id", default="embodied/tabletop")
    args = parser.parse_args()

    import numpy as np
    import pyarrow.parquet as pq
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    try:
        ds = LeRobotDataset(args.repo_id, root=args.dataset, video_backend="pyav")
        report = {"lerobot": __import__("importlib.metadata").metadata.version("lerobot"),
                  "codebase_version": ds.meta.info["codebase_version"], "frames": ds.num_frames,
                  "rows_read": len(ds.hf_dataset), "episodes": ds.num_episodes,
                  "tasks": len(ds.meta.tasks), "fps": ds.fps, "camera_keys": list(ds.meta.camera_keys)}
        first = ds[0]
        report["item0"] = {k: list(v.shape) for k, v in first.items() if hasattr(v, "shape")}
        report["item0_task"] = first["task"]
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"loaded": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    report["loaded"] = True
    ok = report["rows_read"] == report["frames"]
    if args.mcap:
        episodes = pq.read_table(os.path.join(args.dataset, "meta/episodes/chunk-000/file-000.parquet")).to_pylist()
        worst = {"colour_max": 0, "colour_mean": 0.0, "psnr_db_min": 99.0, "depth_mm": 0.0, "joints": 0.0,
                 "compared": 0}
        for ep in episodes:
            n, start = ep["length"], ep["dataset_from_index"]
            picks = sorted({0, n // 2, n - 1})
            raw = mcap_frames(os.path.join(args.mcap, f"{ep['embodied/task_id']}.mcap"), picks)
            for f in picks:
                item = ds[start + f]
                for cam in ("top", "side"):
                    img = item[f"observation.images.{cam}"].numpy().transpose(1, 2, 0)
                    decoded = np.clip(np.round(img * 255), 0, 255).astype(np.int16)
                    err = np.abs(decoded - raw[f][cam].astype(np.int16))
                    worst["colour_max"] = max(worst["colour_max"], int(err.max()))
                    worst["colour_mean"] = max(worst["colour_mean"], float(err.mean()))
                    mse = float((err.astype(np.float64) ** 2).mean())
                    worst["psnr_db_min"] = min(worst["psnr_db_min"], float(10 * np.log10(255**2 / max(mse, 1e-12))))
                depth = item["observation.depth.top"].numpy().astype(np.float64)
                worst["depth_mm"] = max(worst["depth_mm"], float(np.abs(depth - raw[f]["depth"] * 1000).max()))
                joints = item["observation.state"].numpy()[:7].astype(np.float64)
                worst["joints"] = max(worst["joints"], float(np.abs(joints - raw[f]["joints"]).max()))
                worst["compared"] += 1
        report["against_mcap"] = worst
        ok = ok and worst["psnr_db_min"] >= MIN_PSNR_DB and worst["colour_mean"] <= MAX_MEAN_COLOUR_ERROR \
            and worst["depth_mm"] <= 0.5 and worst["joints"] <= 1e-6
    report["ok"] = bool(ok)
    print(json.dumps(report))
    shutil.rmtree(_CACHE, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
