"""The `embodied` command line: thin `main()`s over the library; the console belongs to this module."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from embodied.world.errors import EmbodiedError, TaskError

STARTED = time.perf_counter()
console = Console(stderr=True)
out_console = Console()
log = logging.getLogger("embodied")


# ---------------------------------------------------------------------- helpers
def _default_out(kind: str) -> Path:
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _load_task(args: argparse.Namespace) -> Any:
    from embodied.world.tasks import load_tasks
    from envs.generator import generate

    if args.instruction:
        return _instruction_task(args)
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
    raise TaskError("say what to do: --tasks FILE [--id ID] or --generate FAMILY")


def _instruction_task(args: argparse.Namespace) -> Any:
    """A task from free text: the given --scene, or a table set for what the instruction names."""
    import numpy as np

    from embodied.instructions import scene_for
    from embodied.world.tasks import SceneSpec, Task

    if args.tasks or args.generate:
        raise TaskError("give either an INSTRUCTION or --tasks/--generate, not both")
    seed = args.seed if args.seed is not None else 0
    if args.scene:
        try:
            raw = json.loads(args.scene)
        except json.JSONDecodeError as e:
            raise TaskError(f"--scene is not valid JSON: {e.msg} (column {e.colno})") from e
        scene = SceneSpec.from_dict(raw, where="--scene")
    else:
        scene = scene_for(args.instruction, np.random.default_rng(seed))
    return Task(id="cli", instruction=args.instruction, scene=scene, goal=[], seed=seed,
                max_steps=args.max_steps or 2 * len(scene.blocks) + 2)


def _make_planner(name: str, args: argparse.Namespace) -> Any:
    from embodied.planners.registry import make_planner

    if name != "palme" and (getattr(args, "checkpoint", None) or getattr(args, "drop", None)):
        raise TaskError("--checkpoint and --drop belong to --planner palme")

    if name == "saycan":
        from embodied.planners.saycan import SayCanConfig

        return make_planner(name, config=SayCanConfig(
            llm=args.llm, adapter=args.adapter, affordance=not args.no_affordance, feedback=not args.no_feedback,
            examples=args.examples, library=_library_path(args), top_k=args.top_k,
            affordance_model=getattr(args, "affordance", "analytic")))
    if name == "palme":
        from embodied.planners.palme import DEFAULT_CHECKPOINT, PalmEPlannerConfig, modality_flags

        return make_planner(name, config=PalmEPlannerConfig(
            checkpoint=str(getattr(args, "checkpoint", None) or DEFAULT_CHECKPOINT),
            llm="" if args.llm == "smollm2" else args.llm, affordance=not args.no_affordance,
            affordance_model=getattr(args, "affordance", "analytic"), feedback=not args.no_feedback,
            **modality_flags(getattr(args, "drop", None) or [])))
    if name == "oracle" and getattr(args, "instruction", None):
        raise TaskError("the oracle plans from a goal, which free text does not give: use --tasks or --generate, "
                        "or --planner saycan")
    return make_planner(name)


def _planner_config(planner: Any) -> dict[str, Any]:
    """The planner's config as plain data (flags such as --drop or --no-affordance), for run records."""
    import dataclasses

    config = getattr(planner, "config", None)
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}


def _library_path(args: argparse.Namespace) -> str | None:
    """The skill library the planner retrieves from: --library, else the default one; None with --no-library."""
    from embodied.library.store import default_library_path

    if getattr(args, "no_library", False):
        return None
    return str(args.library or default_library_path())


def _add_library_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", type=Path, help="skill library database (default: $EMBODIED_LIBRARY or "
                                                "~/.local/share/embodied/skills.db)")


def _modalities(text: str) -> list[str]:
    """``--drop camera,proprio`` -> the modality names, each checked."""
    from embodied.planners.palme import ALL_MODALITIES

    known = tuple(ALL_MODALITIES)
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in known]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown modality {bad[0]!r}; choose from {', '.join(known)}")
    return names


