"""Collect skill executions in simulation and train the learned affordance and success detector on them.

``collect`` runs ``pick_and_place`` with ``force=True`` (no pre-check refusal: physics decides) in scenes
built from generated tasks and then arranged with real skills. The label of a call is the environment's
outcome, read after the arm has retreated home and the scene has settled: the block's support (target a
block) or base (a bowl or location) per ``embodied.world.symbolic.abstract`` is the target, and no other object moved
more than 2 cm (a knocked tower is a failure). Each sample also records the analytic affordance
(``skill.affordance`` on the ground-truth state before) and the skill's self-report.

Per scene (seed ``s``; ``numpy.random.default_rng([s, 1])`` draws everything below):
  * task: a family from ``FAMILIES`` (fixed here, so new generator families do not change the data),
    ``generate(family, s, n_distractors=0..4)``; with probability ``p_long`` instead a long-horizon family
    from ``LONG`` (4-6 blocks, no distractors);
  * arrangement, with real skills through ``env.robot`` (never a teleport): towers of 2-4 blocks, a bowl
    filled with 4-5 blocks, blocks carried to the workspace edge or out of reach, blocks carried next to
    other objects (clutter) or next to a tall tower (hand clearance), a block put on a named location; in
    long-family scenes with probability ``p_tall`` one tower of 4-6 blocks (on a bowl 40% of the time);
  * ``calls_per_scene`` calls in sequence (the scene evolves): while a stack of 3 or more stands, with
    probability ``p_tower_top`` a block onto its top (or its top block elsewhere); otherwise a target kind
    (block, bowl, location) drawn uniformly, then with probability ``p_feasible`` a call the analytic check
    allows, else one it refuses (forced, about 40% of those still work, so labels come out ~60% positive);
    never a no-op call (the block already on/in/at the target) and never an object fallen off the table;
  * perturbations per call (recorded in the sample): the arm left hovering over the table while the
    "before" picture is taken (camera occlusion, ``p_occlude``); a grasp offset — the skill sees the block
    shifted by up to 1.2 cm and turned by up to 0.3 rad until it holds it (``p_grasp_offset``); the block's
    lateral friction scaled by 0.2-0.5 for the call (``World.set_friction``, ``p_low_friction``);
    the "after" picture with the arm hovering away from the block and target (``p_occlude_after``).

Seeds 0.. are for training (the last ``val_fraction`` of scenes validate), seeds from ``GROUNDING_HELDOUT``
for held-out evaluation. Training: binary cross-entropy, AdamW with cosine decay, left-right mirror and
+-1-cell crop shifts as augmentation; the epoch with the best validation F1 is kept and the decision
threshold is set on validation. `embodied train grounding all --out-dir policies` reproduces the shipped checkpoints.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embodied.training import show_progress
from embodied.world.errors import EmbodiedError, TaskError
from embodied.world.gripper import FAST, RELEASE_GAP, SLOW
from embodied.world.scene import BLOCK_SIZE, LOCATION_NAMES, LOCATIONS, TABLE_Z, SceneState
from embodied.world.seeds import GROUNDING_HELDOUT, GROUNDING_TRAIN
from embodied.world.symbolic import abstract, target_kind
from envs.generator import generate
from envs.sim import HOME
from policies.grounding import (
    DEFAULT_CHECKPOINTS,
    TARGET_KINDS,
    AffordanceConfig,
    CropNet,
    SuccessDetectorConfig,
    call_scalars,
    dataset_inputs,
    heightmap_crops,
    load_dataset,
    make_model,
    mirror_signs,
    save_checkpoint,
)
from skills import get_skill
from skills.motion import grasp_and_lift, travel_height
from skills.pick_and_place import PickAndPlace, execute_pick_and_place

log = logging.getLogger(__name__)

FAMILIES = ("block_in_bowl", "block_on_block", "block_at_location", "all_in_bowl", "matching_bowls", "stack_two",
            "stack_three", "stack_all", "ordered_tower", "combo")
LONG = ("tall_tower", "all_in_one_bowl", "sort_all")  # 4-6 blocks: scenes with room for towers of 4-6
DISPLACED = 0.02  # metres another object may move before the call counts as a failure
CACHE = Path.home() / ".cache" / "embodied" / "grounding"


@dataclass
class CollectConfig:
    """How scenes are built and calls are drawn (see the module docstring)."""

    calls_per_scene: int = 8  # calls in one scene before a fresh reset: resets cost ~4 calls' time
    image_size: int = 128  # camera pixels: at 128 a 1 cm cell holds ~3 points
    crop_cells: int = 32
    cell_size: float = 0.01
    p_feasible: float = 0.25  # share of calls the analytic check allows
    p_occlude: float = 0.15
    p_occlude_after: float = 0.1
    p_grasp_offset: float = 0.25
    p_low_friction: float = 0.15
    p_long: float = 0.3  # share of scenes drawn from a long-horizon family (4-6 blocks)
    p_tall: float = 0.6  # in those, share arranged as one tower of 4-6 (in a bowl 40% of the time)
    p_tower_top: float = 0.35  # with a stack of 3 or more: share of calls onto (or off) its top


# --------------------------------------------------------------------------- collection
class GraspOffsetRobot:
    """The Robot API with one block seen shifted and turned until it is held: a perturbed grasp."""

    def __init__(self, inner: Any, block: str, dxy: np.ndarray, dyaw: float) -> None:
        self.inner, self.block, self.dxy, self.dyaw = inner, block, dxy, dyaw

    def observe(self) -> SceneState:
        s = self.inner.observe()
        o = s.objects.get(self.block)
        if o is not None and s.held != self.block:
            s.objects[self.block] = replace(o, position=(o.position[0] + self.dxy[0], o.position[1] + self.dxy[1],
                                                         o.position[2]), yaw=o.yaw + self.dyaw)
        return s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def carry_to(env: Any, block: str, xy: tuple[float, float]) -> None:
    """Pick ``block`` (forced) and set it down at an arbitrary ``xy`` with the Robot API (may fail: physics)."""
    robot = env.robot
    if grasp_and_lift(robot, block, force=True).success:
        state = robot.observe()
        tip = np.asarray(state.ee_position)
        offset_z = state.objects[block].position[2] - tip[2]
        high, yaw = travel_height(state), state.ee_yaw
        robot.move_to((xy[0], xy[1], high), yaw, FAST)
        robot.move_to((xy[0], xy[1], TABLE_Z + BLOCK_SIZE / 2 + 0.006 - offset_z), yaw, SLOW)
    robot.set_gripper(True, RELEASE_GAP)
    robot.move_to((*robot.observe().ee_position[:2], TABLE_Z + 0.3), 0.0, FAST)


def _on_table(o: Any) -> bool:
    """Resting on (or held above) the table, not fallen off it: there is no floor, fallen objects fall forever."""
    x, y, z = o.position
    return TABLE_Z - 0.02 < z < TABLE_Z + 0.5 and -0.1 < x < 1.0 and abs(y) < 0.6


def _arrange(env: Any, rng: np.random.Generator, tall: bool = False) -> str:
    """Rearrange the fresh scene with real skills; returns the scenario's name. ``tall``: one tower of 4-6."""
    pnp = get_skill(PickAndPlace.name)
    state = env.scene_state()
    blocks, bowls = list(state.blocks), list(state.bowls)
    rng.shuffle(blocks)
    ops = ["plain", "stack", "full_bowl", "edge", "cluster", "tower_neighbour", "location"]
    weights = np.array([0.22, 0.18, 0.14, 0.14, 0.14, 0.1, 0.08])
    chosen = [ops[int(rng.choice(len(ops), p=weights))]] if not tall else ["tall_tower"]
    if chosen[0] != "plain" and rng.random() < 0.35:
        chosen.append(ops[1 + int(rng.choice(len(ops) - 1, p=weights[1:] / weights[1:].sum()))])

    def run(block: str, target: str) -> None:
        pnp.execute(env.robot, pnp.params({"block": block, "target": target}))

    for op in chosen:
        now = env.scene_state()
        free = [b for b in blocks if abstract(now).is_clear(b) and _on_table(now.objects[b])]
        if op == "tall_tower" and len(free) >= 4:
            n = int(rng.integers(4, min(6, len(free)) + 1))
            if bowls and rng.random() < 0.4:
                run(free[0], bowls[int(rng.integers(len(bowls)))])
            for a, b in zip(free[1:n], free[:n - 1], strict=True):
                run(a, b)
        elif op in ("stack", "tall_tower") and len(free) >= 2:
            n = int(rng.integers(2, min(4, len(free)) + 1))
            for a, b in zip(free[1:n], free[:n - 1], strict=True):
                run(a, b)
        elif op == "full_bowl" and bowls:
            bowl = bowls[int(rng.integers(len(bowls)))]
            for b in free[:int(rng.integers(4, 6))]:
                run(b, bowl)
        elif op == "edge" and free:
            for b in free[:int(rng.integers(1, 3))]:
                side = int(rng.integers(3))
                if side == 0:  # far edge, around the limit of reach
                    xy = (rng.uniform(0.68, 0.82), rng.uniform(-0.3, 0.3))
                elif side == 1:  # left/right edge
                    xy = (rng.uniform(0.3, 0.72), float(rng.choice([-1, 1])) * rng.uniform(0.3, 0.4))
                else:  # close to the base
                    xy = (rng.uniform(0.14, 0.26), rng.uniform(-0.15, 0.15))
                carry_to(env, b, xy)
        elif op in ("cluster", "tower_neighbour") and len(free) >= 2:
            anchor = free[0]
            movers = free[1:]
            if op == "tower_neighbour" and len(free) >= 3:
                for a, b in zip(free[1:3], free[:2], strict=True):
                    run(a, b)
                movers = free[3:]
            objs = env.scene_state().objects
            if rng.random() < 0.3 and bowls:
                anchor = bowls[int(rng.integers(len(bowls)))]
            centre = objs[anchor].xy
            for b in movers[:int(rng.integers(1, 4))]:
                ang, r = rng.uniform(0, 2 * math.pi), rng.uniform(0.05, 0.075) + (0.07 if anchor in bowls else 0.0)
                carry_to(env, b, (centre[0] + r * math.cos(ang), centre[1] + r * math.sin(ang)))
        elif op == "location" and free:
            run(free[0], LOCATION_NAMES[int(rng.integers(len(LOCATION_NAMES)))])
    env.robot.move_to(HOME, 0.0, FAST)
    env.world.step(60)
    return "+".join(chosen)


