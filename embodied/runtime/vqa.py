"""Embodied question answering with the PaLM-E encoders (`embodied eval-vqa`): questions about a scene's
support relation ("what is on the red block?", "is the green bowl empty?", "which blocks can be picked?") and
about the last step ("did the last step succeed?"), asked of held-out scenes (seeds from ``VQA_HELDOUT``), every
answer scored as an option by the LM reading the scene as soft tokens; accuracy per question type.

The scenes are oracle episodes with real physics, recorded into one ``.npz`` cache of encoder inputs (after every
reset and executed step the hand retreats, as `Sensing.settle` does; some steps "fail" on purpose: not executed,
reported as failed). The PaLM-E trainer (`embodied train palme data|train`) records and reads its training data
with the same recorder and questions, so questions and caches have one definition.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embodied.planners.palme import ALL_MODALITIES, DEFAULT_CHECKPOINT, load_lm_for, question_prompt
from embodied.planners.prompting import FAILURE_REASONS, Step, option_text
from embodied.world.errors import EmbodiedError
from embodied.world.scene import SceneState
from embodied.world.seeds import PALME_TRAIN, VQA_HELDOUT
from envs.generator import FAMILY_NAMES, generate
from policies.palme import MAX_OBJECTS, PalmEEncoders, aux_targets, scene_features
from skills import SkillCall

log = logging.getLogger(__name__)

QUESTION_TYPES = ("on", "empty", "clear", "success")


def default_cache(name: str = "palme_data.npz") -> Path:
    """Where cached features go: $EMBODIED_CACHE, else the system temp folder (never the repository)."""
    return Path(os.environ.get("EMBODIED_CACHE", Path(tempfile.gettempdir()) / "embodied")) / name


# --------------------------------------------------------------------------- questions
def _listing(blocks: Sequence[str]) -> str:
    return " " + " and ".join(f"the {b}" for b in blocks) + "." if blocks else " none."


def scene_questions(names: Sequence[str], support: dict[str, str]) -> list[tuple[str, str, list[str], int]]:
    """Every question of types on / empty / clear about one scene: (type, question, options, answer index)."""
    blocks = [n for n in names if n.endswith("block")]
    bowls = [n for n in names if n.endswith("bowl")]
    out = []
    for b in blocks:
        above = [x for x, s in support.items() if s == b]
        opts = [" nothing."] + [f" the {x}." for x in blocks if x != b]
        out.append(("on", f"what is on the {b}?", opts, opts.index(f" the {above[0]}.") if above else 0))
    for w in bowls:
        full = any(s == w for s in support.values())
        out.append(("empty", f"is the {w} empty?", [" yes.", " no."], 1 if full else 0))
    if blocks:
        clear = sorted(b for b in blocks if not any(s == b for s in support.values()))
        sets = [clear] + [sorted(set(clear) ^ {b}) for b in sorted(blocks)]
        opts = list(dict.fromkeys(_listing(s) for s in sets))
        out.append(("clear", "which blocks can be picked?", opts, 0))
    return out


# --------------------------------------------------------------------------- recorded episodes
@dataclass
class DataConfig:
    """How the simulator data is made."""

    episodes: int = 400  # generated tasks run with the oracle (~3 observations each, ~1.5 s per episode)
    seed: int = PALME_TRAIN.start  # first task seed; keep >= 6,000,000 (disjoint from eval and other training)
    image_size: int = 128  # the env camera (eval uses 128)
    n_points: int = 64  # points per object segment
    fail_p: float = 0.15  # share of steps reported as failed without being executed

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise EmbodiedError(f"DataConfig.episodes must be >= 1, got {self.episodes}")
        if not 0.0 <= self.fail_p < 1.0:
            raise EmbodiedError(f"DataConfig.fail_p must be in [0, 1), got {self.fail_p}")


class _Store:
    """Observation features padded to MAX_OBJECTS, and JSON records that point at them."""

    def __init__(self) -> None:
        self.arrays: dict[str, list[np.ndarray]] = {k: [] for k in
                                                    ("rgb", "proprio", "points", "mask", "centroid", "labels", "aux")}
        self.scenes: list[dict[str, Any]] = []
        self.examples: list[dict[str, Any]] = []

    def add_obs(self, obs: dict[str, np.ndarray], state: SceneState, n_points: int) -> int:
        from embodied.world.symbolic import abstract

        f = scene_features(obs, state, n_points)
        n = len(state.objects)
        if n > MAX_OBJECTS:
            raise EmbodiedError(f"{n} objects in a scene; at most {MAX_OBJECTS} are encoded")
        for key in ("points", "mask", "centroid", "labels"):
            pad = np.zeros((MAX_OBJECTS,) + f[key].shape[1:], f[key].dtype)
            pad[:n] = f[key]
            self.arrays[key].append(pad)
        self.arrays["rgb"].append(f["rgb"])
        self.arrays["proprio"].append(f["proprio"])
        support = dict(abstract(state).support)
        names = list(state.objects)
        self.arrays["aux"].append(aux_targets(names, support))
        self.scenes.append({"names": names, "support": support})
        return len(self.scenes) - 1

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.stack(v) for k, v in self.arrays.items()}
        arrays["points"] = arrays["points"].astype(np.float16)
        meta = json.dumps({"scenes": self.scenes, "examples": self.examples})
        np.savez_compressed(path, meta=np.array(meta), **arrays)


def _observe(env: Any) -> dict[str, np.ndarray]:
    env.robot.home()
    return env.observation()


def collect_episode(env: Any, store: _Store, family: str, seed: int, config: DataConfig, rng: random.Random) -> None:
    """One oracle episode with real physics: planning targets and "did the last step succeed?" pairs."""
    from embodied.planners.oracle import OraclePlanner
    from embodied.world.symbolic import abstract
    from skills import get_skill

    task = generate(family, seed)
    env.reset(seed=task.seed, options={"task": task})
    obs = _observe(env)
    state = env.scene_state()
    k = store.add_obs(obs, state, config.n_points)
    history: list[Step] = []
    oracle = OraclePlanner(task.goal)
    for _ in range(task.max_steps + 2):
        call = oracle.next_call(abstract(state))  # "done" once the goal holds; None when it cannot be reached
        if call is None:
            break
        store.examples.append({"kind": "plan", "obs": k, "instruction": task.instruction,
                               "history": [step_to_dict(s) for s in history], "target": option_text(call)})
        if call.name == "done":
            break
        if rng.random() < config.fail_p:  # reported as failed, not executed: the scene is unchanged
            store.examples.append({"kind": "success", "obs": k, "history": [step_to_dict(s) for s in history]
                                   + [step_to_dict(Step(call, False))], "answer": 1})
            history.append(Step(call, False, rng.choice(FAILURE_REASONS)))
            continue
        skill = get_skill(call.name)
        result = skill.execute(env.robot, skill.params(call.args))
        obs = _observe(env)
        state = env.scene_state()
        k = store.add_obs(obs, state, config.n_points)
        worked = abstract(state).support.get(call.args.get("block", "")) == call.args.get("target")
        store.examples.append({"kind": "success", "obs": k, "history": [step_to_dict(s) for s in history]
                               + [step_to_dict(Step(call, worked))], "answer": 0 if worked else 1})
        history.append(Step(call, worked, "" if worked else result.reason or "missed target"))


def step_to_dict(step: Step) -> dict[str, Any]:
    """A history step as a cache record (JSON)."""
    return {"call": step.call.to_dict(), "success": step.success, "reason": step.reason}


def step_from_dict(d: dict[str, Any]) -> Step:
    """A history step back from its cache record."""
    c = d["call"]
    return Step(SkillCall(c.get("skill", c.get("name")), c.get("args", {})), d["success"], d.get("reason", ""))


def collect(config: DataConfig, out: Path) -> dict[str, Any]:
    """Run ``config.episodes`` oracle episodes (families in turn) and cache their features in ``out``."""
    from envs.tabletop import TabletopEnv

    t0 = time.perf_counter()
    env = TabletopEnv(image_size=(config.image_size, config.image_size))
    store, rng = _Store(), random.Random(config.seed)
    try:
        for i in range(config.episodes):
            collect_episode(env, store, FAMILY_NAMES[i % len(FAMILY_NAMES)], config.seed + i, config, rng)
            if (i + 1) % 25 == 0:
                log.info("%d/%d episodes, %d observations, %.0f s", i + 1, config.episodes, len(store.scenes),
                         time.perf_counter() - t0)
    finally:
        env.close()
    store.save(out)
    info = {"episodes": config.episodes, "observations": len(store.scenes), "examples": len(store.examples),
            "seconds": round(time.perf_counter() - t0, 1), "config": asdict(config), "path": str(out)}
    log.info("data: %s", info)
    return info


def load_data(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A cache written by ``collect``: its arrays and its scene / example records."""
    if not Path(path).exists():
        raise EmbodiedError(f"no PaLM-E data at {path}: make it with `embodied train palme data`")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(str(z["meta"]))
    return arrays, meta