def _add_planner_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--planner", default="saycan", help="saycan (default), palme (sensor tokens) or oracle")
    p.add_argument("--llm", default="smollm2", help="language model: smollm2 (embedded), a folder, a hub id, "
                                                    "or openai:<model>@<url>")
    p.add_argument("--adapter", default="default", help="LoRA adapter folder, 'default' (shipped) or 'none'")
    p.add_argument("--no-affordance", action="store_true", help="rank by the language model alone")
    p.add_argument("--no-feedback", action="store_true", help="do not write step outcomes into the prompt")
    p.add_argument("--examples", type=int, default=-1, help="few-shot examples (-1: 0 with an adapter, else 6)")
    _add_library_flag(p)
    p.add_argument("--no-library", action="store_true", help="plan with the primitives only")
    p.add_argument("--top-k", type=int, default=5, help="library skills retrieved per request")
    p.add_argument("--checkpoint", type=Path, help="palme: encoder checkpoint folder (default: policies/palme)")
    p.add_argument("--drop", type=_modalities, default=[], metavar="M[,M]",
                   help="palme ablation: leave out camera, pointcloud and/or proprio (comma-separated)")
    p.add_argument("--state", default="perceived", help="perceived (RGB-D perception, default) or ground-truth")
    p.add_argument("--affordance", default="learned", help="learned value functions (default) or analytic checks")
    p.add_argument("--success", default="learned", help="step outcomes from the learned success detector (default) "
                                                       "or the skills' analytic self-report")


def _sensing(args: argparse.Namespace, env: Any) -> Any:
    from embodied.runtime.sensing import Sensing, SensingConfig

    return Sensing(env, SensingConfig(state=args.state, affordance=args.affordance, success=args.success))