def _peek(env: Any, rng: np.random.Generator, away_from: list[np.ndarray] | None = None) -> None:
    """Leave the arm hovering 28-45 cm over the table (the top camera then sees less)."""
    for _ in range(20):
        xy = np.array([rng.uniform(0.3, 0.7), rng.uniform(-0.3, 0.3)])
        if not away_from or all(np.linalg.norm(xy - a[:2]) > 0.15 for a in away_from):
            break
    env.robot.move_to((xy[0], xy[1], TABLE_Z + rng.uniform(0.28, 0.45)), rng.uniform(-1.5, 1.5), FAST)


def _choose_call(state: SceneState, rng: np.random.Generator, p_feasible: float,
                 p_tower_top: float = 0.0) -> tuple[str, str, float]:
    """With a stack of 3 or more, with probability ``p_tower_top`` a block onto its top (or its top block
    elsewhere, a third of those); otherwise a target kind uniformly among those present, then with probability
    ``p_feasible`` a call the analytic check allows (else one it refuses); never one whose block is already there."""
    skill = get_skill(PickAndPlace.name)
    sym = abstract(state)
    present = [n for n in state.objects if _on_table(state.objects[n])]
    calls = [(b, t) for b in state.blocks if b in present
             for t in [*[n for n in present if n != b], *LOCATION_NAMES]
             if t != (sym.support[b] if t in sym.support else sym.base(b))]  # not already there
    aff = np.array([skill.affordance(state, skill.params({"block": b, "target": t})) for b, t in calls])
    tops = [b for b in state.blocks if b in present and sym.is_clear(b) and len(sym.chain(b)) >= 2]
    if tops and rng.random() < p_tower_top:
        top = max(tops, key=lambda b: (len(sym.chain(b)), b))
        onto = rng.random() < 2 / 3
        pool = [i for i, (b, t) in enumerate(calls) if (t == top if onto else b == top)]
        if pool:
            i = pool[int(rng.integers(len(pool)))]
            return calls[i][0], calls[i][1], float(aff[i])
    kinds = np.array([TARGET_KINDS.index(_position(state, t)[1]) for _, t in calls])
    kind = rng.choice(np.unique(kinds))
    want = 1.0 if rng.random() < p_feasible else 0.0
    for pool in (np.flatnonzero((aff == want) & (kinds == kind)), np.flatnonzero(kinds == kind)):
        if len(pool):
            break
    i = int(pool[int(rng.integers(len(pool)))])
    return calls[i][0], calls[i][1], float(aff[i])


