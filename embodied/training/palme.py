"""`embodied train palme data|train|vqa`: PaLM-E encoders trained as soft prompts of a language model.

**data** runs generated tasks (seeds from ``PALME_TRAIN``, disjoint from evaluation seeds < 1e6 and the
other training ranges 1e6-5e6) with the oracle and real physics: after every reset and executed step the hand
retreats (as `Sensing.settle` does), the top camera's observation is encoded into cached features (64x64 rgb,
per-object point columns, proprio) with the ground-truth support relation; some steps "fail" on purpose (not
executed, reported as failed) so the model learns to retry. Everything goes into one ``.npz`` cache (never git).
The recorder and the questions live in ``embodied.runtime.vqa``, shared with evaluation.

**train** keeps the LM (with the shipped planner LoRA) frozen and fits the encoders (soft prompting) or, with
``--lora``, the encoders and the LM's adapter together (PaLM-E's fine-tuned variant; the adapter is saved in
the checkpoint) on two kinds of next-token targets (shares set by ``--questions``): the oracle's next step
given the multimodal scene and the history, and embodied questions about the scene ("what is on the red
block?", "is the green bowl empty?", "which blocks can be picked?", "did the last step succeed?"; the first
question of a sequence has its answers balanced, since most bowls are empty and most steps succeed), plus a
small auxiliary loss on the point trunk. ``--data`` takes several caches (e.g. a second seed range) and merges them.

**vqa** scores every question's answers as options on held-out scenes (seeds from 700,000) per question type
(``embodied.runtime.vqa.eval_vqa``, as `embodied eval-vqa`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embodied.planners.palme import (
    ALL_MODALITIES,
    DEFAULT_CHECKPOINT,
    load_frozen_lm,
    load_lm_for,
    modality_flags,
    planning_prompt,
    question_prompt,
)
from embodied.planners.prompting import Step
from embodied.runtime.vqa import (
    QUESTION_TYPES,
    DataConfig,
    collect,
    default_cache,
    eval_vqa,
    load_data,
    obs_features,
    scene_questions,
    step_from_dict,
)
from embodied.training import show_progress
from embodied.world.errors import EmbodiedError
from embodied.world.seeds import PALME_TRAIN, VQA_HELDOUT
from policies.palme import N_RELATION, PalmEConfig, PalmEEncoders, PointCloudConfig

log = logging.getLogger(__name__)

CONTRAST_TYPES = ("on", "empty")  # questions about one object, which another object can answer the other way


# --------------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """The encoder fit; defaults made the shipped checkpoint (see the module docstring for the command)."""

    steps: int = 400  # optimiser steps
    batch_size: int = 8  # sequences per step (planning and question sequences, see ``questions``); the LM backward dominates
    lr: float = 2e-3
    warmup: int = 20
    aux_weight: float = 0.3  # weight of the auxiliary relation loss on the point trunk
    modality_dropout: float = 0.1  # chance to drop the camera / proprio tokens from a prompt (robust ablations)
    reword_p: float = 0.4  # chance to reword a planning instruction (embodied.training.planner.reword)
    pack: int = 3  # questions per question sequence (same scene): more targets per LM pass
    questions: float = 0.5  # share of each batch that are question sequences (the rest: planning targets)
    contrast: float = 0.5  # share of on/empty question sequences that pair objects answering both ways
    aux_steps: int = 1500  # point-trunk steps on the relation targets alone before the LM loss (no LM: seconds)
    bf16: bool = True  # run the frozen LM under bfloat16 autocast (CPU): ~3x faster here, encoders stay fp32
    lora: bool = False  # also tune the LM's LoRA adapter (PaLM-E's "fine-tuned" variant); saved with the encoders
    lora_lr: float = 5e-4  # learning rate of the adapter (the encoders use ``lr``)
    minutes: float = 0.0  # wall-clock budget (0: none): the schedule follows whichever of steps/time runs out first
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise EmbodiedError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < 1:
            raise EmbodiedError(f"TrainConfig.lr must be in (0, 1), got {self.lr}")
        if not 0.0 <= self.questions <= 1.0:
            raise EmbodiedError(f"TrainConfig.questions must be in [0, 1], got {self.questions}")
        if not 0.0 <= self.contrast <= 1.0:
            raise EmbodiedError(f"TrainConfig.contrast must be in [0, 1], got {self.contrast}")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise EmbodiedError(f"TrainConfig.modality_dropout must be in [0, 1), got {self.modality_dropout}")


def _adapter_config(model: Any) -> Any:
    """The LoRAConfig that describes the adapters wrapped into ``model`` (rank and targets read off the layers)."""
    from policies.lora import LoRAConfig, LoRALinear

    layers = [(n.rsplit(".", 1)[-1], m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    r = layers[0][1].lora_a.shape[0]
    return LoRAConfig(r=r, alpha=layers[0][1].scale * r, targets=sorted({n for n, _ in layers}))


class _Sampler:
    """Draws training sequences (prompt text, target text, observation, object order)."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], config: TrainConfig,
                 obj_tokens: int = 2) -> None:
        self.arrays, self.scenes, self.config = arrays, meta["scenes"], config
        self.obj_tokens = obj_tokens
        self.plans = [e for e in meta["examples"] if e["kind"] == "plan"]
        self.success = [e for e in meta["examples"] if e["kind"] == "success"]
        self.success_by_answer = {w: [e for e in self.success if (e["answer"] == 0) == w] for w in (True, False)}
        self.rng = random.Random(config.seed)

    def flags(self) -> dict[str, bool]:
        p = self.config.modality_dropout
        return {"camera": self.rng.random() >= p, "pointcloud": True, "proprio": self.rng.random() >= p}

    def _first_question(self, qtype: str, want: bool, contrast: bool) -> tuple[int, list, tuple]:
        """A scene, its questions and the first one, of ``qtype``: answered first-option-or-not as ``want``
        says where the scenes allow and, with ``contrast``, one that another object of the scene answers the
        other way (e.g. an empty bowl beside a full one)."""
        rng = self.rng
        for attempt in range(1000):
            k = rng.randrange(len(self.scenes))
            more = scene_questions(self.scenes[k]["names"], self.scenes[k]["support"])
            qs = [q for q in more if q[0] == qtype]
            pick = [q for q in qs if (q[3] == 0) == want]
            if contrast and attempt < 500:
                pick = [q for q in pick if any((o[3] == 0) != want for o in qs)]
            if pick or (qs and (qtype == "clear" or attempt >= (500 if contrast else 100))):
                return k, more, rng.choice(pick or qs)
        raise EmbodiedError(f"no scene in the data has a {qtype!r} question")

    def draw(self, kind: str) -> tuple[str, list[tuple[str, bool]], int, dict[str, bool], str]:
        from embodied.training.planner import reword

        rng, flags = self.rng, self.flags()
        if kind == "plan":
            e = rng.choice(self.plans)
            instruction = e["instruction"]
            if rng.random() < self.config.reword_p:
                instruction = reword(instruction, rng)
            n = len(self.scenes[e["obs"]]["names"])
            prompt = planning_prompt(instruction, [step_from_dict(s) for s in e["history"]], n, flags=flags,
                                     obj_tokens=self.obj_tokens)
            return prompt, [(e["target"], True)], e["obs"], flags, "plan"
        qtype = rng.choice(QUESTION_TYPES)
        history: list[Step] = []
        # the first question's answer is balanced (first option or not: "yes"/"no", "nothing"/a block) where the
        # scenes allow: most bowls are empty and most steps succeed, and a prior is not an answer
        want = rng.random() < 0.5
        if qtype == "success":
            pool = self.success_by_answer[want] or self.success
            e = rng.choice(pool)
            k, history = e["obs"], [step_from_dict(s) for s in e["history"]]
            first = ("success", "did the last step succeed?", [" yes.", " no."], e["answer"])
            more = scene_questions(self.scenes[k]["names"], self.scenes[k]["support"])
            lead, rest = [], more
        else:
            contrast = self.config.contrast > 0 and qtype in CONTRAST_TYPES and rng.random() < self.config.contrast
            k, more, first = self._first_question(qtype, want, contrast)
            # then the same question about an object that answers the other way, where there is one: the answer
            # must come from the asked object's tokens, not from "some bowl in the scene holds a block"
            opposed = [q for q in more if q[0] == qtype and (q[3] == 0) != (first[3] == 0)] if contrast else []
            lead = [rng.choice(opposed)] if opposed else []
            rest = [q for q in more if q is not first and q not in lead] if contrast else more
        # more questions about the same scene: answers are cheap targets once the scene is read
        chosen = [first] + lead + rng.sample(rest, max(0, min(len(rest), self.config.pack - 1 - len(lead))))
        prompt = question_prompt(first[1], history, len(self.scenes[k]["names"]), flags=flags,
                                 obj_tokens=self.obj_tokens)
        segments: list[tuple[str, bool]] = []
        for i, (_, q, opts, a) in enumerate(chosen):
            if i:
                segments.append((f"\nQuestion: {q}\nAnswer:", False))
            segments.append((opts[a], True))
        return prompt, segments, k, flags, qtype


