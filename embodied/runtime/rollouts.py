"""Episodes run beside each other: `LocalWorkers` keeps ``n`` processes, each with its own world and models
loaded across episodes, and hands them tasks one at a time; rows come back in completion order.

Every episode is seeded by its task, so an outcome does not depend on which worker ran it or when. A worker
that dies (``kill -9``, out of memory) has its task run again by a fresh worker; a task that takes down
``MAX_DEATHS`` workers ends as a failed row saying so, so an eval always finishes with each task once.
Workers start with the ``spawn`` method (no copy of the parent's threads or open files) and ignore Ctrl-C:
the parent stops them.
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


def _worker(config: dict[str, Any], conn: Connection, threads: int) -> None:
    """A worker's life: load an agent once, then run each task it is sent and send back its results row."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and stops its workers
    try:
        import torch

        torch.set_num_threads(threads)
        from embodied.runtime.agent import Agent, AgentConfig
        from embodied.runtime.evaluate import result_row

        agent = Agent.from_config(AgentConfig(**config))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", None, f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", None, None))
    try:
        while True:
            message = conn.recv()
            if message is None:
                return
            task = Task.from_dict(message)
            try:
                row = result_row(agent.run(task))
            except BaseException as e:  # noqa: BLE001
                conn.send(("error", task.id, f"{type(e).__name__}: {e}"))
                return
            conn.send(("row", task.id, row))
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


class LocalWorkers:
    """``n`` local worker processes running episodes of the agent ``config`` (an `AgentConfig`); use as a
    context manager, or call `close()`."""

    def __init__(self, config: Any, n: int, threads: int | None = None) -> None:
        if not isinstance(n, int) or n < 1:
            raise EmbodiedError(f"workers must be a positive integer, got {n!r}")
        self.config = dataclasses.asdict(config)
        self.n = n
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.threads = threads or max(1, cores // n)  # the cores shared out: no oversubscription
        self._ctx = get_context("spawn")
        self._slots: list[_Slot] = []
        self.restarts = 0

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ.update({k: str(self.threads) for k in saved})  # numpy/open3d threads in the child too
        try:
            process = self._ctx.Process(target=_worker, args=(self.config, child, self.threads), daemon=True)
            process.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        return _Slot(process, parent)

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Each task's results row, as episodes finish; a dead worker's task is run again elsewhere."""
        pending: deque[Task] = deque(tasks)
        deaths: Counter[str] = Counter()
        while len(self._slots) < min(self.n, len(pending)):
            self._slots.append(self._start())
        started = time.monotonic()
        while pending or any(s.task is not None for s in self._slots):
            for slot in self._slots:
                if slot.ready and slot.task is None and pending:
                    slot.task = pending.popleft()
                    slot.conn.send(slot.task.to_dict())
            if not any(s.ready for s in self._slots) and time.monotonic() - started > START_TIMEOUT_S:
                raise WorkerError(f"no worker loaded its models within {START_TIMEOUT_S:.0f} s")
            sources = {s.conn: s for s in self._slots} | {s.process.sentinel: s for s in self._slots}
            for source in wait(list(sources), timeout=5.0):
                slot = sources[source]
                if slot not in self._slots:
                    continue  # already replaced in this round
                message = self._receive(slot)
                if message is None:  # the worker died (no message left in its pipe)
                    task = self._replace(slot)
                    if task is not None:
                        deaths[task.id] += 1
                        if deaths[task.id] >= MAX_DEATHS:
                            log.error("task %s took down %d workers; recorded as failed", task.id, MAX_DEATHS)
                            yield task, _died_row(task, MAX_DEATHS)
                        else:
                            log.warning("a worker died running task %s; it runs again", task.id)
                            pending.appendleft(task)
                    continue
                kind, task_id, payload = message
                if kind == "ready":
                    slot.ready = True
                elif kind == "row":
                    task, slot.task = slot.task, None
                    if task is None or task.id != task_id:
                        raise WorkerError(f"a worker answered for task {task_id!r}, which it was not running")
                    yield task, payload
                else:
                    raise WorkerError(f"worker failed{f' on task {task_id}' if task_id else ' to start'}: "
                                      f"{payload}")

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

    def __enter__(self) -> LocalWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _died_row(task: Task, deaths: int) -> dict[str, Any]:
    """The results row of a task that took down ``deaths`` workers: failed, with the reason."""
    return {"id": task.id, "instruction": task.instruction, "family": task.family, "seed": task.seed,
            "success": False, "outcome": "failed", "reason": f"the worker running it died {deaths} times",
            "steps": [], "n_steps": 0, "seconds": 0.0, "n_skill_failures": 0}