def _step_table(i: int, decision: Any, result: Any, top: int = 5) -> Table:
    table = Table(title=f"step {i}", show_lines=False, title_justify="left")
    for col, just in (("option", "left"), ("llm", "right"), ("affordance", "right"), ("combined", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    ranked = sorted(decision.options, key=lambda o: -o.combined)[:top]
    for o in ranked:
        chosen = decision.call is not None and o.call.key() == decision.call.key()
        style = "bold green" if chosen else ""
        table.add_row(o.text, f"{o.llm:.3g}", f"{o.affordance:.2f}", f"{o.combined:.3g}", style=style)
    if not ranked and decision.call is not None:
        from skills import call_text

        table.add_row(call_text(decision.call), "-", "-", "-", style="bold green")
    if result is not None:
        status = "[green]ok[/]" if result.success else f"[red]failed: {result.reason}[/]"
        table.caption = f"{status} ({result.steps} physics steps)"
    return table


# ---------------------------------------------------------------------- commands
def cmd_run(args: argparse.Namespace) -> int:
    from embodied.runtime.episode import VideoRecorder, run_episode, write_run
    from embodied.runtime.sensing import SensingConfig
    from envs.tabletop import TabletopEnv

    SensingConfig(state=args.state, affordance=args.affordance, success=args.success)  # bad flags: fail first
    task = _load_task(args)
    planner = _make_planner(args.planner, args)
    out = Path(args.out) if args.out else _default_out("run")
    console.print(f"[bold]{task.instruction}[/]  (task {task.id}, seed {task.seed}, planner {planner.name})")
    env = TabletopEnv(image_size=(args.image_size, args.image_size))
    first: list[float] = []

    def show(i: int, decision: Any, result: Any) -> None:
        if not first:
            first.append(time.perf_counter() - STARTED)
        console.print(_step_table(i, decision, result))

    try:
        recorder = VideoRecorder(env) if args.video else None
        sensing = _sensing(args, env)
        result = run_episode(env, task, planner, video=recorder, on_step=show, sensing=sensing)
        result.extra["first_action_s"] = round(first[0], 2) if first else None
        write_run(result, out, {"command": "run", "task": task.to_dict(), "planner": planner.name,
                                "image_size": args.image_size, "video": args.video, **sensing.describe(),
                                "library": _library_path(args)})
        if recorder is not None:
            recorder.save(out / "video.mp4")
    finally:
        env.close()
    colour = {"success": "green", "failed": "red", "cannot": "yellow"}[result.outcome]
    console.print(f"[{colour}]{result.outcome}[/] after {len(result.steps)} skill calls"
                  f"{': ' + result.reason if result.reason else ''}  ->  {out}/summary.json")
    return {"success": 0, "failed": 1, "cannot": 3}[result.outcome]


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from embodied.runtime.evaluate import evaluate
    from embodied.runtime.sensing import SensingConfig
    from embodied.world.tasks import load_tasks
    from envs.tabletop import TabletopEnv

    SensingConfig(state=args.state, affordance=args.affordance, success=args.success)  # bad flags: fail first
    tasks = load_tasks(args.tasks)
    planner = _make_planner(args.planner, args)
    out = Path(args.out) if args.out else _default_out("eval")
    out.mkdir(parents=True, exist_ok=True)
    env = TabletopEnv(image_size=(args.image_size, args.image_size))
    sensing = _sensing(args, env)
    (out / "config.json").write_text(json.dumps({"command": "eval", "tasks": str(args.tasks),
                                                 "planner": planner.name, "n": len(tasks), **sensing.describe(),
                                                 "library": _library_path(args) if args.planner == "saycan" else None,
                                                 "planner_config": _planner_config(planner)}, indent=2, default=str))
    wins = [0, 0]
    with Progress(TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), console=console) as progress:
        bar = progress.add_task("eval", total=len(tasks), rate="")

        def tick(row: dict[str, Any]) -> None:
            wins[0] += row["success"]
            wins[1] += 1
            progress.update(bar, advance=1, rate=f"success {wins[0]}/{wins[1]}")

        try:
            report = evaluate(tasks, planner, out, env, on_episode=tick, resume=not args.fresh, sensing=sensing)
        finally:
            env.close()
    out_console.print_json(json.dumps(report))
    console.print(f"results: {out}/results.jsonl  report: {out}/report.json")
    return 0


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
    else:
        raise EmbodiedError(f"unknown benchmark {args.what!r}")
    out_console.print_json(json.dumps(result))
    return 0


def cmd_eval_vqa(args: argparse.Namespace) -> int:
    """Embodied question answering with the PaLM-E encoders, accuracy per question type on held-out scenes."""
    import torch

    from embodied.planners.palme import DEFAULT_CHECKPOINT, modality_flags
    from embodied.training.palme import eval_vqa
    from embodied.world.seeds import VQA_HELDOUT

    try:
        VQA_HELDOUT.check(args.seed, args.scenes, "--seed")
    except ValueError as e:
        raise TaskError(f"{e}: other seeds overlap evaluation tasks or training scenes") from e
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    flags = modality_flags(args.drop)
    with console.status(f"answering questions about {args.scenes} held-out scenes"):
        report = eval_vqa(args.scenes, args.seed, args.checkpoint or DEFAULT_CHECKPOINT, flags=flags,
                          max_per_type=args.max_per_type)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    out_console.print_json(json.dumps(report))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from embodied.training.planner import DEFAULT_ADAPTER, TrainConfig, train

    try:
        config = TrainConfig(episodes=args.episodes, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             warmup=args.warmup, seed=args.seed)
    except ValueError as e:
        raise EmbodiedError(str(e)) from e
    out = args.out or DEFAULT_ADAPTER
    with Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("loss {task.fields[loss]}"), console=console) as progress:
        bar = progress.add_task("train", total=config.steps, loss="-")
        meta = train(config, out, llm=args.llm, device=args.device,
                     progress=lambda step, loss: progress.update(bar, completed=step + 1, loss=f"{loss:.4f}"))
    out_console.print_json(json.dumps(meta))
    console.print(f"adapter written to {out}")
    return 0


