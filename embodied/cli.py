"""The `embodied` command line: thin `main()`s over the library; the console belongs to this module."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from embodied.world.errors import EmbodiedError, TaskError

STARTED = time.perf_counter()
# Exit codes, the same for every command (README, "Exit codes").
EXIT_SUCCESS, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANNOT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
console = Console(stderr=True)
out_console = Console()
for _c in (console, out_console):
    if not _c.is_terminal:  # a log file or a pipe: tables 100 columns wide, so options fit on one line
        _c.width = 100
log = logging.getLogger("embodied")


# ---------------------------------------------------------------------- helpers
def _default_out(kind: str) -> Path:
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _load_task(args: argparse.Namespace, agent: Any) -> Any:
    """The episode's task: free text (with --scene or a table set for it), a task file line, or a generated one."""
    from embodied.world.tasks import SceneSpec, load_tasks, parse_json
    from envs.generator import generate

    if args.instruction:
        if args.tasks or args.generate:
            raise TaskError("give either an INSTRUCTION or --tasks/--generate, not both")
        scene = None
        if args.scene:
            scene = SceneSpec.from_dict(parse_json(args.scene, "--scene"), where="--scene")
        return agent.task(args.instruction, scene, seed=args.seed or 0, max_steps=args.max_steps)
    if args.tasks:
        tasks = load_tasks(args.tasks)
        if args.id is None:
            if len(tasks) != 1:
                raise TaskError(f"{args.tasks} holds {len(tasks)} tasks: choose one with --id")
            task = tasks[0]
        else:
            match = [t for t in tasks if t.id == args.id]
            if not match:
                from embodied.world.scene import suggest

                raise TaskError(f"{args.tasks}: no task with id {args.id!r}{suggest(args.id, [t.id for t in tasks])}")
            task = match[0]
        if args.seed is not None:
            task.seed = args.seed
        return task
    if args.generate:
        return generate(args.generate, args.seed if args.seed is not None else 0)
    raise TaskError("say what to do: an INSTRUCTION, --tasks FILE [--id ID] or --generate FAMILY")


