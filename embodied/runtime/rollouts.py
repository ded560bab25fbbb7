"""Episodes run beside each other: `LocalWorkers` keeps ``n`` processes, `RayWorkers` ``n`` Ray actors (on a
local Ray runtime or a cluster), each with its own world and models loaded across episodes, and hands them
tasks one at a time; rows come back in completion order. Both have ``run(tasks)``, the seam `evaluate` uses.

Every episode is seeded by its task, so an outcome does not depend on which worker ran it or when. A worker
that dies (``kill -9``, out of memory) has its task run again by a fresh worker; a task that takes down
``MAX_DEATHS`` workers ends as a failed row saying so, so an eval always finishes with each task once.
Local workers with one thread each (as many workers as cores) are forked from a parent that has already
loaded its agent (Linux): they share its weights copy-on-write and start at once, with the library's database
connection reopened. With more threads per worker (GNU OpenMP cannot run a multi-threaded region in a forked
child), without a loaded agent, or off Linux, they start with ``spawn`` and load their own. Workers ignore
Ctrl-C (the parent stops them) and leave when the parent is gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import Any

from embodied.world.errors import EmbodiedError
from embodied.world.tasks import Task

log = logging.getLogger(__name__)

MAX_DEATHS = 3  # workers a single task may take down before it is recorded as failed
START_TIMEOUT_S = 300.0  # a worker that has not loaded its models by then is taken as failed


class WorkerError(EmbodiedError):
    """A worker could not start, or an episode raised inside it (the message is the worker's)."""


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _set_threads(threads: int) -> None:
    """Torch's and the BLAS libraries' threads in this process: a worker gets its share of the cores."""
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(ImportError):  # numpy/open3d BLAS pools, already started in a forked child
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)


def longest_first(tasks: Sequence[Any]) -> list[Any]:
    """Tasks in the order workers get them: the longest first (by their step budget, which grows with the
    objects to move), so the run does not end with one long episode on one worker while the others idle;
    ties keep the file's order. Outcomes do not depend on the order (each episode is seeded by its task)."""
    return sorted(tasks, key=lambda t: -int(getattr(t, "max_steps", 0) or 0))


def _load_agent(config: dict[str, Any], threads: int) -> Any:
    """A worker's agent, with ``threads`` torch threads."""
    _set_threads(threads)
    from embodied.runtime.agent import Agent, AgentConfig

    return Agent.from_config(AgentConfig(**config))


@dataclasses.dataclass(frozen=True)
class VerifyJob:
    """One verification run of a library skill (``record``, a `SkillRecord` as a dict) on one seed: what
    `learn` hands its workers besides episodes."""

    record: dict[str, Any]
    seed: int

    @property
    def id(self) -> str:
        return f"verify-{self.record['name']}-{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {"job": "verify", "id": self.id, "record": self.record, "seed": self.seed}


def _verify_row(agent: Any, job: dict[str, Any]) -> dict[str, Any]:
    """A `VerifyJob` run on the worker's world: the skill's code on the seed's table, judged as `verify`
    judges (perceived state when the agent perceives)."""
    from embodied.library.store import SkillRecord, parse_params
    from embodied.runtime.verify import verify

    record = SkillRecord(**{**job["record"], "params": parse_params(job["record"]["params"], "record")})
    sensing = agent.sensing if agent.config.state == "perceived" else None
    check = verify(record, agent.env, [job["seed"]], sensing=sensing)
    return {"id": job["id"], "seed": job["seed"], "success": check.successes == 1,
            "reason": check.failures[0] if check.failures else ""}


def _row(agent: Any, task: dict[str, Any], recording: dict[str, Any] | None) -> dict[str, Any]:
    """One episode of a task (as JSON) and its results row, the episode recorded when ``recording`` (a
    `RecordSpec` as a dict) says so; a `VerifyJob`'s row when the message is one."""
    if task.get("job") == "verify":
        return _verify_row(agent, task)
    from embodied.runtime.evaluate import capture_for, recorded_row
    from embodied.runtime.recording import RecordSpec

    spec = RecordSpec(**recording) if recording else None
    return recorded_row(agent.run(Task.from_dict(task), capture=capture_for(agent.env, spec)), spec)