def _label(before: SceneState, after: SceneState, block: str, target: str) -> tuple[bool, float]:
    """(success, largest displacement of any other object) per the module docstring."""
    sym = abstract(after)
    landed = sym.support.get(block) if target_kind(sym, target) == "block" else sym.base(block)
    moved = max((float(np.linalg.norm(np.subtract(after.objects[n].position, o.position)))
                 for n, o in before.objects.items() if n != block and _on_table(o)), default=0.0)
    return bool(landed == target and moved <= DISPLACED), moved


def _position(state: SceneState, name: str) -> tuple[np.ndarray, str]:
    if name in LOCATIONS:
        return np.array([*LOCATIONS[name], TABLE_Z], np.float32), "location"
    o = state.objects[name]
    return np.asarray(o.position, np.float32), o.kind


def collect_scene(env: Any, seed: int, config: CollectConfig) -> list[dict[str, Any]]:
    """All samples of one scene (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, 1])
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    long = rng.random() < config.p_long
    if long:
        family = LONG[int(rng.integers(len(LONG)))]
    n_distractors = int(rng.integers(0, 5)) if not long else 0
    while True:
        task = generate(family, seed, n_distractors=n_distractors)
        try:
            env.reset(seed=seed, options={"task": task})
            break
        except TaskError:  # too many objects to lay out: fewer distractors
            if n_distractors == 0:
                raise
            n_distractors -= 1
    scenario = _arrange(env, rng, tall=long and rng.random() < config.p_tall)
    samples = []
    for k in range(config.calls_per_scene):
        occlude = rng.random() < config.p_occlude
        if occlude:
            _peek(env, rng)
        state0 = env.scene_state()
        if state0.held is not None:  # something stuck in the hand: let it go before the next call
            env.robot.set_gripper(True)
            env.robot.move_to(HOME, 0.0, FAST)
            env.world.step(60)
            state0 = env.scene_state()
        block, target, aff = _choose_call(state0, rng, config.p_feasible, config.p_tower_top)
        obs0 = env.observation()
        (bp, _), (tp, kind) = _position(state0, block), _position(state0, target)
        raw0 = heightmap_crops(obs0["points"], np.stack([bp[:2], tp[:2]]), config.crop_cells, config.cell_size)
        robot: Any = env.robot
        offset = np.zeros(3)
        if rng.random() < config.p_grasp_offset:
            offset = np.array([*rng.uniform(-0.012, 0.012, 2), rng.uniform(-0.3, 0.3)])
            robot = GraspOffsetRobot(env.robot, block, offset[:2], float(offset[2]))
        friction = 1.0
        mu0 = env.world.friction(block)
        if rng.random() < config.p_low_friction:
            friction = float(rng.uniform(0.2, 0.5))
            env.world.set_friction(block, mu0 * friction)
        result = execute_pick_and_place(robot, block, target, force=True)
        if env.world.finger_gap() < RELEASE_GAP - 0.005:  # a failed call may end with the fingers closed
            env.robot.set_gripper(True, RELEASE_GAP)
        env.robot.move_to(HOME, 0.0, FAST)
        env.world.step(60)
        if friction != 1.0:
            env.world.set_friction(block, mu0)
        state1 = env.scene_state()
        label, moved = _label(state0, state1, block, target)
        occlude_after = rng.random() < config.p_occlude_after
        if occlude_after:
            _peek(env, rng, away_from=[bp, tp])
        obs1 = env.observation()
        raw1 = heightmap_crops(obs1["points"], np.stack([bp[:2], tp[:2]]), config.crop_cells, config.cell_size)
        if occlude_after:
            env.robot.move_to(HOME, 0.0, FAST)
        samples.append({
            "seed": seed, "index": k, "family": family, "scenario": scenario, "block": block, "target": target,
            "kind": TARGET_KINDS.index(kind), "block_pos": bp, "target_pos": tp,
            "raw_before": raw0.astype(np.float16), "raw_after": raw1.astype(np.float16),
            "proprio_before": obs0["proprio"], "proprio_after": obs1["proprio"],
            "scalars": call_scalars(bp, tp, kind, obs0["proprio"]), "analytic": aff, "label": label,
            "self_report": bool(result.success), "reason": result.reason, "moved": moved,
            "occluded": occlude, "occluded_after": occlude_after, "grasp_offset": offset.astype(np.float32),
            "friction_scale": friction})
    return samples


def _stack(samples: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out = {}
    for key in samples[0]:
        vals = [s[key] for s in samples]
        out[key] = np.asarray(vals) if not isinstance(vals[0], str) else np.asarray(vals, dtype=str)
    return out


def collect(seeds: range | list[int], out: Path, config: CollectConfig | None = None,
            save_every: int = 25) -> Path:
    """Run every scene of ``seeds`` and save the samples to ``out`` (.npz, rewritten every ``save_every`` scenes)."""
    from envs.tabletop import TabletopEnv

    config = config or CollectConfig()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = TabletopEnv(image_size=(config.image_size, config.image_size))
    samples: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    seeds = list(seeds)
    try:
        for i, seed in enumerate(seeds):
            samples += collect_scene(env, seed, config)
            if (i + 1) % save_every == 0 or i + 1 == len(seeds):
                data = _stack(samples)
                np.savez_compressed(out, **data, config=json.dumps(asdict(config)),
                                    seconds=time.perf_counter() - t0)
                log.info("%d/%d scenes, %d samples, %.0f%% positive, %.1f s", i + 1, len(seeds), len(samples),
                         100 * data["label"].mean(), time.perf_counter() - t0)
    finally:
        env.close()
    return out


# --------------------------------------------------------------------------- training
def f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The decision threshold that maximises F1 on (p, y); ties go to the one nearest 0.5."""
    best_t, best_f1 = 0.5, -1.0
    for t in np.linspace(0.05, 0.95, 91):
        pred = p >= t
        tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if f1 > best_f1 + 1e-9 or (abs(f1 - best_f1) <= 1e-9 and abs(t - 0.5) < abs(best_t - 0.5)):
            best_t, best_f1 = float(t), f1
    return round(best_t, 3)