# ---------------------------------------------------------------------- flags from planner configs
def _csv(choices: tuple[str, ...]) -> Any:
    """An argparse type: ``"camera, proprio"`` -> ``("camera", "proprio")``, each checked against ``choices``."""
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(m.strip() for m in text.split(",") if m.strip())
        bad = [m for m in names if choices and m not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown value {bad[0]!r}; choose from {', '.join(choices)}")
        return names

    return parse


def _int_in(low: int, high: int | None = None) -> Any:
    """An argparse type: an integer in [low, high]; anything else is bad input naming the flag (exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be an integer {span}, got {value}")
        return value

    return parse


SEED, POSITIVE, COUNT, IMAGE_SIZE = _int_in(0, 2**32 - 1), _int_in(1), _int_in(0), _int_in(8, 1024)


def _positive_list(text: str) -> tuple[int, ...]:
    """An argparse type: ``"1,2,4"`` -> ``(1, 2, 4)``, each a positive integer."""
    values = tuple(POSITIVE(t.strip()) for t in text.split(",") if t.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def _checked_out_dir(path: Path) -> tuple[Path, bool]:
    """``path`` made and checked writable before any work; also whether this call created it."""
    from embodied.world.paths import check_output_dir

    created = not path.exists()
    return check_output_dir(path, "--out"), created


def _config_flags() -> dict[str, dict[str, Any]]:
    """Every registered planner's config fields as flags: dest -> {flag, kwargs, owners}. A field several
    planners share (``--llm``, ``--no-affordance``) is one flag."""
    import dataclasses
    import typing

    from embodied.planners.registry import PLANNERS, config_class

    flags: dict[str, dict[str, Any]] = {}
    for name in PLANNERS:
        cls = config_class(name)
        if cls is None:
            continue
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if not f.metadata.get("cli", False):
                continue
            if f.name in flags:
                flags[f.name]["owners"].append(name)
                continue
            kind, help_ = hints[f.name], f.metadata.get("help", "")
            choices = f.metadata.get("choices", ())
            flag = "--" + f.name.replace("_", "-")
            if kind is bool:
                flag = "--no-" + f.name.replace("_", "-") if f.default else flag
                kwargs: dict[str, Any] = {"action": "store_const", "const": not f.default,
                                          "help": f"turn off: {help_}" if f.default else help_}
            elif typing.get_origin(kind) is tuple:
                kwargs = {"type": _csv(choices), "metavar": "A[,B]", "help": f"{help_} (comma-separated)"}
            else:
                base = next((t for t in (int, float, str) if kind is t or t in typing.get_args(kind)), str)
                kwargs = {"type": base, "metavar": f.name.upper(), "help": f"{help_} (default {f.default!r})"}
                if choices:
                    kwargs["choices"] = choices
            flags[f.name] = {"flag": flag, "kwargs": {**kwargs, "dest": f"planner_{f.name}", "default": None},
                             "owners": [name]}
    return flags


def _add_planner_flags(p: argparse.ArgumentParser, sensing: bool = True, infer_goal: bool = True) -> None:
    """--planner, each planner's options (built from its config class), the library, and the agent's sources."""
    from embodied.planners.registry import PLANNERS

    p.add_argument("--planner", default="saycan", help=f"{' | '.join(PLANNERS)} (default saycan)")
    groups: dict[str, Any] = {}
    for spec in _config_flags().values():
        owners = ", ".join(spec["owners"])
        group = groups.setdefault(owners, p.add_argument_group(f"planner options ({owners})"))
        group.add_argument(spec["flag"], **spec["kwargs"])
    p.add_argument("--library", type=Path, help="skill library database (default: $EMBODIED_LIBRARY or "
                                                "~/.local/share/embodied/skills.db)")
    p.add_argument("--no-library", action="store_true", help="plan with the primitives only")
    if infer_goal:
        p.add_argument("--infer-goal", action="store_true",
                       help="read the goal from the instruction even when the task has one; judge with the task's "
                            "(reports goal_inference_accuracy)")
    if sensing:
        p.add_argument("--state", default="perceived", help="perceived (RGB-D perception, default) or ground-truth")
        p.add_argument("--affordance", default="learned", help="learned value functions (default) or analytic "
                                                               "checks")
        p.add_argument("--success", default="learned", help="step outcomes from the learned success detector "
                                                           "(default) or the skills' analytic self-report")


def _agent_config(args: argparse.Namespace) -> Any:
    """The `AgentConfig` the flags describe; an option of another planner is bad input, named."""
    from embodied.runtime.agent import AgentConfig

    options, foreign = {}, []
    for name, spec in _config_flags().items():
        value = getattr(args, spec["kwargs"]["dest"], None)
        if value is None:
            continue
        if args.planner in spec["owners"]:
            options[name] = value
        else:
            foreign.append((spec["flag"], ", ".join(spec["owners"])))
    if foreign:
        from embodied.planners.registry import planner_class

        planner_class(args.planner)  # an unknown planner is named first
        flags = " and ".join(f for f, _ in foreign)
        raise TaskError(f"{flags} belong to --planner {' / '.join(sorted({o for _, o in foreign}))}, "
                        f"not {args.planner}")
    library = None if args.no_library else str(args.library) if args.library else "default"
    sources = {k: getattr(args, k) for k in ("state", "affordance", "success", "infer_goal") if hasattr(args, k)}
    robot = {}
    if getattr(args, "robot", "sim") == "ros" or getattr(args, "ros_profile", None) or getattr(args, "dry_run", False):
        robot = {"robot": args.robot, "ros_profile": str(args.ros_profile) if args.ros_profile else None,
                 "ros_master": args.master, "dry_run": args.dry_run}
    return AgentConfig(planner=args.planner, planner_options=options, library=library,
                       image_size=args.image_size, **sources, **robot)


def _step_table(i: int, decision: Any, result: Any, top: int = 5) -> Table:
    table = Table(title=f"step {i}", show_lines=False, title_justify="left")
    for col, just in (("option", "left"), ("llm", "right"), ("affordance", "right"), ("combined", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    ranked = sorted(decision.options, key=lambda o: -o.combined)[:top]
    for o in ranked:
        chosen = decision.call is not None and o.call.key() == decision.call.key()
        style = "bold green" if chosen else ""
        table.add_row(o.text, f"{o.llm:.3f}", f"{o.affordance:.3f}", f"{o.combined:.3f}", style=style)
    if not ranked and decision.call is not None:
        from skills import call_text

        # a library skill or a written program is not a registered skill: it says what it is itself
        text = decision.skill.text() if decision.skill is not None else call_text(decision.call)
        table.add_row(text, "-", "-", "-", style="bold green")
        if decision.note.startswith("program:"):
            for line in decision.note.splitlines()[1:]:
                table.add_row(line, "", "", "", style="dim")
    if result is not None:
        status = "[green]ok[/]" if result.success else f"[red]failed: {result.reason}[/]"
        table.caption = f"{status} ({result.steps} physics steps)"
    return table


# ---------------------------------------------------------------------- commands
def _add_robot_flags(p: argparse.ArgumentParser) -> None:
    """Where the agent acts: the simulator in this process, or a robot behind the ROS bridge."""
    g = p.add_argument_group("robot")
    g.add_argument("--robot", choices=["sim", "ros"], default="sim",
                   help="sim: the tabletop in this process (default); ros: a robot behind the ROS bridge, e.g. "
                        "`embodied ros sim` in another process")
    g.add_argument("--ros-profile", type=Path, help="ROS profile YAML (default: the simulator node's, "
                                                     "embodied/ros/profiles/sim.yaml)")
    g.add_argument("--master", help="ROS master URI (default: $ROS_MASTER_URI)")
    g.add_argument("--dry-run", action="store_true", help="with --robot ros: check and log every command, send none")


def cmd_run(args: argparse.Namespace) -> int:
    from embodied.runtime.agent import Agent
    from embodied.world.tasks import check_instruction

    config = _agent_config(args)
    # Before any work (and before a language model loads): the input and where the run will be written.
    if args.instruction:
        check_instruction(args.instruction, "instruction")
        task = None
    else:
        task = _load_task(args, None)
    out, created = _checked_out_dir(Path(args.out) if args.out else _default_out("run"))
    try:
        with Agent.from_config(config) as agent:
            result = _run_episode(agent, args, out, task)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing was written: leave no empty run folder behind
        raise
    if args.json:  # the summary on stdout, for scripts (the tables stay on stderr)
        out_console.print_json(json.dumps(result.summary()))
    colour = {"success": "green", "failed": "red", "cannot": "yellow"}[result.outcome]
    console.print(f"[{colour}]{result.outcome}[/] after {len(result.steps)} skill calls"
                  f"{': ' + result.reason if result.reason else ''}  ->  {out}/summary.json")
    return {"success": EXIT_SUCCESS, "failed": EXIT_FAILED, "cannot": EXIT_CANNOT}[result.outcome]


def _run_episode(agent: Any, args: argparse.Namespace, out: Path, task: Any = None) -> Any:
    """One episode (``task``, or the free-text one) with a table per step on the console; writes the run
    folder (and the video)."""
    from embodied.runtime.episode import StateRecorder, write_run
    from envs.video import VideoRecorder

    if agent.config.robot == "ros" and (args.video or args.states):
        raise EmbodiedError("--video and --states need the simulator in this process, not --robot ros")
    task = task if task is not None else _load_task(args, agent)
    console.print(f"[bold]{task.instruction}[/]  (task {task.id}, seed {task.seed}, planner {agent.planner.name})")
    first: list[float] = []

    states = StateRecorder(agent.env, out) if args.states else None

    def show(i: int, decision: Any, result: Any) -> None:
        if not first:
            first.append(time.perf_counter() - STARTED)
        console.print(_step_table(i, decision, result))
        if states is not None and result is not None:  # a skill boundary: the whole simulation, for `replay`
            states.step()

    recorder = VideoRecorder(agent.env, caption=task.instruction) if args.video else None
    result = agent.run(task, on_step=show, video=recorder)
    if recorder is not None:
        recorder.finish(f"{result.outcome}" + (f": {result.reason}" if result.reason else ""))
    result.extra["first_action_s"] = round(first[0], 2) if first else None
    write_run(result, out, {"command": "run", "task": task.to_dict(), **agent.describe(), "video": args.video,
                            "image_size": args.image_size})
    if states is not None:
        states.save()
    if recorder is not None:
        recorder.save(out / "video.mp4")
    return result


def cmd_replay(args: argparse.Namespace) -> int:
    """A recorded simulation restored after skill call ``--step`` (`run --states`, `record`): each object's
    pose and its difference from the recording; exit 1 if any is over 1e-6 m."""
    from embodied.runtime.recording import replay

    run, k = Path(args.run), args.step
    if not run.exists():
        raise EmbodiedError(f"{run} does not exist")
    replayed = replay(run, k, args.episode)
    table = Table(title=f"{run} after skill call {k}: object poses restored")
    for col in ("object", "x", "y", "z", "diff (m)"):
        table.add_column(col)
    for name, pose in sorted(replayed["poses"].items()):
        table.add_row(name, *(f"{v:.4f}" for v in pose[:3]), f"{replayed['diffs'][name]:.1e}")
    console.print(table)
    worst = replayed["max_position_diff_m"]
    out_console.print_json(json.dumps({"run": str(run), "episode": args.episode, "step": k, "max_position_diff_m": worst,
                                       "objects": len(replayed["poses"])}))
    return EXIT_SUCCESS if worst <= 1e-6 else EXIT_FAILED


def cmd_eval(args: argparse.Namespace) -> int:
    from embodied.runtime.agent import Agent
    from embodied.runtime.evaluate import EvalFolder
    from embodied.runtime.rollouts import check_backend
    from embodied.world.tasks import load_tasks

    config = _agent_config(args)
    tasks = load_tasks(args.tasks)
    check_backend(args.backend, args.ray_address)  # before anything loads
    out = Path(args.out) if args.out else _default_out(args.command)
    recording = _recording(args, out)
    # Before any work: one writer per folder (also for --fresh, which deletes), and rows that can be read.
    with EvalFolder(out) as folder:
        if not args.fresh:
            folder.check()
        with Agent.from_config(config) as agent:
            if not args.fresh:
                folder.check(agent.describe())  # another configuration is refused, named, before any episode
            report = _eval_with_progress(agent, tasks, folder, args, recording)
    out_console.print_json(json.dumps(report))
    console.print(f"results: {out}/results.jsonl  report: {out}/report.json")
    if recording is not None:
        console.print(f"{recording.format}: {recording.root} ({report['recording']['episodes']} episodes, checked)")
    return EXIT_SUCCESS


def _recording(args: argparse.Namespace, out: Path) -> Any:
    """`record --format F` writes into --out itself; `eval --record F` into --out/F."""
    from embodied.runtime.recording import RecordSpec

    if args.command == "record":
        return RecordSpec(args.format, out, fps=args.fps)
    if args.record:
        return RecordSpec(args.record, out / args.record, fps=args.fps)
    return None


def _eval_with_progress(agent: Any, tasks: list[Any], folder: Any, args: argparse.Namespace,
                        recording: Any = None) -> dict[str, Any]:
    """`agent.evaluate` with a progress bar on the console."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    wins = [0, 0]
    with Progress(TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), console=console) as progress:
        bar = progress.add_task("eval", total=len(tasks), rate="")

        def tick(row: dict[str, Any]) -> None:
            wins[0] += row["success"]
            wins[1] += 1
            progress.update(bar, advance=1, rate=f"success {wins[0]}/{wins[1]}")

        return agent.evaluate(tasks, folder, on_episode=tick, resume=not args.fresh, workers=args.workers,
                              backend=args.backend, ray_address=args.ray_address, recording=recording,
                              record={"command": args.command, "tasks": str(args.tasks), "n": len(tasks),
                                      "recording": recording.to_dict() if recording else None})


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "sim":
        from embodied.bench import bench_sim

        result = bench_sim(image_size=args.image_size, renderer=args.renderer)
    elif args.what == "planner":
        from embodied.llm.base import load_language_model
        from embodied.llm.bench import bench_planner

        result = bench_planner(load_language_model(args.llm), n_options=args.options, repeats=args.repeats)
    elif args.what == "grounding":
        from embodied.bench import bench_grounding

        result = bench_grounding(scenes=args.scenes, detection_seeds=args.detection_seeds)
    elif args.what == "perception":
        from embodied.bench import bench_perception

        result = bench_perception(args.tasks, n_tasks=args.n, detection_seeds=args.detection_seeds)
    elif args.what == "episode":
        from embodied.bench import bench_episode

        result = bench_episode(repeats=args.repeats, code=args.code)
    elif args.what == "web":
        from embodied.bench import bench_web

        result = bench_web(args.iterations)
    elif args.what == "ros":
        from embodied.bench import bench_ros

        result = bench_ros(args.profile)
    elif args.what == "rollouts":
        from embodied.bench import bench_rollouts

        result = bench_rollouts(args.tasks, n_tasks=args.n, workers=args.workers, backend=args.backend)
    else:
        raise EmbodiedError(f"unknown benchmark {args.what!r}")
    out_console.print_json(json.dumps(result))
    return 0