def _decoder_and_head(lm: Any) -> tuple[Any, Any]:
    model = lm.model
    return model.get_decoder(), model.get_output_embeddings()


def sequence_loss(lm: Any, prefix: Any, encoders: PalmEEncoders, batch: list[tuple[str, list, int, dict, str]],
                  arrays: dict[str, np.ndarray], scenes: list[dict[str, Any]], rng: random.Random,
                  aux_weight: float = 0.0, bf16: bool = False) -> tuple[torch.Tensor, float]:
    """Mean next-token loss over the targets of a batch (plus the auxiliary relation loss); returns (loss, lm part)."""
    seqs, targets, aux_logits, aux_y = [], [], [], []
    for prompt, segments, k, _, _ in batch:
        n = len(scenes[k]["names"])
        order = np.array(rng.sample(range(n), n))
        enc, aux = encoders.encode(obs_features(arrays, k, n, order), with_aux=True)
        aux_logits.append(aux)
        aux_y.append(torch.as_tensor(arrays["aux"][k][:n][order]))
        used = {ph: v for ph, v in enc.items() if ph in prompt}
        x = prefix.embed(prompt, used)  # (T, H)
        ids = [(t, scored) for text, scored in segments for t in lm.tokenize(text)]
        t_ids = torch.tensor([t for t, _ in ids])
        seqs.append(torch.cat([x, lm.embed_tokens(t_ids)]))  # (T + t, H)
        where = torch.tensor([i for i, (_, scored) in enumerate(ids) if scored])
        targets.append((len(x) + where, t_ids[where]))
    width = -(-max(len(s) for s in seqs) // 16) * 16  # few distinct shapes: bf16 kernels are built per shape
    h = seqs[0].shape[1]
    x = torch.zeros(len(seqs), width, h)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = s
        mask[i, :len(s)] = 1
    decoder, head = _decoder_and_head(lm)
    rows = torch.cat([torch.full((len(t),), i) for i, (_, t) in enumerate(targets)])
    cols = torch.cat([pos - 1 for pos, _ in targets])  # the position that predicts each target token
    n_t = len(rows)
    pad = -(-n_t // 32) * 32 - n_t  # padded with repeats (dropped below), again for few shapes
    rows, cols = torch.cat([rows, rows[:1].repeat(pad)]), torch.cat([cols, cols[:1].repeat(pad)])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        hidden = decoder(inputs_embeds=x, attention_mask=mask, use_cache=False).last_hidden_state  # (B, W, H)
        logits = head(hidden[rows, cols])[:n_t].float()  # (n_target_tokens, V)
    lm_loss = torch.nn.functional.cross_entropy(logits, torch.cat([t for _, t in targets]))
    aux = torch.nn.functional.cross_entropy(torch.cat(aux_logits).reshape(-1, N_RELATION),
                                            torch.cat(aux_y).reshape(-1), ignore_index=-100)
    return lm_loss + aux_weight * aux, float(lm_loss.detach())


def pretrain_relations(encoders: PalmEEncoders, arrays: dict[str, np.ndarray], steps: int, seed: int = 0,
                       batch_size: int = 32, lr: float = 3e-3) -> float:
    """Fit the point trunk on the relation targets alone (no LM, seconds); returns the final accuracy."""
    enc = encoders["pointcloud"]
    gen = torch.Generator().manual_seed(seed)
    t = {k: torch.as_tensor(arrays[k].astype(np.float32 if k != "mask" else bool))
         for k in ("points", "mask", "centroid", "labels")}
    y = torch.as_tensor(arrays["aux"])  # (N_obs, MAX_OBJECTS, 2), -100 where no object
    opt = torch.optim.AdamW(enc.parameters(), lr=lr, weight_decay=0.01)
    acc = 0.0
    for step in range(steps):
        idx = torch.randint(len(y), (batch_size,), generator=gen)
        valid = y[idx, :, 0] != -100  # (B, MAX_OBJECTS)
        args = [t[k][idx][valid] for k in ("points", "mask", "centroid", "labels")]
        _, aux = enc(*args)  # (n, 2, 11)
        target = y[idx][valid]  # (n, 2)
        loss = torch.nn.functional.cross_entropy(aux.reshape(-1, N_RELATION), target.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc = 0.9 * acc + 0.1 * (aux.argmax(-1) == target).float().mean().item() if step else 0.0
        if step % 250 == 0 or step == steps - 1:
            log.info("relations %d/%d loss %.4f accuracy %.3f", step + 1, steps, loss.item(), acc)
    return acc


def merge_data(paths: Sequence[Path]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Several data caches as one (e.g. more episodes collected later from another seed range): arrays are
    concatenated and each example's observation index is shifted by the observations before it."""
    if not paths:
        raise EmbodiedError("no PaLM-E data cache given")
    arrays, meta = load_data(paths[0])
    for path in paths[1:]:
        more, more_meta = load_data(path)
        if set(more) != set(arrays):
            raise EmbodiedError(f"{path}: its arrays {sorted(more)} differ from {paths[0]}'s {sorted(arrays)}")
        offset = len(meta["scenes"])
        arrays = {k: np.concatenate([arrays[k], more[k]]) for k in arrays}
        meta = {"scenes": meta["scenes"] + more_meta["scenes"],
                "examples": meta["examples"] + [{**e, "obs": e["obs"] + offset} for e in more_meta["examples"]]}
    return arrays, meta


def train(data: Path | Sequence[Path], out: Path = DEFAULT_CHECKPOINT, config: TrainConfig | None = None,
          llm: str = "smollm2", adapter: str = "default", init: Path | None = None,
          obj_tokens: int = 0) -> dict[str, Any]:
    """Fit the encoders as soft prompts of the frozen LM and save them (with loss.png) in ``out``; ``data`` is
    one cache or several (merged); ``init`` continues from a saved checkpoint (its loss curve is extended).
    ``obj_tokens`` (0: the default, or the checkpoint's) sets the tokens per object; more than ``init`` has grows it."""
    config = config or TrainConfig()
    pointcloud = PointCloudConfig(n_tokens=obj_tokens) if obj_tokens else PointCloudConfig()  # checked before loading
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    paths = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    arrays, meta = merge_data(paths)
    from policies.palme import MultimodalPrefix

    if init is not None:  # continue from a checkpoint (its relation trunk is trained already)
        encoders = PalmEEncoders.load(init)
        keep = config.lora or encoders.config.adapter == "checkpoint"  # fine-tuned or saved again: unmerged
        lm = load_lm_for(init, encoders.config, merge=not keep)
        prefix = MultimodalPrefix(lm)
        earlier = encoders.config.meta
        relation_accuracy = float(earlier.get("relation_accuracy", 0.0))
        if obj_tokens and obj_tokens != encoders.config.pointcloud.n_tokens:
            log.info("growing %s's objects from %d to %d tokens", init, encoders.config.pointcloud.n_tokens, obj_tokens)
            encoders = encoders.grow_object_tokens(obj_tokens, prefix.word)
    else:
        lm = load_frozen_lm(llm, adapter, merge=not config.lora)  # the LoRA fine-tune continues the adapter
        prefix = MultimodalPrefix(lm)
        encoders = PalmEEncoders(PalmEConfig(hidden_size=lm.hidden_size, pointcloud=pointcloud, llm=llm,
                                             adapter=adapter))
        encoders.init_anchors(prefix.word)
        earlier = {}
    encoders.train()
    if init is None:
        relation_accuracy = pretrain_relations(encoders, arrays, config.aux_steps, config.seed)
    sampler = _Sampler(arrays, meta, config, encoders.config.pointcloud.n_tokens)
    params = [p for p in encoders.parameters() if p.requires_grad]
    groups = [{"params": params, "lr": config.lr, "base_lr": config.lr}]
    lora_config = None
    if config.lora:  # fine-tune the LM's adapter too (a fresh one where the LM had none)
        from policies.lora import LoRAConfig, apply_lora

        if not any("lora_" in n for n, _ in lm.model.named_parameters()):
            apply_lora(lm.model, LoRAConfig())
        lora_config = _adapter_config(lm.model)
        tuned = [p for n, p in lm.model.named_parameters() if "lora_" in n]
        for p in tuned:
            p.requires_grad_(True)
        groups.append({"params": tuned, "lr": config.lora_lr, "base_lr": config.lora_lr, "weight_decay": 0.0})
        params = params + tuned
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    losses: list[float] = []
    previous = json.loads((Path(init) / "loss.json").read_text()) if init and (Path(init) / "loss.json").exists() else []
    t0 = time.perf_counter()
    n_plan = config.batch_size - round(config.questions * config.batch_size)
    for step in range(config.steps):
        elapsed = time.perf_counter() - t0
        progress = max(step / config.steps, elapsed / (60 * config.minutes) if config.minutes else 0.0)
        if progress >= 1.0:
            log.info("time budget of %.1f min reached after %d steps", config.minutes, step)
            break
        scale = min(1.0, (step + 1) / config.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * scale
        batch = [sampler.draw("plan") for _ in range(n_plan)] + \
                [sampler.draw("question") for _ in range(config.batch_size - n_plan)]
        loss, lm_loss = sequence_loss(lm, prefix, encoders, batch, arrays, meta["scenes"], sampler.rng,
                                      config.aux_weight, config.bf16)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(lm_loss)
        if step % 10 == 0 or step == config.steps - 1:
            log.info("step %d/%d loss %.4f (lm %.4f) %.1f s", step + 1, config.steps, float(loss.detach()), lm_loss,
                     time.perf_counter() - t0)
    encoders.eval()
    if lora_config is not None or encoders.config.adapter == "checkpoint":  # the adapter travels with the encoders
        from policies.lora import save_adapter

        save_adapter(lm.model, lora_config or _adapter_config(lm.model), Path(out))
        encoders.config.adapter = "checkpoint"
    encoders.config.meta = {"train": asdict(config), "data": [str(d) for d in paths], "observations": len(meta["scenes"]),
                            "examples": len(meta["examples"]), "seconds": round(time.perf_counter() - t0, 1),
                            "steps_run": len(losses), "final_loss": round(float(np.mean(losses[-20:])), 4), "seed_base": PALME_TRAIN.start,
                            "relation_accuracy": round(relation_accuracy, 4),
                            "continued_from": earlier or None}
    encoders.save(out, previous + losses)
    return encoders.config.meta


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    """`embodied train palme data|train|vqa` and their flags."""
    ap = argparse.ArgumentParser(prog="embodied train palme", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="run oracle episodes in the simulator and cache encoder inputs")
    d.add_argument("--episodes", type=int, default=DataConfig.episodes)
    d.add_argument("--seed", type=int, default=PALME_TRAIN.start)
    d.add_argument("--out", type=Path, default=default_cache())
    t = sub.add_parser("train", help="fit the encoders as soft prompts of the frozen LM")
    t.add_argument("--data", type=Path, nargs="+", default=[default_cache()],
                   help="one or more data caches (merged)")
    t.add_argument("--out", type=Path, default=None, help="checkpoint folder (default: runs/train-palme-<time>; "
                   "`--out policies/palme` replaces the shipped encoders)")
    t.add_argument("--steps", type=int, default=TrainConfig.steps)
    t.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    t.add_argument("--lr", type=float, default=TrainConfig.lr)
    t.add_argument("--threads", type=int, default=TrainConfig.threads)
    t.add_argument("--aux-steps", type=int, default=TrainConfig.aux_steps)
    t.add_argument("--seed", type=int, default=TrainConfig.seed)
    t.add_argument("--init", type=Path, default=None, help="continue from this checkpoint folder")
    t.add_argument("--fp32", action="store_true", help="no bfloat16 autocast for the frozen LM")
    t.add_argument("--lora", action="store_true", help="also fine-tune the LM's LoRA adapter (saved alongside)")
    t.add_argument("--lora-lr", type=float, default=TrainConfig.lora_lr)
    t.add_argument("--pack", type=int, default=TrainConfig.pack, help="questions per question sequence")
    t.add_argument("--questions", type=float, default=TrainConfig.questions,
                   help="share of each batch that are question sequences")
    t.add_argument("--minutes", type=float, default=TrainConfig.minutes, help="wall-clock budget (0: none)")
    t.add_argument("--contrast", type=float, default=TrainConfig.contrast,
                   help="share of on/empty question sequences that ask next about an object answering the other "
                        "way (0: as checkpoints before commit c471dd0 were trained)")
    t.add_argument("--modality-dropout", type=float, default=TrainConfig.modality_dropout,
                   help="chance to leave the camera / proprio tokens out of a training prompt")
    t.add_argument("--obj-tokens", type=int, default=0,
                   help="tokens per object (0: 2, or the --init checkpoint's; more than it has grows it)")
    v = sub.add_parser("vqa", help="question-answering accuracy on held-out scenes")
    v.add_argument("--scenes", type=int, default=40)
    v.add_argument("--seed", type=int, default=VQA_HELDOUT.start)
    v.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    v.add_argument("--drop", nargs="*", default=[], choices=list(ALL_MODALITIES))
    v.add_argument("--max-per-type", type=int, default=0, help="cap questions per type (0: all)")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand and print its result as JSON; bad input raises ``EmbodiedError`` (one line)."""
    args = build_parser().parse_args(argv)
    show_progress(__name__, "embodied.runtime.vqa")
    sys.stdout.write(json.dumps(_run(args), indent=2) + "\n")
    return 0


def _run(args: argparse.Namespace) -> dict[str, Any]:
    """The subcommand's work; its JSON-able result."""
    if args.cmd in ("data", "vqa"):  # seeds from their own range: never an evaluation task or other training data
        seed_range, flag = (PALME_TRAIN, "episodes") if args.cmd == "data" else (VQA_HELDOUT, "scenes")
        count = getattr(args, flag)
        if count < 1:
            raise EmbodiedError(f"--{flag} must be >= 1, got {count}")
        try:
            seed_range.check(args.seed, count, "--seed")
        except ValueError as e:
            raise EmbodiedError(str(e)) from e
    if args.cmd == "data":
        return collect(DataConfig(episodes=args.episodes, seed=args.seed), args.out)
    if args.cmd == "train":
        out = args.out or Path("runs") / time.strftime("train-palme-%Y%m%d-%H%M%S")  # never the shipped one unasked
        return train(args.data, out, TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                                      threads=args.threads, aux_steps=args.aux_steps,
                                                      minutes=args.minutes, bf16=not args.fp32,
                                                      lora=args.lora, lora_lr=args.lora_lr, pack=args.pack,
                                                      questions=args.questions,
                                                      modality_dropout=args.modality_dropout,
                                                      contrast=args.contrast,
                                                      seed=args.seed), init=args.init, obj_tokens=args.obj_tokens)
    torch.set_num_threads(2)
    return eval_vqa(args.scenes, args.seed, args.checkpoint, flags=modality_flags(args.drop),
                    max_per_type=args.max_per_type)


if __name__ == "__main__":
    raise SystemExit(main())