def identity(describe: dict[str, Any], checkpoints: dict[str, str]) -> str:
    """What a worker's agent must share with the parent's: the hash of the configuration keys that change
    results (``describe``), and of its checkpoint files (``file_hashes``; a cluster node with other weights
    is refused)."""
    from embodied.runtime.evaluate import _digest, config_hash

    return _digest([config_hash(describe), sorted(checkpoints.values())])


def _identity(agent: Any) -> str:
    """`identity` of a worker's own agent."""
    from embodied.runtime.evaluate import file_hashes

    return identity(agent.describe(), file_hashes(agent.checkpoints()))


_FORKED: dict[str, Any] = {}  # what a forked worker inherits: the parent's agent, the pipe ends to close


def _forked_worker(conn: Connection, threads: int, recording: dict[str, Any] | None) -> None:
    """A worker forked from the parent: its agent is the parent's (copied on write), with this process's
    threads and its own database connection."""
    for other in _FORKED.get("close", ()):  # the parent's pipe ends: EOF must reach whoever waits on them
        with contextlib.suppress(OSError):
            other.close()
    agent = _FORKED["agent"]

    def load() -> Any:
        _set_threads(threads)
        agent.after_fork()
        return agent

    _serve(load, conn, recording)


def _worker(config: dict[str, Any], conn: Connection, threads: int, recording: dict[str, Any] | None) -> None:
    """A spawned worker: loads its own agent from ``config``."""
    _serve(lambda: _load_agent(config, threads), conn, recording)