def cmd_learn(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from embodied.library.store import SkillStore, default_library_path
    from embodied.runtime.learn import LearnConfig, curve, learn
    from envs.tabletop import TabletopEnv

    config = LearnConfig(iterations=args.iterations, seed=args.seed, run=args.run, verify_seeds=args.verify_seeds)
    path = args.library or default_library_path()
    store = SkillStore(path)
    args.library, args.no_library = path, False
    planner = _make_planner(args.planner, args)
    env = TabletopEnv(image_size=(args.image_size, args.image_size))
    done = len(store.learn_log(config.run))
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
            history = learn(config, store, planner, env, on_iteration=tick)
        finally:
            env.close()
    rows = curve(history)
    out = Path(args.out) if args.out else None
    summary = {"run": config.run, "library": str(path), "iterations": len(rows),
               "solved": sum(r["solved"] for r in rows), "skills_added": sum(r["skill_added"] for r in rows),
               "library_size": len(store)}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "curve.json").write_text(json.dumps(rows, indent=1))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    store.close()
    out_console.print_json(json.dumps(summary))
    return 0


def cmd_skills(args: argparse.Namespace) -> int:
    from embodied.library.store import SkillStore, default_library_path

    path = args.library or default_library_path()
    store = SkillStore(path, create=args.action == "import")
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


_SKILL_ACTIONS = {"list": _skills_list, "show": _skills_show, "search": _skills_search, "verify": _skills_verify,
                  "rm": _skills_rm, "export": _skills_export, "import": _skills_import}