def train(type_: str, data_path: Path, out: Path | None = None, *, epochs: int = 40, batch_size: int = 128,
          lr: float = 2e-3, weight_decay: float = 1e-4, val_fraction: float = 0.15, seed: int = 0,
          threads: int = 2, jitter: int = 1, config_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``type_`` ("affordance" or "success_detector") on a collected dataset; save the checkpoint
    (config.json, model.safetensors, loss.png, metrics.json) in ``out``; return the training metrics."""
    from embodied.grounding import binary_metrics

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    config_cls = {"affordance": AffordanceConfig, "success_detector": SuccessDetectorConfig}[type_]
    data = load_dataset(data_path)
    collected = json.loads(str(data["config"]))
    config = config_cls(crop_cells=collected["crop_cells"], cell_size=collected["cell_size"],
                        image_size=collected["image_size"], **(config_overrides or {}))
    out = Path(out or DEFAULT_CHECKPOINTS[type_])
    t0 = time.perf_counter()
    crops, scalars = dataset_inputs(config, data)
    y = data["label"].astype(bool)
    seeds = np.unique(data["seed"])
    val_seeds = seeds[len(seeds) - max(1, int(round(val_fraction * len(seeds)))):]
    is_val = np.isin(data["seed"], val_seeds)
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(tr) == 0 or len(va) == 0:
        raise TaskError(f"{data_path}: {len(seeds)} scene(s) cannot be split into training and validation "
                         f"with val_fraction={val_fraction}; collect more scenes")
    xc, xs, yt = torch.from_numpy(crops), torch.from_numpy(scalars), torch.from_numpy(y.astype(np.float32))
    signs = torch.from_numpy(mirror_signs(config.scalar_names))
    model = make_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(tr) / batch_size)
    total = epochs * steps_per_epoch
    losses, val_losses, best = [], [], (-1.0, None, 0)
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)]
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            c, s = xc[idx], xs[idx]  # (B, C, S, S), (B, n)
            flip = torch.rand(len(idx), generator=gen) < 0.5  # left-right mirror: columns are +y
            c = torch.where(flip[:, None, None, None], c.flip(-1), c)
            s = torch.where(flip[:, None], s * signs, s)
            if jitter:  # shift each crop by up to `jitter` cells: positions from perception are off by ~1 cm
                shift = torch.randint(-jitter, jitter + 1, (len(idx), 2), generator=gen)
                c = torch.stack([torch.roll(ci, (int(a), int(b)), (-2, -1)) for ci, (a, b) in zip(c, shift, strict=True)])
            for group in opt.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(c, s), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        p_val = model.predict(crops[va], scalars[va])
        val_loss = float(torch.nn.functional.binary_cross_entropy(torch.from_numpy(p_val).clamp(1e-6, 1 - 1e-6),
                                                                  yt[va]))
        val_losses.append(val_loss)
        f1 = binary_metrics(p_val, y[va], 0.5)["f1"]
        if f1 >= best[0]:
            best = (f1, {k: v.clone() for k, v in model.state_dict().items()}, epoch)
        log.info("%s epoch %d: train loss %.4f, val loss %.4f, val F1 %.3f", type_, epoch, np.mean(losses[-steps_per_epoch:]),
                 val_loss, f1)
    model.load_state_dict(best[1])
    p_val = model.predict(crops[va], scalars[va])
    model.config.threshold = f1_threshold(p_val, y[va])
    seconds = time.perf_counter() - t0
    save_checkpoint(model, out)
    _plot(losses, val_losses, steps_per_epoch, out / "loss.png", type_)
    metrics = {"type": type_, "dataset": str(data_path), "n_train": int(len(tr)), "n_val": int(len(va)),
               "train_positive_rate": round(float(y[tr].mean()), 4), "best_epoch": best[2], "epochs": epochs,
               "threshold": model.config.threshold, "train_seconds": round(seconds, 1),
               "val": binary_metrics(p_val, y[va], model.config.threshold),
               "n_parameters": sum(p.numel() for p in model.parameters()),
               "hyperparameters": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
                                   "val_fraction": val_fraction, "seed": seed, "threads": threads,
                                   "jitter": jitter},
               "loss": {"train_per_epoch": [round(float(np.mean(losses[i:i + steps_per_epoch])), 4)
                                            for i in range(0, len(losses), steps_per_epoch)],
                        "val_per_epoch": [round(v, 4) for v in val_losses]}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _plot(losses: list[float], val_losses: list[float], steps_per_epoch: int, path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib not installed: %s skipped (metrics.json has the curve)", path.name)
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    k = max(1, steps_per_epoch // 2)
    smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
    ax.plot(np.arange(len(smooth)) / steps_per_epoch, smooth, label="train (smoothed)")
    ax.plot(np.arange(1, len(val_losses) + 1), val_losses, "o-", ms=3, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _load_model(folder: Path, type_: str) -> CropNet:
    from policies.grounding import load_checkpoint

    return load_checkpoint(folder, expect_type=type_)


def evaluate_heldout(data_path: Path, affordance: Path | None = None, success_detector: Path | None = None,
                     write: bool = True) -> dict[str, Any]:
    """Held-out metrics (see ``embodied.grounding.grounding_metrics``), also written into each
    checkpoint's metrics.json under "heldout" when ``write``."""
    from embodied.grounding import grounding_metrics

    aff_dir = Path(affordance or DEFAULT_CHECKPOINTS["affordance"])
    sd_dir = Path(success_detector or DEFAULT_CHECKPOINTS["success_detector"])
    metrics = grounding_metrics(data_path, affordance=aff_dir, success_detector=sd_dir)
    if write:
        for folder, keys in ((aff_dir, ("affordance",)), (sd_dir, ("success_detector",))):
            path = folder / "metrics.json"
            own = json.loads(path.read_text()) if path.exists() else {}
            own["heldout"] = {"dataset": str(data_path), "n": metrics["n"], "positive_rate": metrics["positive_rate"],
                              **{k: metrics[k] for k in keys}}
            path.write_text(json.dumps(own, indent=2))
    return metrics


REPRODUCE = "embodied train grounding all --out-dir policies"
_TITLES = {"affordance": ("Learned affordance", "p(pick_and_place succeeds | observation before, call)",
                          "analytic", "the skill's pre-check (`Skill.affordance`)"),
           "success_detector": ("Learned success detector", "p(the call succeeded | observations before and after, call)",
                                "self_report", "the skill's self-report (`SkillResult.success`)")}


def write_readme(folder: Path, type_: str, command: str = REPRODUCE) -> Path:
    """``README.md`` beside a checkpoint: what it is, the exact command that made it, its held-out numbers."""
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    cfg = json.loads((folder / "config.json").read_text())
    title, what, base, base_text = _TITLES[type_]
    lines = [f"# {title}", "", f"{what}: a tiny CNN over 1 cm top-down heightmap crops (from `obs['points']`) around the",
             "block and the target plus an MLP over positions and proprioception (`policies/grounding.py`).",
             f"Trained on {metrics['n_train']} simulated `pick_and_place` executions ({metrics['n_val']} more validate), "
             "labelled by the environment's outcome", "(see `embodied/training/grounding.py`).", "",
             "Reproduce (collects both datasets, trains both models, evaluates on held-out seeds >= 500000):", "",
             "```", command, "```", "",
             f"Config: `config.json` (threshold {cfg['threshold']} chosen on validation); weights: `model.safetensors` "
             f"({metrics['n_parameters']} parameters); loss curve: `loss.png`; all numbers: `metrics.json`.", ""]
    held = metrics.get("heldout")
    if held:
        m = held[type_]
        lines += [f"Held-out ({held['n']} calls, {100 * held['positive_rate']:.0f}% positive):", "",
                  "| | F1 | AUROC | precision | recall |", "|---|---|---|---|---|"]
        for who, label in (("learned", "learned (this model)"), (base, base_text)):
            lines.append(f"| {label} | {m[who]['f1']:.3f} | {m[who]['auroc']:.3f} | {m[who]['precision']:.3f} | "
                         f"{m[who]['recall']:.3f} |")
        lines.append("")
    (folder / "README.md").write_text("\n".join(lines))
    return folder / "README.md"


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    """`embodied train grounding collect|train|evaluate|all` and its flags."""
    ap = argparse.ArgumentParser(prog="embodied train grounding", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["collect", "train", "evaluate", "all"])
    ap.add_argument("--train-scenes", type=int, default=240, help="training scenes (seeds 0..N-1)")
    ap.add_argument("--heldout-scenes", type=int, default=70, help=f"held-out scenes (seeds {GROUNDING_HELDOUT.start}..)")
    ap.add_argument("--calls-per-scene", type=int, default=CollectConfig.calls_per_scene)
    ap.add_argument("--cache", type=Path, default=CACHE, help="where datasets go (default %(default)s)")
    ap.add_argument("--model", choices=["affordance", "success_detector", "both"], default="both")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None, help="checkpoint folder (one model only)")
    ap.add_argument("--out-dir", type=Path, default=None,
                    help="folder for both checkpoints (DIR/affordance, DIR/success_detector; default "
                         "runs/train-grounding-<time>; `--out-dir policies` replaces the shipped ones)")
    return ap