def _serve(load: Any, conn: Connection, recording: dict[str, Any] | None) -> None:
    """A worker's life: get its agent once, then run each task it is sent and send back its results row;
    it leaves when told, or when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and stops its workers
    parent = os.getppid()
    try:
        agent = load()
        identity = _identity(agent)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        log.debug("worker start failed", exc_info=True)
        conn.send(("error", None, f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", None, identity))
    try:
        while True:
            while not conn.poll(1.0):
                if os.getppid() != parent:  # the parent died without a word (kill -9)
                    return
            message = conn.recv()
            if message is None:
                return
            try:
                row = _row(agent, message, recording)
            except BaseException as e:  # noqa: BLE001
                import traceback

                conn.send(("error", message.get("id"), f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
                return
            conn.send(("row", message.get("id"), row))
    except (EOFError, OSError):  # the parent went away
        return
    finally:
        agent.close()


@dataclasses.dataclass
class _Slot:
    process: Any
    conn: Connection
    ready: bool = False
    task: Task | None = None  # the task it is running
    started: float = dataclasses.field(default_factory=time.monotonic)


class _Workers:
    """What both backends share: ``n`` workers building agents from ``config`` (an `AgentConfig`) that must
    match ``identity`` (`identity` of the parent's agent), recording episodes as ``recording`` says (a
    `RecordSpec`: on a cluster, its root must be a folder every node shares); a context manager that calls
    `close()`."""

    def __init__(self, config: Any, n: int, identity: str | None = None, recording: Any = None) -> None:
        if not isinstance(n, int) or n < 1:
            raise EmbodiedError(f"workers must be a positive integer, got {n!r}")
        self.config, self.n, self.identity, self.restarts = dataclasses.asdict(config), n, identity, 0
        self.recording = recording.to_dict() if recording is not None else None  # a `RecordSpec`

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalWorkers(_Workers):
    """``n`` local worker processes running episodes of the agent ``config`` (an `AgentConfig`); use as a
    context manager, or call `close()`."""

    def __init__(self, config: Any, n: int, threads: int | None = None, identity: str | None = None,
                 recording: Any = None, agent: Any = None) -> None:
        super().__init__(config, n, identity, recording)
        self.threads = threads or max(1, _cores() // n)  # the cores shared out: no oversubscription
        # forked from ``agent`` only with one thread each: GNU OpenMP (torch's, oneDNN's) hangs in a forked child
        # that opens a parallel region of more than one thread once the parent has had a thread pool
        self.agent = agent if agent is not None and self.threads == 1 and can_fork() else None
        self._ctx = get_context("fork" if self.agent is not None else "spawn")
        self._slots: list[_Slot] = []

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ.update({k: str(self.threads) for k in saved})  # numpy/open3d threads in the child too
        try:
            if self.agent is not None:
                _FORKED.update(agent=self.agent, close=[parent, *(s.conn for s in self._slots)])
                process = self._ctx.Process(target=_forked_worker, args=(child, self.threads, self.recording),
                                             daemon=True)
            else:
                process = self._ctx.Process(target=_worker, args=(self.config, child, self.threads,
                                                                  self.recording), daemon=True)
            process.start()
        finally:
            _FORKED.clear()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        return _Slot(process, parent)

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Each task's results row, as episodes finish; a dead worker's task is run again elsewhere."""
        pending: deque[Task] = deque(longest_first(tasks))
        deaths: Counter[str] = Counter()
        startup_deaths = 0
        while len(self._slots) < min(self.n, len(pending)):
            self._slots.append(self._start())
        while pending or any(s.task is not None for s in self._slots):
            for slot in self._slots:
                if slot.ready and slot.task is None and pending:
                    slot.task = pending.popleft()
                    slot.conn.send(slot.task.to_dict())
            late = [s for s in self._slots if not s.ready and time.monotonic() - s.started > START_TIMEOUT_S]
            if late:
                raise WorkerError(f"a worker did not load its models within {START_TIMEOUT_S:.0f} s")
            sources = {s.conn: s for s in self._slots} | {s.process.sentinel: s for s in self._slots}
            for source in wait(list(sources), timeout=5.0):
                slot = sources[source]
                if slot not in self._slots:
                    continue  # already replaced in this round
                message = self._receive(slot)
                if message is None:  # the worker died (no message left in its pipe)
                    if not slot.ready:
                        startup_deaths += 1
                        if startup_deaths >= MAX_DEATHS * self.n:
                            raise WorkerError(f"workers keep dying while loading ({startup_deaths} so far, exit "
                                              f"code {slot.process.exitcode}); run with --workers 1 to see why")
                    task = self._replace(slot)
                    row = _worker_died(task, deaths, pending) if task is not None else None
                    if row is not None:
                        yield task, row
                    continue
                kind, task_id, payload = message
                if kind == "ready":
                    _check_identity(self.identity, payload)
                    slot.ready = True
                elif kind == "row":
                    task, slot.task = slot.task, None
                    if task is None or task.id != task_id:
                        raise WorkerError(f"a worker answered for task {task_id!r}, which it was not running")
                    yield task, payload
                else:
                    first, _, trace = str(payload).partition("\n")
                    if trace:
                        log.debug("worker traceback:\n%s", trace)
                    raise WorkerError(f"worker failed{f' on task {task_id}' if task_id else ' to start'}: "
                                      f"{first}")

    def _receive(self, slot: _Slot) -> tuple[str, str | None, Any] | None:
        """The worker's next message, or None when it is dead with nothing left to read."""
        try:
            if slot.conn.poll():
                return slot.conn.recv()
        except (EOFError, OSError):
            return None
        return self._wait_message(slot) if slot.process.is_alive() else None

    @staticmethod
    def _wait_message(slot: _Slot) -> tuple[str, str | None, Any] | None:
        """The sentinel fired but the process may still be finishing: give it a moment, then read or call it
        dead."""
        slot.process.join(timeout=1.0)
        try:
            return slot.conn.recv() if slot.conn.poll() else None
        except (EOFError, OSError):
            return None

    def _replace(self, slot: _Slot) -> Task | None:
        """Swap a dead worker for a fresh one; returns the task it was running."""
        task = slot.task
        slot.conn.close()
        slot.process.join(timeout=1.0)
        with contextlib.suppress(ValueError):  # still running: left to the daemon flag
            slot.process.close()
        self._slots[self._slots.index(slot)] = self._start()
        self.restarts += 1
        return task

    def close(self) -> None:
        """Stop every worker (asked first, then terminated)."""
        for slot in self._slots:
            with contextlib.suppress(OSError, ValueError):  # already gone
                slot.conn.send(None)
        deadline = time.monotonic() + 5.0
        for slot in self._slots:
            slot.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(timeout=2.0)
            slot.conn.close()
        self._slots = []