def cmd_tasks(args: argparse.Namespace) -> int:
    from embodied.world.tasks import save_tasks
    from envs.generator import generate_suite

    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    tasks = generate_suite(args.n, args.seed, families)  # names unknown families with a did-you-mean
    save_tasks(tasks, args.out)
    console.print(f"wrote {len(tasks)} tasks to {args.out}")
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embodied", description="Language-driven robot agents in simulation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one episode and write summary.json (and video.mp4)")
    run.add_argument("instruction", nargs="?", help="what to do, in plain words")
    run.add_argument("--scene", help='task-format scene, e.g. \'{"blocks": ["red"], "bowls": ["green"]}\'')
    run.add_argument("--max-steps", type=int, help="skill-call budget for an INSTRUCTION (default 2 x blocks + 2)")
    run.add_argument("--tasks", type=Path, help="task file (JSON lines)")
    run.add_argument("--id", help="task id in --tasks")
    run.add_argument("--generate", metavar="FAMILY", help="generate a task of this family")
    _add_planner_flags(run)
    run.add_argument("--seed", type=int, help="generator seed with --generate; overrides the task's seed otherwise")
    run.add_argument("--out", help="run folder (default runs/run-<time>)")
    run.add_argument("--video", action="store_true", help="also write video.mp4")
    run.add_argument("--image-size", type=int, default=128, help="camera image side in pixels")
    run.set_defaults(func=cmd_run)

    ev = sub.add_parser("eval", help="run every task of a file; results.jsonl + report.json")
    ev.add_argument("--tasks", type=Path, required=True)
    _add_planner_flags(ev)
    ev.add_argument("--out", help="eval folder (default runs/eval-<time>); an existing one is resumed")
    ev.add_argument("--fresh", action="store_true", help="discard results already in --out instead of resuming")
    ev.add_argument("--image-size", type=int, default=128, help="camera image side in pixels")
    ev.set_defaults(func=cmd_eval)

    vqa = sub.add_parser("eval-vqa", help="PaLM-E embodied question answering: accuracy per question type")
    vqa.add_argument("--checkpoint", type=Path, help="encoder checkpoint folder (default: policies/palme)")
    vqa.add_argument("--scenes", type=int, default=40, help="held-out oracle episodes whose scenes are asked about")
    vqa.add_argument("--seed", type=int, default=700_000, help="first scene seed (held out from training)")
    vqa.add_argument("--drop", type=_modalities, default=[], metavar="M[,M]",
                     help="leave out camera, pointcloud and/or proprio (ablation)")
    vqa.add_argument("--max-per-type", type=int, default=60, help="questions per type, a fixed sample (0: all)")
    vqa.add_argument("--out", help="also write the JSON report to this file")
    vqa.set_defaults(func=cmd_eval_vqa)

    bench = sub.add_parser("bench", help="measured speed and quality, as JSON")
    bench.add_argument("what", choices=["sim", "planner", "grounding"])
    bench.add_argument("--scenes", type=int, default=70, help="held-out scenes of skill executions for `grounding`")
    bench.add_argument("--detection-seeds", type=int, default=60, help="perception scenes for `grounding`")
    bench.add_argument("--llm", default="smollm2", help="language model for `bench planner`")
    bench.add_argument("--options", type=int, default=53, help="options scored by `bench planner`")
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--image-size", type=int, default=128)
    bench.add_argument("--renderer", choices=["tiny", "egl"], default="tiny")
    bench.set_defaults(func=cmd_bench)

    tr = sub.add_parser("train", help="fine-tune the planner's language model on oracle plans (LoRA)")
    tr.add_argument("what", choices=["planner"])
    tr.add_argument("--episodes", type=int, default=3000)
    tr.add_argument("--steps", type=int, default=600)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--warmup", type=int, default=30)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="cpu", help="cpu or cuda")
    tr.add_argument("--llm", default="smollm2")
    tr.add_argument("--out", type=Path, help="adapter folder (default: the shipped policies/planner_lora)")
    tr.set_defaults(func=cmd_train)

    le = sub.add_parser("learn", help="grow the skill library from environment feedback (resumable)")
    le.add_argument("--iterations", type=int, default=50)
    le.add_argument("--seed", type=int, default=0)
    le.add_argument("--run", default="default", help="run name in the library's log; rerun to resume")
    le.add_argument("--verify-seeds", type=int, default=3, help="fresh tables a new skill must work on")
    le.add_argument("--planner", default="saycan", help="saycan (default) or oracle")
    le.add_argument("--llm", default="smollm2")
    le.add_argument("--adapter", default="default")
    le.add_argument("--no-affordance", action="store_true")
    le.add_argument("--no-feedback", action="store_true")
    le.add_argument("--examples", type=int, default=-1)
    le.add_argument("--top-k", type=int, default=5)
    _add_library_flag(le)
    le.add_argument("--out", help="also write curve.json and summary.json here")
    le.add_argument("--image-size", type=int, default=64)
    le.set_defaults(func=cmd_learn)

    sk = sub.add_parser("skills", help="curate the skill library: list | show NAME | search QUERY | verify NAME | "
                                       "rm NAME | export FILE | import FILE")
    sk.add_argument("action", choices=list(_SKILL_ACTIONS))
    sk.add_argument("name", nargs="?", help="skill NAME, search QUERY, or FILE for export/import")
    _add_library_flag(sk)
    sk.add_argument("--seeds", type=int, default=3, help="fresh seeds for `verify`")
    sk.add_argument("-k", type=int, default=5, help="results for `search`")
    sk.set_defaults(func=cmd_skills)

    tasks = sub.add_parser("tasks", help="generate a task file")
    tasks.add_argument("action", choices=["generate"])
    tasks.add_argument("--n", type=int, default=100)
    tasks.add_argument("--seed", type=int, default=0)
    tasks.add_argument("--families", help="comma-separated families (default: all)")
    tasks.add_argument("--out", type=Path, required=True)
    tasks.set_defaults(func=cmd_tasks)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn known errors into one clear line and a non-zero exit."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    try:
        return int(args.func(args) or 0)
    except EmbodiedError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    except FileNotFoundError as exc:
        console.print(f"[bold red]error:[/] file not found: {exc.filename}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; results written so far are kept")
        return 130
    except Exception as exc:  # noqa: BLE001 - the console shows one line unless --verbose
        if args.verbose:
            console.print_exception()
        else:
            console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (rerun with -v for details)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
