"""Results that survive faults and hostile input: no lost, stale or mislabelled rows; clear one-line errors
with their own exit codes (0 success, 1 failed, 2 bad input, 3 cannot, 4 internal error, 130 interrupted)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embodied import cli
from embodied.cli import main
from embodied.library.store import LibraryError, Param, SkillRecord, SkillStore
from embodied.runtime.evaluate import EvalFolder, file_hashes, read_results, wilson
from embodied.world.errors import TaskError
from embodied.world.tasks import MAX_INSTRUCTION_CHARS, SceneSpec, Task, load_tasks, save_tasks
from envs.generator import generate_suite

FAST = ["--planner", "oracle", "--state", "ground-truth", "--affordance", "analytic", "--success", "analytic",
        "--no-library"]
ROOT = Path(__file__).resolve().parent.parent


def tasks_file(path: Path, n: int = 2, family: str = "block_in_bowl", seed: int = 1) -> Path:
    save_tasks(generate_suite(n, seed, [family]), path)
    return path


def one_line(err: str) -> str:
    return " ".join(err.split())


def evaluate(tasks: Path, out: Path, *extra: str) -> int:
    return main(["eval", "--tasks", str(tasks), *FAST, "--out", str(out), *extra])


def cli_proc(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "embodied.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, **kw)


# ---------------------------------------------------------------------- eval results integrity
def test_rows_carry_hashes_and_a_changed_task_is_rerun(tmp_path, capsys) -> None:
    tasks, out = tasks_file(tmp_path / "t.jsonl"), tmp_path / "ev"
    assert evaluate(tasks, out) == 0
    rows = read_results(out / "results.jsonl")
    assert len(rows) == 2 and all(len(r["task_hash"]) == 16 and len(r["config_hash"]) == 16 for r in rows)
    config = json.loads((out / "config.json").read_text())
    assert config["config_hash"] == rows[0]["config_hash"] == rows[1]["config_hash"]
    # the second task's seed and max_steps change: its old row is stale, it runs again; the first is kept
    changed = load_tasks(tasks)
    changed[1].seed, changed[1].max_steps = changed[1].seed + 10, 7
    save_tasks(changed, tasks)
    assert evaluate(tasks, out) == 0
    now = read_results(out / "results.jsonl")
    assert [r["id"] for r in now] == [rows[0]["id"], rows[1]["id"]]
    assert now[0] == rows[0] and now[1]["task_hash"] != rows[1]["task_hash"] and now[1]["seed"] == changed[1].seed
    assert read_results(out / "results.stale.jsonl") == [rows[1]]
    assert json.loads((out / "report.json").read_text())["n"] == 2


@pytest.mark.parametrize("change, key", [(["--planner", "goal"], "planner"), (["--state", "perceived"], "state"),
                                         (["--success", "learned"], "success"), (["--infer-goal"], "infer_goal")])
def test_resume_refuses_another_config_naming_the_keys(tmp_path, capsys, change, key) -> None:
    tasks, out = tasks_file(tmp_path / "t.jsonl"), tmp_path / "ev"
    assert evaluate(tasks, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    argv = ["eval", "--tasks", str(tasks), *FAST, "--out", str(out)]
    flag = change[0]
    if flag in argv:
        argv[argv.index(flag) + 1] = change[1]
    else:
        argv += change
    assert main(argv) == 2
    err = one_line(capsys.readouterr().err)
    assert "another configuration" in err and f"{key}:" in err and "--fresh" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before  # nothing rewritten
    assert main(argv + ["--fresh"]) == 0  # --fresh starts over with the new configuration
    assert json.loads((out / "config.json").read_text())[key] == json.loads(json.dumps(
        {"planner": "goal", "state": "perceived", "success": "learned", "infer_goal": True}[key]))


def test_torn_last_line_is_cut_back_before_appending(tmp_path, capsys, caplog) -> None:
    tasks, out = tasks_file(tmp_path / "t.jsonl"), tmp_path / "ev"
    assert evaluate(tasks, out) == 0
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # killed mid-write
    assert evaluate(tasks, out) == 0
    text = (out / "results.jsonl").read_text()
    assert text.endswith("\n") and [json.loads(x)["id"] for x in text.splitlines()] == \
        [json.loads(x)["id"] for x in lines]
    assert json.loads((out / "report.json").read_text())["n"] == 2
    assert "torn last line" in caplog.text and "cut off" in caplog.text


def test_a_bad_row_is_named_before_any_work(tmp_path, capsys) -> None:
    tasks, out = tasks_file(tmp_path / "t.jsonl"), tmp_path / "ev"
    assert evaluate(tasks, out) == 0
    rows = read_results(out / "results.jsonl")
    del rows[1]["seconds"]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = (out / "results.jsonl").read_bytes()
    capsys.readouterr()
    t0 = time.perf_counter()
    assert evaluate(tasks, out) == 2
    err = one_line(capsys.readouterr().err)
    assert f"{out}/results.jsonl:2" in err and "lacks 'seconds'" in err
    assert time.perf_counter() - t0 < 5 and (out / "results.jsonl").read_bytes() == before
    (out / "results.jsonl").write_text('{"id": "x"\n' + before.decode())  # not JSON, not the last line
    assert evaluate(tasks, out) == 2
    assert "results.jsonl:1: results row is not valid JSON" in one_line(capsys.readouterr().err)


def test_one_writer_per_out_and_fresh_never_deletes_under_a_running_eval(tmp_path, capsys) -> None:
    tasks, out = tasks_file(tmp_path / "t.jsonl"), tmp_path / "ev"
    assert evaluate(tasks, out) == 0
    before = (out / "results.jsonl").read_bytes()
    capsys.readouterr()
    with EvalFolder(out):  # another eval holds the folder
        assert evaluate(tasks, out) == 2
        assert "in use by another eval" in one_line(capsys.readouterr().err)
        assert evaluate(tasks, out, "--fresh") == 2
        assert "in use by another eval" in one_line(capsys.readouterr().err)
        assert (out / "results.jsonl").read_bytes() == before
        # and from another process, as two terminals would do it
        proc = cli_proc("eval", "--tasks", str(tasks), *FAST, "--out", str(out), "--fresh")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and "in use by another eval" in one_line(err)
        assert (out / "results.jsonl").read_bytes() == before
    assert evaluate(tasks, out, "--fresh") == 0  # released: --fresh starts over


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_writes_the_report_of_what_finished(tmp_path, sig) -> None:
    tasks, out = tasks_file(tmp_path / "t.jsonl", n=30, family="stack_three"), tmp_path / "ev"
    proc = cli_proc("eval", "--tasks", str(tasks), *FAST, "--out", str(out))
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "results.jsonl").exists() or \
            not (out / "results.jsonl").read_text().count("\n"):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    report = json.loads((out / "report.json").read_text())
    rows = read_results(out / "results.jsonl")
    assert report["complete"] is False and report["tasks"] == 30 and 1 <= report["n"] == len(rows) < 30
    assert "interrupted" in err


# ---------------------------------------------------------------------- output paths, before any work
def test_output_paths_are_checked_before_any_work(tmp_path, capsys) -> None:
    existing = tmp_path / "a-file"
    existing.write_text("keep me")
    t0 = time.perf_counter()
    assert main(["run", "--generate", "block_in_bowl", *FAST, "--out", str(existing)]) == 2
    assert "is an existing file; give a folder" in one_line(capsys.readouterr().err)
    assert existing.read_text() == "keep me" and time.perf_counter() - t0 < 5
    assert main(["run", "--generate", "block_in_bowl", *FAST, "--out", "/proc/x"]) == 2
    assert "/proc/x: cannot write there" in one_line(capsys.readouterr().err)
    tasks = tasks_file(tmp_path / "t.jsonl")
    assert main(["eval", "--tasks", str(tasks), *FAST, "--out", str(existing)]) == 2
    assert "is an existing file" in one_line(capsys.readouterr().err)
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(["tasks", "generate", "--n", "2", "--out", str(folder)]) == 2
    assert f"--out {folder} is a folder" in one_line(capsys.readouterr().err)
    lib = tmp_path / "lib.db"
    _library(lib)
    assert main(["skills", "export", str(folder), "--library", str(lib)]) == 2
    assert f"export FILE {folder} is a folder" in one_line(capsys.readouterr().err)


# ---------------------------------------------------------------------- exit codes and input validation
def test_exit_codes_are_distinct(tmp_path, capsys, monkeypatch) -> None:
    ok = main(["run", "--generate", "block_in_bowl", "--seed", "1", *FAST, "--out", str(tmp_path / "ok")])
    cannot = main(["run", "what colour is the sky?", *FAST, "--out", str(tmp_path / "c")])
    import embodied.runtime.agent as agent_module
    from embodied.runtime.episode import EpisodeResult

    real = agent_module.run_episode
    monkeypatch.setattr(agent_module, "run_episode", lambda env, task, planner, **kw: EpisodeResult(
        task=task, planner="oracle", outcome="failed", reason="the red block slipped"))
    failed = main(["run", "--generate", "block_in_bowl", "--seed", "1", *FAST, "--out", str(tmp_path / "f")])
    monkeypatch.setattr(agent_module, "run_episode", real)
    bad = main(["run", "--generate", "stack_tow", *FAST])

    def boom(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cmd_tasks", boom)
    capsys.readouterr()
    internal = main(["tasks", "generate", "--out", str(tmp_path / "x.jsonl")])
    assert "internal error: RuntimeError: a bug" in one_line(capsys.readouterr().err)
    assert (ok, failed, bad, cannot, internal) == (0, 1, 2, 3, 4)


@pytest.mark.parametrize("argv, flag", [
    (["run", "--generate", "block_in_bowl", "--seed", "-1"], "--seed"),
    (["run", "--generate", "block_in_bowl", "--image-size", "0"], "--image-size"),
    (["run", "put the red block in the green bowl", "--max-steps", "-1"], "--max-steps"),
    (["eval", "--tasks", "x.jsonl", "--image-size", "5000"], "--image-size"),
    (["tasks", "generate", "--n", "-3", "--out", "x.jsonl"], "--n"),
    (["learn", "--seed", "-4"], "--seed"),
])
def test_bad_numbers_are_bad_input_naming_the_flag(capsys, argv, flag) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = one_line(capsys.readouterr().err)
    assert e.value.code == 2 and f"argument {flag}" in err and "must be an integer" in err


def test_latin1_and_deeply_nested_task_files_name_file_and_line(tmp_path, capsys) -> None:
    good = json.dumps(generate_suite(1, 1, ["block_in_bowl"])[0].to_dict())
    latin = tmp_path / "latin.jsonl"
    other = json.dumps({**json.loads(good), "id": "x", "instruction": "put the block in the gr\u00fcn bowl"},
                       ensure_ascii=False)
    latin.write_bytes(good.encode() + b"\n" + other.encode("latin-1") + b"\n")
    assert main(["eval", "--tasks", str(latin), *FAST, "--out", str(tmp_path / "e1")]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"{latin}:2: not UTF-8 text" in err
    deep = tmp_path / "deep.jsonl"
    deep.write_text(good + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["eval", "--tasks", str(deep), *FAST, "--out", str(tmp_path / "e2")]) == 2
    assert f"{deep}:2: JSON nested too deeply" in one_line(capsys.readouterr().err)
    scene = "[" * 100_000 + "]" * 100_000
    assert main(["run", "put the red block in the green bowl", "--scene", scene, *FAST]) == 2
    assert "--scene: JSON nested too deeply" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "e1").exists() or not any((tmp_path / "e1").glob("results.jsonl"))


def test_long_instructions_are_refused_everywhere(tmp_path, capsys) -> None:
    long = "put the red block in the green bowl " * (MAX_INSTRUCTION_CHARS // 30)
    assert len(long) > MAX_INSTRUCTION_CHARS
    with pytest.raises(TaskError, match="the limit is 2,000"):
        Task(id="t", instruction=long, scene=SceneSpec(blocks=["red"], bowls=["green"]), goal=[])
    assert main(["run", long, *FAST, "--out", str(tmp_path / "r")]) == 2
    assert "instruction: the instruction is" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()  # refused before any work: no run folder left behind
    task = generate_suite(1, 1, ["block_in_bowl"])[0].to_dict()
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({**task, "instruction": long}) + "\n")
    assert main(["eval", "--tasks", str(f), *FAST, "--out", str(tmp_path / "e")]) == 2
    assert f"{f}:1: the instruction is {len(long):,} characters long; the limit is 2,000" in \
        one_line(capsys.readouterr().err)


def test_a_1mb_instruction_is_refused_quickly_in_bounded_memory(tmp_path) -> None:
    """As a task file line (argv cannot hold 1 MB): the default SayCan planner, refused in seconds."""
    task = generate_suite(1, 1, ["block_in_bowl"])[0].to_dict()
    f = tmp_path / "big.jsonl"
    f.write_text(json.dumps({**task, "instruction": "put the red block in the green bowl " * 30_000}) + "\n")
    assert f.stat().st_size > 1_000_000
    t0 = time.perf_counter()
    # the child reports its own peak (VmHWM is per address space, so unlike ru_maxrss it does not carry the
    # forked test runner's memory across exec)
    hwm = tmp_path / "hwm.txt"
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: open({str(hwm)!r}, 'w').write(open('/proc/self/status').read()"
            ".split('VmHWM:')[1].split()[0]))\n"
            "from embodied.cli import main\n"
            f"sys.exit(main(['run', '--tasks', {str(f)!r}, '--out', {str(tmp_path / 'r')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - t0
    peak_mb, err = int(hwm.read_text()) / 1024, proc.stderr
    assert proc.returncode == 2 and "1,080,000 characters long; the limit is 2,000" in one_line(err)
    print(f"1 MB instruction refused in {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")
    assert seconds < 30 and peak_mb < 1024, (seconds, peak_mb)


# ---------------------------------------------------------------------- libraries
def _library(path: Path, n: int = 3) -> Path:
    with SkillStore(path) as s:
        for i in range(n):
            s.put(SkillRecord(name=f"skill_{i}", description="move a block " * 30, params=[Param("block_1", "block")],
                              code=f"def skill_{i}(api, block_1):\n    api.pick(block_1)\n"),
                  np.ones(384, np.float32) / np.sqrt(384), "test")
    return path


@pytest.mark.parametrize("action", ["list", "show", "export"])
def test_read_only_commands_never_write(tmp_path, capsys, action) -> None:
    arg = [] if action == "list" else [str(tmp_path / "out.json")] if action == "export" else ["skill_0"]
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert main(["skills", action, *arg, "--library", str(empty)]) == 2
    assert "is empty (0 bytes): not a skill library" in one_line(capsys.readouterr().err)
    assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    missing = tmp_path / "missing.db"
    assert main(["skills", action, *arg, "--library", str(missing)]) == 2
    assert "no skill library at" in capsys.readouterr().err and not missing.exists()
    lib = _library(tmp_path / "lib.db")
    with SkillStore(lib):
        pass  # checkpointed on close
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("lib.db")}
    assert main(["skills", action, *arg, "--library", str(lib)]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("lib.db")
            and p.name in files} == files


def test_damaged_foreign_and_read_only_libraries_get_one_line(tmp_path, capsys) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a library\n" * 200)
    assert main(["skills", "list", "--library", str(text)]) == 2
    assert "is not a usable skill library: not an SQLite database" in one_line(capsys.readouterr().err)
    lib = _library(tmp_path / "lib.db", n=40)
    data = bytearray(lib.read_bytes())
    data[2 * 4096: 2 * 4096 + 200] = b"\xab" * 200  # a damaged page
    lib.write_bytes(bytes(data))
    for argv in (["skills", "list"], ["skills", "rm", "skill_1"], ["skills", "import", str(text)]):
        assert main([*argv, "--library", str(lib)]) == 2
        err = capsys.readouterr().err
        assert "fails its integrity check" in one_line(err) and "Traceback" not in err
    from embodied.library.retrieval import Library

    with pytest.raises(LibraryError, match="fails its integrity check"):  # what `run` and `eval` open
        Library.open(lib)
    good = _library(tmp_path / "good.db")
    store = SkillStore(good, readonly=True)
    with pytest.raises(LibraryError, match="read-only"):
        store.remove("skill_0")
    store.readonly = False  # a file the OS will not let us write: the same sqlite error
    with pytest.raises(LibraryError, match="is read-only .* nothing was written"):
        store.check_writable()
    store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_learn_refuses_a_read_only_library_file(tmp_path, capsys) -> None:
    lib = _library(tmp_path / "lib.db")
    lib.chmod(0o444)
    before = lib.read_bytes()
    assert main(["learn", "--iterations", "1", "--planner", "oracle", "--library", str(lib)]) == 2
    assert "read-only" in capsys.readouterr().err and lib.read_bytes() == before


def test_learn_writes_its_iteration_or_says_it_could_not(tmp_path) -> None:
    from embodied.runtime.learn import LearnConfig, learn, next_iteration

    lib = _library(tmp_path / "lib.db")
    store = SkillStore(lib, readonly=True)
    with pytest.raises(LibraryError, match="opened read-only"):
        learn(LearnConfig(iterations=1), store, planner=None, env=None)  # refused before any work
    store.close()
    assert next_iteration([]) == 0
    assert next_iteration([{"iteration": 0}, {"iteration": 1}, {"iteration": 3}]) == 4  # what is really there


def test_imported_skills_are_bounded_in_size(tmp_path, capsys) -> None:
    lib = _library(tmp_path / "lib.db")
    export = tmp_path / "x.json"
    assert main(["skills", "export", str(export), "--library", str(lib)]) == 0
    items = json.loads(export.read_text())
    items[0]["description"] = "d" * 5_000_000
    items[1]["provenance"] = {"instruction": "i" * 50_000}
    export.write_text(json.dumps(items))
    capsys.readouterr()
    t0 = time.perf_counter()
    assert main(["skills", "import", str(export), "--library", str(lib)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "'description' is 5,000,000 bytes; the limit is 20,000" in err
    assert "'provenance' is 50,0" in err and time.perf_counter() - t0 < 10
    with SkillStore(lib, readonly=True) as s:
        assert s.get("skill_0").description == "move a block " * 30


# ---------------------------------------------------------------------- models not on this machine
def test_a_model_that_is_not_local_fails_fast_offline(tmp_path) -> None:
    t0 = time.perf_counter()
    proc = cli_proc("eval", "--tasks", str(tasks_file(tmp_path / "t.jsonl")), "--llm", "no-such-org/model",
                    "--out", str(tmp_path / "ev"), env={"HF_HUB_OFFLINE": "1"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and time.perf_counter() - t0 < 5, err
    line = one_line(err)
    assert "'no-such-org/model' is not in the local Hugging Face cache" in line and "hf download" in line
    assert len([x for x in err.splitlines() if "warn" in x.lower()]) == len(
        {x for x in err.splitlines() if "warn" in x.lower()})  # no warning twice
    assert not (tmp_path / "ev").exists()


# ---------------------------------------------------------------------- reports people can trust
def test_report_intervals_and_config_provenance(tmp_path) -> None:
    assert wilson(0, 0) == [0.0, 1.0] and wilson(2, 2) == [0.3424, 1.0] and wilson(5, 10) == [0.2366, 0.7634]
    tasks, out = tasks_file(tmp_path / "t.jsonl"), tmp_path / "ev"
    assert evaluate(tasks, out) == 0
    report = json.loads((out / "report.json").read_text())
    for rate in ("execution_success", "planning_success", "skill_success_rate"):
        assert report[f"{rate}_n"] >= 2 and len(report[f"{rate}_ci95"]) == 2
        assert report[f"{rate}_ci95"][0] <= report[rate] <= report[f"{rate}_ci95"][1]
    assert all("execution_success_ci95" in fam for fam in report["per_family"].values())
    assert report["complete"] is True and report["tasks"] == 2
    config = json.loads((out / "config.json").read_text())
    assert set(config["versions"]) == {"embodied", "torch", "transformers", "pybullet", "gymnasium"}
    assert config["versions"]["embodied"] and config["checkpoints"] == {}  # analytic sources: no weights
    folder = ROOT / "policies" / "affordance"
    hashes = file_hashes([folder])
    weights = folder / "model.safetensors"
    assert hashes[str(weights)] == hashlib.sha256(weights.read_bytes()).hexdigest()