def obs_features(arrays: dict[str, np.ndarray], k: int, n: int, order: np.ndarray | None = None
                 ) -> dict[str, np.ndarray]:
    """Cached features of observation ``k`` with its ``n`` objects (optionally re-ordered)."""
    order = np.arange(n) if order is None else order
    out = {key: arrays[key][k] for key in ("rgb", "proprio")}
    for key in ("points", "mask", "centroid", "labels"):
        out[key] = arrays[key][k][:n][order].astype(np.float32 if key != "mask" else bool)
    return out


# --------------------------------------------------------------------------- evaluation
def eval_vqa(n_scenes: int = 40, seed: int = VQA_HELDOUT.start, checkpoint: Path | str = DEFAULT_CHECKPOINT,
             lm: Any = None, flags: dict[str, bool] | None = None, data: Path | None = None,
             max_per_type: int = 0) -> dict[str, Any]:
    """Accuracy per question type on held-out scenes (oracle episodes from ``seed``, real physics): every
    question's answers are scored as options by the LM with the multimodal prefix; the best must be right.
    ``max_per_type`` (0: all) caps the questions of each type (a fixed random subset)."""
    import torch

    from policies.palme import MultimodalPrefix

    encoders = PalmEEncoders.load(checkpoint)
    lm = lm or load_lm_for(checkpoint, encoders.config)
    prefix = MultimodalPrefix(lm)
    flags = flags or dict(ALL_MODALITIES)
    path = data or default_cache(f"palme_vqa_{seed}_{n_scenes}.npz")
    if not path.exists():
        collect(DataConfig(episodes=n_scenes, seed=seed, fail_p=0.3), path)
    arrays, meta = load_data(path)
    items = []
    for k, sc in enumerate(meta["scenes"]):
        items += [(t, q, o, a, k, []) for t, q, o, a in scene_questions(sc["names"], sc["support"])]
    items += [("success", "did the last step succeed?", [" yes.", " no."], e["answer"], e["obs"],
               [step_from_dict(s) for s in e["history"]]) for e in meta["examples"] if e["kind"] == "success"]
    if max_per_type:  # a fixed random subset per type, so every type counts alike and runs stay short
        rng = random.Random(seed)
        items = [x for t in QUESTION_TYPES
                 for x in rng.sample([i for i in items if i[0] == t], min(max_per_type, sum(i[0] == t for i in items)))]
    right: dict[str, list[bool]] = {t: [] for t in QUESTION_TYPES}
    with torch.inference_mode():
        for qtype, question, options, answer, k, history in items:
            n = len(meta["scenes"][k]["names"])
            enc = encoders.encode(obs_features(arrays, k, n))
            prompt = question_prompt(question, history, n, flags=flags, obj_tokens=encoders.config.pointcloud.n_tokens)
            x = prefix.embed(prompt, {ph: v for ph, v in enc.items() if ph in prompt})
            scores = lm.score_embeds(x, options).logprob_sum
            right[qtype].append(int(np.argmax(scores)) == answer)
    per = {t: {"n": len(v), "accuracy": round(float(np.mean(v)), 4) if v else None} for t, v in right.items()}
    total = [x for v in right.values() for x in v]
    return {"n_scenes": len(meta["scenes"]), "n_questions": len(total), "seed": seed,
            "accuracy": round(float(np.mean(total)), 4), "per_type": per, "flags": flags}
