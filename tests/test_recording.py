"""Episodes as data: a LeRobot v3.0 dataset and MCAP logs that check themselves, frames evenly spaced in
simulated time, recording that does not change the episode, and replay of a recorded skill boundary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from embodied.cli import main
from embodied.runtime.agent import Agent
from embodied.runtime.lerobot_format import check_dataset, count_video_frames
from embodied.runtime.mcap_format import TOPICS, check_mcap, read_messages
from embodied.runtime.recording import RecordSpec, replay
from embodied.world.errors import EmbodiedError
from embodied.world.recording import STATE_NAMES
from embodied.world.tasks import save_tasks
from envs.generator import generate
from envs.record import FrameCapture
from envs.sim import COMMAND_NAMES

FAST = dict(planner="oracle", state="ground-truth", affordance="analytic", success="analytic", library=None)
TASKS = [generate("block_in_bowl", 1), generate("block_on_block", 4)]
DEFAULT_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                    "task_index": "int64"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, object]:
    """The two tasks recorded both ways by one agent, and the reports."""
    root = tmp_path_factory.mktemp("rec")
    with Agent.from_config(**FAST) as agent:
        lerobot = agent.evaluate(TASKS, root / "lr", recording=RecordSpec("lerobot", root / "lr"))
        mcap = agent.evaluate(TASKS, root / "mc", recording=RecordSpec("mcap", root / "mc"))
    return {"root": root, "lerobot": lerobot, "mcap": mcap}


def test_the_lerobot_dataset_follows_the_v3_layout(recorded) -> None:
    root = recorded["root"] / "lr"
    report = recorded["lerobot"]["recording"]
    assert report["checked"] and report["episodes"] == 2 and report["codebase_version"] == "v3.0"
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["total_episodes"] == 2
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    feats = info["features"]
    for name, dtype in DEFAULT_FEATURES.items():
        assert feats[name]["dtype"] == dtype and feats[name]["shape"] == [1]
    assert feats["observation.state"]["names"] == list(STATE_NAMES)
    assert feats["action"]["names"] == list(COMMAND_NAMES)
    videos = [k for k, f in feats.items() if f["dtype"] == "video"]
    assert videos == ["observation.images.top", "observation.images.side"]
    assert all(feats[k]["info"]["video.codec"] == "h264" for k in videos)
    # data files hold exactly the features that are not videos, in global index order
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    total = 0
    for k, ep in enumerate(episodes):
        data = pq.read_table(root / f"data/chunk-000/file-{k:03d}.parquet")
        assert set(data.column_names) == {n for n, f in feats.items() if f["dtype"] != "video"}
        assert data.column("index").to_pylist() == list(range(total, total + ep["length"]))
        assert ep["episode_index"] == k and ep["dataset_from_index"] == total
        assert ep["tasks"] == [TASKS[k].instruction] and ep["embodied/task_id"] == TASKS[k].id
        for key in videos:
            assert ep[f"videos/{key}/from_timestamp"] == 0.0
            assert ep[f"videos/{key}/to_timestamp"] == pytest.approx(ep["length"] / 10)
            assert count_video_frames(root / f"videos/{key}/chunk-000/file-{k:03d}.mp4") == ep["length"]
        total += ep["length"]
    assert info["total_frames"] == total == report["frames"]
    # tasks.parquet: the task strings are the pandas index, as LeRobot reads them
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    assert tasks.column("task").to_pylist() == [t.instruction for t in TASKS]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.top"]["mean"]).shape == (3, 1, 1)
    assert stats["observation.state"]["count"] == [total]


def test_a_dataset_that_disagrees_with_itself_fails_its_check(recorded, tmp_path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(recorded["root"] / "lr", root)
    check_dataset(root)
    video = root / "videos/observation.images.side/chunk-000/file-001.mp4"
    video.unlink()
    shutil.copyfile(root / "videos/observation.images.side/chunk-000/file-000.mp4", video)  # another length
    with pytest.raises(EmbodiedError, match="file-001.mp4 has .* frames for .* rows"):
        check_dataset(root)
    shutil.copytree(recorded["root"] / "lr", root, dirs_exist_ok=True)
    info = json.loads((root / "meta/info.json").read_text())
    info["total_frames"] += 1
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(EmbodiedError, match="totals"):
        check_dataset(root)


def test_mcap_logs_read_back_with_the_ros2_decoder(recorded) -> None:
    report = recorded["mcap"]["recording"]
    assert report["checked"] and report["episodes"] == 2
    path = recorded["root"] / "mc" / f"{TASKS[0].id}.mcap"
    counts = check_mcap(path)["messages"]
    assert set(counts) == set(TOPICS)
    first = next(m for _, _, m in read_messages(path, ["/joint_states"]))
    assert first.name == [f"panda_joint{i}" for i in range(1, 8)] and len(first.position) == 7
    image = next(m for _, _, m in read_messages(path, ["/camera/top/image_raw"]))
    assert (image.encoding, image.height, image.width) == ("rgb8", 128, 128)
    calls = [json.loads(m.data) for _, _, m in read_messages(path, ["/skill_calls"])]
    assert calls[0]["skill"] == "pick_and_place" and calls[0]["result"]["success"]
    end = [json.loads(m.data) for _, _, m in read_messages(path, ["/episode"])][-1]
    assert end == {"event": "end", "success": True, "outcome": "success", "reason": ""}
    # the same episode as the dataset's: the joint positions of every frame agree
    data = pq.read_table(recorded["root"] / "lr/data/chunk-000/file-000.parquet")
    state = np.asarray(data.column("observation.state").to_pylist())
    joints = np.asarray([m.position for _, _, m in read_messages(path, ["/joint_states"])])
    assert joints.shape == (len(state), 7) and np.allclose(joints, state[:, :7], atol=0)


def test_a_truncated_log_fails_its_check(recorded, tmp_path) -> None:
    path = tmp_path / "cut.mcap"
    data = (recorded["root"] / "mc" / f"{TASKS[0].id}.mcap").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EmbodiedError, match="cut.mcap"):
        check_mcap(path)


def test_recording_changes_nothing_and_frames_are_evenly_spaced(env) -> None:
    from embodied.planners.oracle import OracleAgent
    from embodied.runtime.episode import run_episode

    task = TASKS[1]
    plain = run_episode(env, task, OracleAgent())
    capture = FrameCapture(env, fps=5)
    taped = run_episode(env, task, OracleAgent(), capture=capture)
    assert (taped.outcome, taped.physics_steps, taped.steps) == (plain.outcome, plain.physics_steps, plain.steps)
    frames = taped.recording
    assert len(frames) == taped.physics_steps // 48 + 1  # one frame at the start, then every 1/5 s
    assert np.array_equal(frames.timestamps, np.arange(len(frames)) / 5)
    assert [c["skill"] for c in frames.calls] == [s["skill"] for s in taped.steps]
    assert frames.calls[-1]["frame_end"] <= len(frames) and len(frames.sim_states) == len(taped.steps)
    assert all(0 <= c["frame"] < len(frames) for c in frames.commands)
    assert {c["command"] for c in frames.commands} == {"move_to", "set_gripper"}
    assert not env.world.frame_hooks and env.robot.command_hook is None  # nothing left attached
    # the first frame is the table as laid out: the same pixels as a fresh reset's render
    env.reset(seed=task.seed, options={"task": task})
    assert np.array_equal(env.world.render(capture.cameras["top"])[0], frames.images["top"][0])


def test_replay_restores_a_recorded_skill_boundary_exactly(recorded) -> None:
    root = recorded["root"]
    for source, episode in ((root / "lr", 1), (root / "mc" / f"{TASKS[1].id}.mcap", 0)):
        out = replay(source, 1, episode)
        assert out["max_position_diff_m"] <= 1e-6
        assert len(out["poses"]) == len(TASKS[1].scene.blocks) + len(TASKS[1].scene.bowls)
    with pytest.raises(EmbodiedError, match="no state after skill call 5"):
        replay(root / "lr", 5, 0)


def test_record_cli_refuses_bad_input_and_unrecorded_results(recorded, tmp_path, capsys) -> None:
    tasks = tmp_path / "t.jsonl"
    save_tasks(TASKS[:1], tasks)
    flags = ["--planner", "oracle", "--state", "ground-truth", "--affordance", "analytic", "--success", "analytic",
             "--no-library"]
    with pytest.raises(SystemExit) as bad_fps:
        main(["record", "--tasks", str(tasks), "--format", "lerobot", "--fps", "7", *flags])
    assert bad_fps.value.code == 2 and "--fps" in capsys.readouterr().err
    out = tmp_path / "ev"
    assert main(["eval", "--tasks", str(tasks), "--out", str(out), *flags]) == 0
    capsys.readouterr()
    assert main(["eval", "--tasks", str(tasks), "--out", str(out), "--record", "mcap", *flags]) == 2
    assert "were not recorded as mcap" in capsys.readouterr().err
    assert main(["replay", str(Path(recorded["root"]) / "mc" / f"{TASKS[0].id}.mcap"), "--step", "1"]) == 0


@pytest.mark.slow
def test_two_workers_record_the_same_data_as_one(recorded, tmp_path) -> None:
    with Agent.from_config(**FAST) as agent:
        report = agent.evaluate(TASKS, tmp_path, workers=2, recording=RecordSpec("lerobot", tmp_path))
    assert report["recording"]["checked"] and report["recording"]["frames"] == recorded["lerobot"]["recording"]["frames"]
    for k in range(len(TASKS)):
        a = pq.read_table(tmp_path / f"data/chunk-000/file-{k:03d}.parquet")
        b = pq.read_table(recorded["root"] / f"lr/data/chunk-000/file-{k:03d}.parquet")
        assert a.equals(b)