def cmd_ros(args: argparse.Namespace) -> int:
    """`ros sim`: serve the simulator as a ROS robot node; `ros move`: jog the hand through the safety layer;
    `ros estop`: engage (or --release) the e-stop."""
    from embodied.ros.profile import load_profile
    from embodied.ros.transport import make_transport, start_master

    profile = load_profile(args.profile)
    if args.action == "sim":
        import threading

        from embodied.ros.sim_node import SimNode

        master, uri = None, args.master
        if profile.transport == "ros1" and (uri == "auto" or (uri is None and not os.environ.get("ROS_MASTER_URI"))):
            master, uri = start_master()
        try:
            node = SimNode(make_transport(profile, "embodied_sim", uri), profile, image_size=args.image_size,
                           command_log=args.log, perception_size=args.perception_size)
            # for the bridge's process: where the master is (ROS 2: the DDS domain)
            out_console.print(f"ROS_MASTER_URI={uri}" if profile.transport == "ros1" else
                              f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}", soft_wrap=True)
            console.print(f"[green]simulator node ready[/] ({profile.name}; Ctrl-C stops it)")
            try:
                node.run(threading.Event())
            except KeyboardInterrupt:
                pass
            finally:
                node.close()
        finally:
            if master is not None:
                master.terminate()
                master.wait(5)
        return EXIT_SUCCESS
    from embodied.ros.robot import RosRobot

    transport = make_transport(profile, f"embodied_{args.action}", args.master)
    if args.action == "estop":
        publish = transport.publisher(profile.estop, "bool", latch=True)
        transport.wait_connected(2.0)
        publish(not args.release)
        time.sleep(0.3)  # let it go out before the node shuts down
        console.print("e-stop released" if args.release else "[red]e-stop engaged[/]")
        return EXIT_SUCCESS
    robot = RosRobot(transport, profile, dry_run=args.dry_run)
    robot.wait_ready()
    if args.to is None and args.gripper is None:
        raise EmbodiedError("ros move needs --to X,Y,Z and/or --gripper open|close")
    if args.to is not None:
        robot.move_to(args.to, args.yaw, args.speed)
    if args.gripper is not None and robot.fault is None:
        robot.set_gripper(args.gripper == "open", args.width)
    fault = robot.take_fault()
    sent = [c for c in robot.commands if c["sent"]]
    out_console.print_json(json.dumps({"commands": robot.commands, "sent": len(sent), "dry_run": args.dry_run,
                                       "fault": fault.reason if fault else None,
                                       "hand": [round(float(v), 4) for v in robot.proprio()[14:17]]}))
    if fault is not None:
        raise EmbodiedError(fault.reason)
    return EXIT_SUCCESS