def _check(args: argparse.Namespace, train_path: Path, heldout_path: Path) -> None:
    """Bad flags and missing datasets as one-line errors, before minutes of work."""
    for flag in ("train_scenes", "heldout_scenes", "calls_per_scene", "epochs"):
        if getattr(args, flag) < 1:
            raise EmbodiedError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    try:
        GROUNDING_TRAIN.check(0, args.train_scenes, "--train-scenes: seed")
        GROUNDING_HELDOUT.check(GROUNDING_HELDOUT.start, args.heldout_scenes, "--heldout-scenes: seed")
    except ValueError as e:
        raise EmbodiedError(str(e)) from e
    if args.out is not None and args.model == "both":
        raise EmbodiedError("--out names one checkpoint folder: choose the model with --model")
    needs = {"train": [train_path], "evaluate": [heldout_path]}.get(args.command, [])
    for path in needs:
        if not path.is_file():
            raise EmbodiedError(f"no grounding dataset at {path}: make it with `embodied train grounding collect` "
                                "and the same --cache, --train-scenes, --heldout-scenes and --calls-per-scene")


def main(argv: list[str] | None = None) -> int:
    """Collect datasets, train the affordance and success-detector checkpoints, evaluate them held out."""
    args = build_parser().parse_args(argv)
    cfg = CollectConfig(calls_per_scene=args.calls_per_scene)
    train_path = args.cache / f"train_{args.train_scenes}x{cfg.calls_per_scene}.npz"
    heldout_path = args.cache / f"heldout_{args.heldout_scenes}x{cfg.calls_per_scene}.npz"
    _check(args, train_path, heldout_path)
    show_progress(__name__, fmt="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    if args.command in ("collect", "all"):
        for path, seeds in ((train_path, range(args.train_scenes)),
                            (heldout_path, range(GROUNDING_HELDOUT.start, GROUNDING_HELDOUT.start + args.heldout_scenes))):
            t0 = time.perf_counter()
            collect(seeds, path, cfg)
            print(json.dumps({"dataset": str(path), "seconds": round(time.perf_counter() - t0, 1)}))
    models = ["affordance", "success_detector"] if args.model == "both" else [args.model]
    # never the shipped checkpoints unless asked for (--out-dir policies): a new folder per run
    out_dir = args.out_dir or Path("runs") / time.strftime("train-grounding-%Y%m%d-%H%M%S")
    folders = {m: (args.out if args.out is not None and m == args.model else out_dir / m) for m in DEFAULT_CHECKPOINTS}
    if args.command in ("train", "all"):
        for m in models:
            print(json.dumps({k: v for k, v in train(m, train_path, folders[m], epochs=args.epochs).items()
                              if k != "loss"}))
    if args.command in ("evaluate", "all"):
        if args.command == "evaluate" and args.out_dir is None and args.out is None:
            folders = dict(DEFAULT_CHECKPOINTS)  # evaluating alone reads (and annotates) the shipped ones
        print(json.dumps(evaluate_heldout(heldout_path, folders["affordance"], folders["success_detector"]), indent=2))
        for m in ("affordance", "success_detector"):
            write_readme(folders[m], m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
