"""Every safety case tried through the bridge against a running robot (the simulator node in tests and
`embodied bench ros`): each must be refused with its reason and never reach the robot, per the robot's own
command log; an e-stop in the middle of a motion must stop the arm; a dry run must send nothing."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from embodied.ros.robot import RosRobot

SAFE = (0.40, 0.0, 0.90)  # a target inside every shipped workspace, near home


def _case(robot: RosRobot, goals: Callable[[], int], name: str, command: Callable[[], Any]) -> dict[str, Any]:
    before = goals()
    command()
    fault = robot.take_fault()
    time.sleep(0.3)  # anything sent would have reached the robot's log by now
    return {"case": name, "refused": fault is not None, "message": fault.reason if fault else None,
            "halt": bool(fault and fault.halt), "reached_robot": goals() - before}


def safety_cases(robot: RosRobot, goals: Callable[[], int], *, short_step: RosRobot | None = None,
                 pause: Callable[[bool], None] | None = None) -> list[dict[str, Any]]:
    """The refusals: target outside the box, a NaN, too fast, a gripper too wide, a step longer than
    ``short_step``'s limit, and (with ``pause``, which stops the robot's state stream) stale state.
    ``goals()`` counts the goals the robot has logged."""
    cases = [_case(robot, goals, "pose outside the workspace", lambda: robot.move_to((0.5, 0.0, 0.3), 0.0, 0.3)),
             _case(robot, goals, "NaN in the target", lambda: robot.move_to((math.nan, 0.0, 0.8), 0.0, 0.3)),
             _case(robot, goals, "too fast", lambda: robot.move_to((0.5, 0.0, 0.8), 0.0, 5.0)),
             _case(robot, goals, "gripper too wide", lambda: robot.set_gripper(True, 0.2))]
    if short_step is not None:
        cases.append(_case(short_step, goals, "step too large", lambda: short_step.move_to((0.6, 0.2, 0.8), 0.0, 0.3)))
    if pause is not None:
        pause(True)
        try:
            time.sleep(2 * robot.profile.limits.max_state_age_s)
            cases.append(_case(robot, goals, "stale state", lambda: robot.move_to(SAFE, 0.0, 0.3)))
        finally:
            pause(False)
        time.sleep(0.3)
    return cases


def estop_case(robot: RosRobot, goals: Callable[[], int], estop: Callable[[bool], None],
               stops: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """A slow 0.8 m move, the e-stop engaged once the robot has it: the move ends with the e-stop's fault,
    the arm short of its target; ``stops()`` is the robot's log of braking (simulated ms to rest)."""
    robot.move_to((0.30, -0.30, 0.75), 0.0, 0.5)
    robot.take_fault()
    before, done = goals(), []
    mover = threading.Thread(target=lambda: done.append(robot.move_to((0.70, 0.30, 0.75), 0.0, 0.05)))
    mover.start()
    end = time.monotonic() + 10
    while goals() == before and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.2)
    estop(True)
    mover.join(15)
    fault = robot.take_fault()
    refused_while_engaged = not robot.move_to(SAFE, 0.0, 0.3)
    robot.take_fault()
    estop(False)
    time.sleep(0.3)
    robot.take_fault()
    hand = [round(float(v), 4) for v in robot.proprio()[14:17]]
    rest = stops()[-1] if stops() else {}
    return {"case": "e-stop in the middle of a motion", "move_finished": bool(done and done[0]),
            "message": fault.reason if fault else None, "halt": bool(fault and fault.halt),
            "stop_ms_simulated": rest.get("stop_ms"), "hand_when_stopped": hand,
            "refused_while_engaged": refused_while_engaged, "moves_after_release": robot.move_to(SAFE, 0.0, 0.5)}


def dry_run_case(dry: RosRobot, goals: Callable[[], int]) -> dict[str, Any]:
    """A dry run checks and logs commands and sends none."""
    before = goals()
    dry.move_to((0.45, 0.1, 0.85), 0.0, 0.3)
    dry.set_gripper(False)
    time.sleep(0.3)
    return {"case": "dry run", "commands_logged": len(dry.commands), "sent": sum(c["sent"] for c in dry.commands),
            "reached_robot": goals() - before}