def _xyz(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected X,Y,Z in metres, got {text!r}")
    return values  # type: ignore[return-value]


def cmd_crafter(args: argparse.Namespace) -> int:
    """Episodes in the Crafter world towards achievements; a line per episode on the console, the report as
    JSON on stdout."""
    from embodied.planners.crafter import CrafterPlanner, CrafterPlannerConfig
    from embodied.runtime.crafter import evaluate_crafter
    from envs.crafter import ACHIEVEMENTS

    if args.score:
        from embodied.cli_crafter import cmd_crafter_score

        return cmd_crafter_score(args)

    bad = [g for g in args.goals if g not in ACHIEVEMENTS]
    if bad:
        from embodied.world.scene import suggest

        raise EmbodiedError(f"unknown achievement {bad[0]!r}{suggest(bad[0], list(ACHIEVEMENTS))}")
    planner = CrafterPlanner(CrafterPlannerConfig(llm=args.llm, guard=not args.no_guard,
                                                  affordance=not args.no_affordance))

    def show(row: dict[str, Any]) -> None:
        colour = "green" if row["success"] else "red"
        console.print(f"[{colour}]{row['goal']} seed {row['seed']}: {'done' if row['success'] else 'not done'}[/] "
                      f"in {row['skills']} skills, {row['game_steps']} game steps"
                      + (" (died)" if row["dead"] else ""))

    report = evaluate_crafter(planner, args.goals, range(args.seed, args.seed + args.episodes), args.max_skills,
                              on_episode=show)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    out_console.print_json(json.dumps({k: v for k, v in report.items() if k != "episodes"}))
    return EXIT_SUCCESS


def cmd_serve(args: argparse.Namespace) -> int:
    """The local web app over --runs and --library, until Ctrl-C."""
    from embodied.library.store import default_library_path

    try:
        import uvicorn

        from embodied.web.app import check_bind, create_app
    except ImportError:
        raise EmbodiedError("the web app needs its extra: pip install 'embodied[web]' (`make setup` does)") from None
    check_bind(args.host, args.token)
    library = args.library or default_library_path()
    app = create_app(args.runs, library, token=args.token)
    link = f"http://{args.host}:{args.port}/" + (f"?token={args.token}" if args.token else "")
    console.print(f"serving {args.runs} and {library} at [bold]{link}[/] (Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_SUCCESS


def cmd_eval_vqa(args: argparse.Namespace) -> int:
    """Embodied question answering with the PaLM-E encoders, accuracy per question type on held-out scenes."""
    import torch

    from embodied.planners.palme import DEFAULT_CHECKPOINT, modality_flags
    from embodied.runtime.vqa import eval_vqa
    from embodied.world.seeds import VQA_HELDOUT

    try:
        VQA_HELDOUT.check(args.seed, args.scenes, "--seed")
    except ValueError as e:
        raise TaskError(f"{e}: other seeds overlap evaluation tasks or training scenes") from e
    if args.out:
        from embodied.world.paths import check_output_file

        check_output_file(args.out, "--out")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    flags = modality_flags(args.drop)
    with console.status(f"answering questions about {args.scenes} held-out scenes"):
        report = eval_vqa(args.scenes, args.seed, args.checkpoint or DEFAULT_CHECKPOINT, flags=flags,
                          max_per_type=args.max_per_type)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    out_console.print_json(json.dumps(report))
    return 0


TRAINERS = {"planner": "embodied.training.planner", "palme": "embodied.training.palme",
            "grounding": "embodied.training.grounding", "code": "embodied.training.code"}


def cmd_train(args: argparse.Namespace) -> int:
    """`embodied train planner|palme|grounding|code ARGS`: each trainer's own `main(argv)` parses the rest."""
    import importlib

    return int(importlib.import_module(TRAINERS[args.what]).main(args.rest) or 0)


def cmd_learn(args: argparse.Namespace) -> int:
    if args.env == "crafter":  # the open world's loop: embodied/cli_crafter.py
        from embodied.cli_crafter import cmd_learn_crafter
        return cmd_learn_crafter(args)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from embodied.library.store import SkillStore, default_library_path
    from embodied.planners.registry import make_planner
    from embodied.runtime.agent import planner_deps
    from embodied.runtime.learn import LearnConfig, curve, learn, next_iteration
    from embodied.runtime.rollouts import check_backend
    from embodied.runtime.sensing import Sensing
    from envs.tabletop import TabletopEnv

    config = LearnConfig(iterations=args.iterations, seed=args.seed, run=args.run, verify_seeds=args.verify_seeds)
    check_backend(args.backend, args.ray_address)  # before anything loads
    path = args.library or default_library_path()
    out = _checked_out_dir(Path(args.out))[0] if args.out else None  # before any work
    store = SkillStore(path)
    store.check_writable()  # a read-only library is refused now, not after the first iteration's work
    args.library, args.no_library = path, False
    agent_config = _agent_config(args)
    env = TabletopEnv(image_size=(args.image_size, args.image_size))
    sensing = None
    try:
        if agent_config.state == "perceived":  # learned in the world it is used in; ground-truth: the ablation
            sensing = Sensing(env.robot, agent_config.sensing)
            planner = make_planner(agent_config.planner, agent_config.planner_config(),
                                   **planner_deps(agent_config.planner, sensing))
        else:
            planner = make_planner(agent_config.planner, agent_config.planner_config())
    except BaseException:
        env.close()
        raise
    done = next_iteration(store.learn_log(config.run))  # what the library really holds
    console.print(f"[bold]learn[/] run {config.run!r}, library {path}"
                  + (f" (resuming after {done} iterations)" if done else ""))
    with Progress(TextColumn("[bold]learn[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=console) as progress:
        bar = progress.add_task("learn", total=config.iterations, completed=min(done, config.iterations), info="")

        def tick(row: dict[str, Any]) -> None:
            mark = "[green]solved[/]" if row["solved"] else f"[red]failed[/] ({row['reason']})"
            extra = f", added {row['skill']}" if row.get("skill_status") == "added" else ""
            progress.console.print(f"{row['iteration']:>4} {row['family']:<18} {mark}, "
                                   f"{row['llm_calls']} LLM calls{extra}")
            progress.update(bar, advance=1, info=f"library {len(store)} skills")

        try:
            with _learn_workers(args, agent_config, planner, env, sensing) as workers:
                history = learn(config, store, planner, env, on_iteration=tick, sensing=sensing, workers=workers)
        finally:
            env.close()
    rows = curve(history)
    summary = {"run": config.run, "library": str(path), "iterations": len(rows),
               "solved": sum(r["solved"] for r in rows), "skills_added": sum(r["skill_added"] for r in rows),
               "library_size": len(store)}
    if out is not None:
        (out / "curve.json").write_text(json.dumps(rows, indent=1))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    store.close()
    out_console.print_json(json.dumps(summary))
    return 0


def _learn_workers(args: argparse.Namespace, agent_config: Any, planner: Any, env: Any,
                   sensing: Any) -> contextlib.AbstractContextManager[Any]:
    """`learn --workers N` (or ``--backend ray``): workers that verify new skills side by side, forked from
    this process's world and models where they can; otherwise none (a null context)."""
    if args.workers == 1 and args.backend == "local" and args.ray_address is None:
        return contextlib.nullcontext()
    from embodied.runtime.agent import Agent
    from embodied.runtime.evaluate import file_hashes
    from embodied.runtime.rollouts import identity, make_workers

    agent = Agent(agent_config, planner, env, sensing, None)
    same = identity(agent.describe(), file_hashes(agent.checkpoints())) if sensing is not None else None
    return make_workers(agent_config, args.workers, args.backend, args.ray_address, same, agent=agent)


def cmd_skills(args: argparse.Namespace) -> int:
    from embodied.library.store import SkillStore, default_library_path

    path = args.library or default_library_path()
    if args.action == "export":
        from embodied.world.paths import check_output_file

        check_output_file(_need(args.name, "export"), "export FILE")
    # list/show/search/export only read: the file is opened read-only and never given a schema.
    store = SkillStore(path, create=args.action == "import", readonly=args.action in READ_ONLY_ACTIONS)
    try:
        return _SKILL_ACTIONS[args.action](store, args)
    finally:
        store.close()


def _skills_list(store: Any, args: argparse.Namespace) -> int:
    table = Table(title=f"{len(store)} skills in {store.path}", title_justify="left")
    for col in ("name", "params", "verified", "version", "learned from"):
        table.add_column(col)
    for r in store.all():
        table.add_row(r.name, ", ".join(p.name for p in r.params), f"{r.successes}/{r.attempts}",
                      str(r.version), r.provenance.get("instruction", "-"))
    out_console.print(table)
    return 0


def _skills_show(store: Any, args: argparse.Namespace) -> int:
    from rich.syntax import Syntax

    r = store.get(_need(args.name, "show"))
    out_console.print(f"[bold]{r.name}[/] v{r.version}: {r.description}")
    out_console.print("params: " + ", ".join(f"{p.name} ({p.kind})" for p in r.params))
    out_console.print(Syntax(r.code, "python", line_numbers=False))
    out_console.print(f"postcondition: {json.dumps(r.postcondition)}")
    out_console.print(f"verified: {r.successes}/{r.attempts}, last {r.last_verified or 'never'}")
    out_console.print(f"provenance: {json.dumps(r.provenance, sort_keys=True)}")
    for v in store.versions(r.name):
        out_console.print(f"  version {v['version']} ({v['created']}): {v['note']}")
    return 0


def _skills_search(store: Any, args: argparse.Namespace) -> int:
    from embodied.library.embed import default_embedder

    query = _need(args.name, "search")
    table = Table(title=f"closest to {query!r}", title_justify="left")
    for col in ("similarity", "name", "description"):
        table.add_column(col)
    for r, sim in store.search(default_embedder()([query])[0], k=args.k):
        table.add_row(f"{sim:.3f}", r.name, r.description)
    out_console.print(table)
    return 0


def _skills_verify(store: Any, args: argparse.Namespace) -> int:
    from embodied.runtime.verify import fresh_seeds, verify
    from envs.tabletop import TabletopEnv

    record = store.get(_need(args.name, "verify"))
    if record.provenance.get("world", "tabletop") == "crafter":  # a program of the open world: its own worlds
        from embodied.runtime.crafter_learn import fresh_worlds, verify_crafter

        check = verify_crafter(record, store, fresh_worlds(record, args.seeds))
        for seed in check.seeds:
            why = next((f.partition(": ")[2] for f in check.failures if f.startswith(f"seed {seed}:")), None)
            console.print(f"world {seed}: " + (f"[red]failed[/]: {why}" if why is not None else "[green]ok[/]"))
    else:
        env = TabletopEnv(image_size=(64, 64))
        try:
            check = verify(record, env, fresh_seeds(record, args.seeds), on_seed=lambda seed, ok, why: console.print(
                f"seed {seed}: " + ("[green]ok[/]" if ok else f"[red]failed[/]: {why}")))
        finally:
            env.close()
    record = store.record_verification(record.name, check.attempts, check.successes)
    out_console.print_json(json.dumps({"name": record.name, "seeds": check.seeds, "successes": check.successes,
                                       "failures": check.failures, "total": f"{record.successes}/{record.attempts}"}))
    return 0 if check.successes == check.attempts else 1


def _skills_rm(store: Any, args: argparse.Namespace) -> int:
    name = _need(args.name, "rm")
    store.remove(name)
    console.print(f"removed {name}")
    return 0


def _skills_export(store: Any, args: argparse.Namespace) -> int:
    from embodied.library.transfer import export_library

    n = export_library(store, _need(args.name, "export"))
    console.print(f"exported {n} skills to {args.name}")
    return 0


def _skills_import(store: Any, args: argparse.Namespace) -> int:
    from embodied.library.transfer import import_library

    report = import_library(store, _need(args.name, "import"))
    for line in report.rejected:
        console.print(f"[bold red]rejected:[/] {line}")
    console.print(f"imported {len(report.added)} new, {len(report.updated)} updated, {len(report.unchanged)} "
                  f"unchanged, {len(report.rejected)} rejected")
    return 2 if report.rejected else 0


def _need(value: str | None, action: str) -> str:
    if not value:
        what = {"search": "QUERY", "export": "FILE", "import": "FILE"}.get(action, "NAME")
        raise EmbodiedError(f"`embodied skills {action}` needs {what}")
    return value


READ_ONLY_ACTIONS = ("list", "show", "search", "export")
_SKILL_ACTIONS = {"list": _skills_list, "show": _skills_show, "search": _skills_search, "verify": _skills_verify,
                  "rm": _skills_rm, "export": _skills_export, "import": _skills_import}


def cmd_tasks(args: argparse.Namespace) -> int:
    from embodied.world.paths import check_output_file
    from embodied.world.tasks import save_tasks
    from envs.generator import generate_suite

    check_output_file(args.out, "--out")  # before generating
    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    tasks = generate_suite(args.n, args.seed, families)  # names unknown families with a did-you-mean
    save_tasks(tasks, args.out)
    console.print(f"wrote {len(tasks)} tasks to {args.out}")
    return 0


# ---------------------------------------------------------------------- parser
class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each flag's default (and its choices, argparse's own), 100 columns wide."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100, max_help_position=34)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        """The default, unless there is none to show (None, False) or the help already says it."""
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text or not text:
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("embodied")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from embodied.planners.palme import ALL_MODALITIES
    from embodied.runtime.recording import FORMATS
    from embodied.runtime.rollouts import BACKENDS
    from embodied.world.recording import RECORD_FPS

    parser = _Parser(prog="embodied", description="Language-driven robot agents in simulation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    parser.add_argument("--version", action="version", version=f"embodied {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run one episode and write summary.json (and video.mp4)")
    run.add_argument("instruction", nargs="?", help="what to do, in plain words")
    run.add_argument("--scene", help='task-format scene, e.g. \'{"blocks": ["red"], "bowls": ["green"]}\'')
    run.add_argument("--max-steps", type=POSITIVE, help="skill-call budget for an INSTRUCTION (default 2 x blocks + 2)")
    run.add_argument("--tasks", type=Path, help="task file (JSON lines)")
    run.add_argument("--id", help="task id in --tasks")
    run.add_argument("--generate", metavar="FAMILY", help="generate a task of this family")
    _add_planner_flags(run)
    run.add_argument("--seed", type=SEED, help="generator seed with --generate; overrides the task's seed otherwise")
    run.add_argument("--out", help="run folder (default runs/run-<time>)")
    run.add_argument("--video", action="store_true", help="also write video.mp4 (640x480, real time, captioned)")
    run.add_argument("--json", action="store_true", help="print summary.json on stdout at the end")
    run.add_argument("--states", action="store_true",
                     help="also save the whole simulation after every skill call (states/, for `embodied replay`)")
    run.add_argument("--image-size", type=IMAGE_SIZE, default=128, help="camera image side in pixels (8-1024)")
    _add_robot_flags(run)
    run.set_defaults(func=cmd_run)

    rp = sub.add_parser("replay", help="restore the simulation after a skill call: of a run (`run --states`), "
                                       "a LeRobot dataset or an MCAP log (`record`)")
    rp.add_argument("run", help="the run folder, LeRobot dataset folder or .mcap file")
    rp.add_argument("--step", type=POSITIVE, default=1, help="after which skill call (1: the first)")
    rp.add_argument("--episode", type=COUNT, default=0, help="episode index in a LeRobot dataset (from 0)")
    rp.set_defaults(func=cmd_replay)

    ev = sub.add_parser("eval", help="run every task of a file; results.jsonl + report.json")
    rec = sub.add_parser("record", help="run every task of a file and keep the episodes as data: a LeRobot "
                                        "v3.0 dataset or MCAP logs (plus results.jsonl + report.json)")
    for p in (ev, rec):
        p.add_argument("--tasks", type=Path, required=True, help="task file (JSON lines; `embodied tasks generate`)")
        _add_planner_flags(p)
        p.add_argument("--out", help=f"{p.prog.split()[-1]} folder (default runs/{p.prog.split()[-1]}-<time>); "
                                     "an existing one is resumed")
        p.add_argument("--fresh", action="store_true", help="discard results already in --out instead of resuming")
        p.add_argument("--workers", type=POSITIVE, default=1,
                       help="local processes running episodes side by side, each with its own world and models "
                            "(outcomes do not depend on it; the cores are shared out among them)")
        p.add_argument("--backend", choices=BACKENDS, default="local",
                       help="where --workers run: local processes, or Ray actors (pip install 'embodied[ray]'; "
                            "recording on a cluster needs --out on a folder every node shares)")
        p.add_argument("--ray-address", metavar="ADDR", help="a Ray cluster to join (with --backend ray); "
                       "default: a local Ray runtime started for the run")
        p.add_argument("--image-size", type=IMAGE_SIZE, default=128, help="camera image side in pixels (8-1024)")
        p.add_argument("--fps", type=int, choices=RECORD_FPS, default=10,
                       help="recorded frames per simulated second")
        _add_robot_flags(p)
        p.set_defaults(func=cmd_eval)
    ev.add_argument("--record", choices=FORMATS, help="also keep every episode as data in --out/FORMAT")
    rec.add_argument("--format", choices=FORMATS, required=True,
                     help="lerobot: a LeRobot v3.0 dataset (parquet + H.264 mp4); mcap: one ROS 2 MCAP log per "
                          "episode (Foxglove)")

    vqa = sub.add_parser("eval-vqa", help="PaLM-E embodied question answering: accuracy per question type")
    vqa.add_argument("--checkpoint", type=Path, help="encoder checkpoint folder (default: policies/palme)")
    vqa.add_argument("--scenes", type=POSITIVE, default=40, help="held-out oracle episodes whose scenes are asked about")
    vqa.add_argument("--seed", type=SEED, default=700_000, help="first scene seed (held out from training)")
    vqa.add_argument("--drop", type=_csv(tuple(ALL_MODALITIES)), default=(), metavar="M[,M]",
                     help="leave out camera, pointcloud and/or proprio (ablation)")
    vqa.add_argument("--max-per-type", type=COUNT, default=60, help="questions per type, a fixed sample (0: all)")
    vqa.add_argument("--out", help="also write the JSON report to this file")
    vqa.set_defaults(func=cmd_eval_vqa)

    bench = sub.add_parser("bench", help="measured speed and quality, as JSON")
    bench.add_argument("what", choices=["sim", "planner", "grounding", "perception", "episode", "rollouts", "ros",
                                        "web"], help="what to measure")
    bench.add_argument("--iterations", type=POSITIVE, default=20, help="`web`: learn iterations written meanwhile")
    bench.add_argument("--profile", type=Path, help="`ros`: the ROS profile of the simulator node to start "
                                                     "(default: sim.yaml; sim_ros2.yaml for ROS 2)")
    bench.add_argument("--scenes", type=POSITIVE, default=70, help="held-out scenes of skill executions for `grounding`")
    bench.add_argument("--detection-seeds", type=POSITIVE, default=60, help="perception scenes for `grounding` and `perception`")
    bench.add_argument("--llm", default="smollm2", help="language model for `bench planner`")
    bench.add_argument("--options", type=POSITIVE, default=53, help="options scored by `bench planner`")
    bench.add_argument("--repeats", type=POSITIVE, default=3, help="`planner`, `episode`: timed repeats")
    bench.add_argument("--tasks", type=Path, default=Path("benchmarks/generated_100.jsonl"),
                       help="task file whose first --n tasks `perception` runs")
    bench.add_argument("--n", type=POSITIVE, default=12,
                       help="episodes for `perception` (each run both ways) and `rollouts` (each run per --workers)")
    bench.add_argument("--code", type=Path, help="`episode`: also time this other checkout of embodied (say the "
                                                 "code before a change) in the same run")
    bench.add_argument("--workers", type=_positive_list, default=(1, 2), metavar="N[,N]",
                       help="`rollouts`: worker counts to compare in one run (1: the in-process eval)")
    bench.add_argument("--backend", choices=BACKENDS, default="local", help="`rollouts`: where workers run")
    bench.add_argument("--image-size", type=IMAGE_SIZE, default=128, help="`sim`: camera image side (px)")
    bench.add_argument("--renderer", choices=["tiny", "egl"], default="tiny", help="`sim`: PyBullet renderer")
    bench.set_defaults(func=cmd_bench)

    tr = sub.add_parser("train", help="train a model: planner (LoRA on oracle plans), palme (sensor encoders), "
                                      "grounding (affordance + success detector); `embodied train WHAT -h` for flags",
                        add_help=False)
    tr.add_argument("what", choices=list(TRAINERS), help="which model")
    tr.add_argument("rest", nargs=argparse.REMAINDER, help="the trainer's own flags")
    tr.set_defaults(func=cmd_train)

    le = sub.add_parser("learn", help="grow the skill library from environment feedback (resumable)")
    le.add_argument("--env", choices=["tabletop", "crafter"], default="tabletop",
                    help="the world: tabletop (default) or crafter (a lifelong game; --no-library: the baseline)")
    le.add_argument("--iterations", type=COUNT, default=50, help="tasks to attempt (each may add a skill)")
    le.add_argument("--seed", type=SEED, default=0, help="seed of the generated tasks")
    le.add_argument("--run", default="default", help="run name in the library's log; rerun to resume")
    le.add_argument("--verify-seeds", type=POSITIVE, default=3, help="fresh tables a new skill must work on")
    le.add_argument("--workers", type=POSITIVE, default=1,
                    help="processes that run a new skill's verification tables side by side (the outcomes "
                         "do not depend on it)")
    le.add_argument("--backend", choices=BACKENDS, default="local", help="where --workers run: local or ray")
    le.add_argument("--ray-address", metavar="ADDR", help="a Ray cluster to join (with --backend ray)")
    _add_planner_flags(le, infer_goal=False)
    le.add_argument("--out", help="also write curve.json and summary.json here")
    le.add_argument("--image-size", type=IMAGE_SIZE, default=128, help="main camera (the learned models read 128)")
    le.set_defaults(func=cmd_learn)

    sk = sub.add_parser("skills", help="curate the skill library: list | show NAME | search QUERY | verify NAME | "
                                       "rm NAME | export FILE | import FILE")
    sk.add_argument("action", choices=list(_SKILL_ACTIONS), help="what to do")
    sk.add_argument("name", nargs="?", help="skill NAME, search QUERY, or FILE for export/import")
    sk.add_argument("--library", type=Path, help="skill library database (default: $EMBODIED_LIBRARY or "
                                                 "~/.local/share/embodied/skills.db)")
    sk.add_argument("--seeds", type=POSITIVE, default=3, help="fresh seeds for `verify`")
    sk.add_argument("-k", type=POSITIVE, default=5, help="results for `search`")
    sk.set_defaults(func=cmd_skills)

    ros = sub.add_parser("ros", help="the ROS bridge: `sim` serves the simulator as a ROS robot node, `move` jogs "
                                     "the hand through the safety layer, `estop` engages the e-stop")
    ros.add_argument("action", choices=["sim", "move", "estop"], help="what to do")
    ros.add_argument("--profile", type=Path, help="ROS profile YAML (default: the simulator node's)")
    ros.add_argument("--master", help="ROS master URI (default: $ROS_MASTER_URI); `sim --master auto` starts a "
                                      "private one on 127.0.0.1 and prints its URI")
    ros.add_argument("--image-size", type=IMAGE_SIZE, default=128, help="`sim`: the main camera's side (px)")
    ros.add_argument("--perception-size", type=IMAGE_SIZE, default=160, help="`sim`: perception cameras' side (px)")
    ros.add_argument("--log", type=Path, help="`sim`: append every goal, reset and e-stop received (JSON lines)")
    ros.add_argument("--to", type=_xyz, metavar="X,Y,Z", help="`move`: the hand's target, world frame (m)")
    ros.add_argument("--yaw", type=float, default=0.0, help="`move`: the hand's yaw (rad)")
    ros.add_argument("--speed", type=float, default=0.3, help="`move`: m/s")
    ros.add_argument("--gripper", choices=["open", "close"], help="`move`: then open or close the gripper")
    ros.add_argument("--width", type=float, default=0.08, help="`move --gripper open`: the gap (m)")
    ros.add_argument("--dry-run", action="store_true", help="`move`: check and print the commands, send none")
    ros.add_argument("--release", action="store_true", help="`estop`: release instead of engaging")
    ros.set_defaults(func=cmd_ros)

    cr = sub.add_parser("crafter", help="the Crafter open world: episodes towards achievements with the SayCan "
                                        "planner; --score: the Crafter score over long episodes")
    cr.add_argument("--goals", type=_csv(()), default=("make_wood_pickaxe", "make_stone_pickaxe"),
                    metavar="A[,B]", help="achievements to reach, e.g. make_stone_pickaxe")
    cr.add_argument("--episodes", type=POSITIVE, default=3, help="worlds per goal (seeds from --seed)")
    cr.add_argument("--seed", type=SEED, default=0, help="first world seed")
    cr.add_argument("--max-skills", type=POSITIVE, default=40, help="skill calls per episode")
    cr.add_argument("--llm", default="smollm2", help="language model (the embedded one by default)")
    cr.add_argument("--no-guard", action="store_true", help="do not rule out skills the recipes say do not help")
    cr.add_argument("--no-affordance", action="store_true", help="ignore whether a skill can work now")
    cr.add_argument("--out", type=Path, help="also write the report with every episode's steps here (--score: a "
                                             "folder)")
    cr.add_argument("--score", action="store_true", help="long episodes, the curriculum proposing each next "
                                                         "achievement; the Crafter score (seeds: the score range)")
    cr.add_argument("--length", type=POSITIVE, default=1_000, help="--score: game steps per episode (the paper: 10000)")
    cr.add_argument("--library", type=Path, help="--score: offer this library's Crafter skills (learn --env crafter)")
    cr.add_argument("--random", action="store_true", help="--score: uniformly random actions instead (the baseline)")
    cr.set_defaults(func=cmd_crafter)

    sv = sub.add_parser("serve", help="a local web app: runs, evaluations and the skill library in a browser")
    sv.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run and eval folders (default: runs)")
    sv.add_argument("--library", type=Path, help="skill library database (default: $EMBODIED_LIBRARY or "
                                                 "~/.local/share/embodied/skills.db)")
    sv.add_argument("--port", type=POSITIVE, default=8765, help="port (default: 8765)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1; another needs --token)")
    sv.add_argument("--token", help="require this token on every request (?token= once, then a cookie)")
    sv.set_defaults(func=cmd_serve)

    tasks = sub.add_parser("tasks", help="generate a task file")
    tasks.add_argument("action", choices=["generate"], help="what to do")
    tasks.add_argument("--n", type=POSITIVE, default=100, help="how many tasks (at least 1)")
    tasks.add_argument("--seed", type=SEED, default=0, help="generator seed")
    tasks.add_argument("--families", help="comma-separated families (default: all)")
    tasks.add_argument("--out", type=Path, required=True, help="task file to write (JSON lines)")
    tasks.set_defaults(func=cmd_tasks)
    return parser


def _interrupt_on_sigterm() -> None:
    """SIGTERM ends a command like Ctrl-C: `KeyboardInterrupt` unwinds through the `finally` paths that write
    what finished (an eval's report.json), then exit 130."""
    import signal
    import threading

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn errors into one clear line and an exit code: 0 success,
    1 failed episode, 2 bad input (argparse's own errors too), 3 cannot, 4 internal error, 130 interrupted."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # bare `embodied`: what it can do, not an error
        parser.print_help()
        return EXIT_SUCCESS
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    _interrupt_on_sigterm()
    try:
        return int(args.func(args) or 0)
    except EmbodiedError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        console.print(f"[bold red]error:[/] file not found: {exc.filename}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; results written so far are kept")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the console shows one line unless --verbose
        if args.verbose:
            console.print_exception()
        else:
            console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} (rerun with -v for "
                          "details)", soft_wrap=True, highlight=False)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