class RayWorkers(_Workers):
    """``n`` Ray actors running episodes of the agent ``config``: on a local Ray runtime started here (quiet,
    127.0.0.1 only, no dashboard, usage stats off, a small object store; stopped on `close()`), or on the
    cluster at ``address``. An actor that dies has its task run again on a fresh one, as with `LocalWorkers`.
    Ray is an optional extra: ``pip install 'embodied[ray]'``."""

    def __init__(self, config: Any, n: int, address: str | None = None, threads: int | None = None,
                 identity: str | None = None, recording: Any = None) -> None:
        super().__init__(config, n, identity, recording)
        ray = self._ray = _import_ray()
        self._started = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            t0 = time.monotonic()
            try:
                if address is None:  # one CPU slot per actor, even with more actors than cores
                    ray.init(num_cpus=max(_cores(), n), include_dashboard=False, log_to_driver=False,
                             object_store_memory=100 * 2**20, _node_ip_address="127.0.0.1",
                             configure_logging=False)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as e:  # noqa: BLE001 - Ray raises many kinds; the user gets one line
                raise WorkerError(f"cannot start Ray{f' at {address}' if address else ''}: "
                                  f"{str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}"
                                  ) from None
            self._started = True
            log.info("Ray runtime %s in %.1f s", "started" if address is None else f"joined at {address}",
                     time.monotonic() - t0)
        self.threads = threads or (max(1, _cores() // n) if address is None else 1)
        self._actor = ray.remote(num_cpus=1, max_restarts=0)(_EpisodeActor)
        self._actors: list[Any] = []

    def _new_actor(self) -> Any:
        return self._actor.remote(self.config, self.threads, self.recording)

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Each task's results row, as episodes finish; a dead actor's task is run again on a fresh one."""
        ray = self._ray
        while len(self._actors) < min(self.n, len(tasks)):
            self._actors.append(self._new_actor())
        self._ready(self._actors)
        pending: deque[Task] = deque(longest_first(tasks))
        deaths: Counter[str] = Counter()
        idle = list(range(len(self._actors)))
        inflight: dict[Any, tuple[int, Task]] = {}
        while pending or inflight:
            while idle and pending:
                i, task = idle.pop(), pending.popleft()
                inflight[self._actors[i].run.remote(task.to_dict())] = (i, task)
            done, _ = ray.wait(list(inflight), num_returns=1, timeout=5.0)
            for ref in done:
                i, task = inflight.pop(ref)
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    if getattr(e, "actor_init_failed", False):
                        raise WorkerError(f"worker failed to start: {_ray_cause(e)}") from None
                    with contextlib.suppress(Exception):  # maybe only unreachable: free its CPU slot
                        ray.kill(self._actors[i])
                    self._actors[i] = self._new_actor()
                    self._ready([self._actors[i]])
                    self.restarts += 1
                    idle.append(i)
                    row = _worker_died(task, deaths, pending)
                    if row is not None:
                        yield task, row
                    continue
                except ray.exceptions.RayTaskError as e:
                    raise WorkerError(f"worker failed on task {task.id}: {_ray_cause(e)}") from None
                idle.append(i)
                yield task, row

    def _ready(self, actors: list[Any]) -> None:
        """Wait for ``actors`` to load their agents (`START_TIMEOUT_S`), each matching ``identity``."""
        ray = self._ray
        refs = [a.ready.remote() for a in actors]
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=START_TIMEOUT_S)
        if len(done) < len(refs):
            raise WorkerError(f"a Ray worker did not load its models within {START_TIMEOUT_S:.0f} s "
                              "(too few CPUs on the cluster?)")
        try:
            for identity in ray.get(refs):
                _check_identity(self.identity, identity)
        except ray.exceptions.RayError as e:
            raise WorkerError(f"worker failed to start: {_ray_cause(e)}") from None

    def close(self) -> None:
        """Stop the actors, and the local Ray runtime if this started it."""
        for actor in self._actors:
            with contextlib.suppress(Exception):  # already dead
                self._ray.kill(actor)
        self._actors = []
        if self._started:
            self._ray.shutdown()
            self._started = False


class _EpisodeActor:
    """A Ray actor's state: one agent, loaded once (`_load_agent`), running one episode per call."""

    def __init__(self, config: dict[str, Any], threads: int, recording: dict[str, Any] | None) -> None:
        self.agent, self.recording = _load_agent(config, threads), recording

    def ready(self) -> str:
        return _identity(self.agent)

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        return _row(self.agent, task, self.recording)


def _ray_cause(error: Exception) -> str:
    """The worker's own exception from a Ray error, in one line."""
    cause = getattr(error, "cause", None)
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(error).strip().splitlines()[-1]


BACKENDS = ("local", "ray")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EmbodiedError("--backend ray needs Ray: pip install 'embodied[ray]'") from None
    return ray


def check_backend(backend: str, address: str | None = None) -> None:
    """Refuse a backend that cannot run here, before anything loads: unknown, Ray missing, an address
    without Ray."""
    if backend not in BACKENDS:
        raise EmbodiedError(f"backend {backend!r} is not known; choose {' or '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise EmbodiedError("--ray-address needs --backend ray")
    if backend == "ray":
        _import_ray()


def can_fork() -> bool:
    """Whether local workers can be forked from a loaded agent: Linux only (fork is unsafe on macOS with its
    system frameworks, and absent on Windows)."""
    import multiprocessing
    import sys

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def make_workers(config: Any, n: int, backend: str = "local", address: str | None = None,
                 identity: str | None = None, recording: Any = None, agent: Any = None) -> LocalWorkers | RayWorkers:
    """The ``backend``'s workers for ``n`` episodes at a time (``address``: a Ray cluster to join); each
    worker's agent must match ``identity`` (`identity` of the parent's agent) and records its episodes as
    ``recording`` (a `RecordSpec`) says. Local workers fork from ``agent`` (the parent's, loaded) where they
    can, else load their own."""
    check_backend(backend, address)
    if backend == "local":
        return LocalWorkers(config, n, identity=identity, recording=recording, agent=agent)
    return RayWorkers(config, n, address, identity=identity, recording=recording)


def _check_identity(expected: str | None, got: str) -> None:
    if expected is not None and got != expected:
        raise WorkerError("a worker loaded another configuration or other checkpoint files than this process "
                          f"(identity {got} != {expected}); every worker must see the same files")


def _worker_died(task: Task, deaths: Counter[str], pending: deque[Task]) -> dict[str, Any] | None:
    """A worker died running ``task``: queue it to run again first, or, once it has taken down `MAX_DEATHS`
    workers, return its failed row."""
    deaths[task.id] += 1
    if deaths[task.id] >= MAX_DEATHS:
        log.error("task %s took down %d workers; recorded as failed", task.id, MAX_DEATHS)
        return _died_row(task, MAX_DEATHS)
    log.warning("a worker died running task %s; it runs again", task.id)
    pending.appendleft(task)
    return None


def _died_row(task: Task | VerifyJob, deaths: int) -> dict[str, Any]:
    """The results row of a task that took down ``deaths`` workers: failed, with the reason."""
    if isinstance(task, VerifyJob):
        return {"id": task.id, "seed": task.seed, "success": False,
                "reason": f"seed {task.seed}: the worker running it died {deaths} times"}
    row = {"id": task.id, "instruction": task.instruction, "family": task.family, "seed": task.seed,
           "success": False, "outcome": "failed", "reason": f"the worker running it died {deaths} times",
           "steps": [], "n_steps": 0, "seconds": 0.0, "n_skill_failures": 0}
    if task.expect == "cannot":
        row |= {"expect": "cannot", "why": task.why, "false_success": False}
    return row
