"""SayCan planner pieces: options, prompts, instruction reading, LoRA adapters; slow: the real model."""

from __future__ import annotations

import json
import random

import pytest
import torch

from embodied.instructions import cannot_reason, mentioned_objects, scene_for
from embodied.planners.prompting import (
    Step,
    episode_text,
    example_bank,
    option_text,
    retrieve,
    symbolic_plan_success,
)
from embodied.planners.saycan import candidate_calls
from embodied.training.planner import reword, trajectory_examples
from embodied.world.scene import ObjectState, SceneState
from embodied.world.seeds import EXAMPLES, PLANNER_TRAIN
from envs.generator import generate
from policies.lora import CheckpointError, LoRAConfig, apply_lora, load_adapter, save_adapter
from skills import SkillCall


def scene(blocks, bowls, held=None) -> SceneState:
    objs = {f"{c} block": ObjectState(f"{c} block", "block", c, (0.4, 0.0, 0.645)) for c in blocks}
    objs.update({f"{c} bowl": ObjectState(f"{c} bowl", "bowl", c, (0.5, 0.1, 0.626)) for c in bowls})
    return SceneState(objects=objs, held=held)


def test_candidate_calls_cover_every_target() -> None:
    calls = candidate_calls(scene(["red", "blue"], ["green"]))
    assert len(calls) == 2 * (1 + 1 + 5)  # other block, bowl, five locations
    assert SkillCall("pick_and_place", {"block": "red block", "target": "green bowl"}) in calls
    held = candidate_calls(scene(["red", "blue"], ["green"], held="red block"))
    assert all(c.name == "place" for c in held) and len(held) == 1 + 1 + 5


def test_prompt_format_and_feedback() -> None:
    call = SkillCall("pick_and_place", {"block": "red block", "target": "green bowl"})
    text = episode_text("put the red block in the green bowl", ["red block", "green bowl"],
                        [Step(call, False, "missed grasp")])
    assert text.endswith("(failed: missed grasp)\n2.")
    assert option_text(call) == " pick up the red block and place it in the green bowl."
    quiet = episode_text("x", ["red block"], [Step(call, True)], feedback=False)
    assert "(worked)" not in quiet


def test_examples_are_generated_far_from_eval_seeds_and_retrieved_by_structure() -> None:
    bank = example_bank(per_family=2)
    assert all(e.task.seed >= EXAMPLES.start for e in bank) and PLANNER_TRAIN.start > EXAMPLES.start
    assert all(symbolic_plan_success(e.task, e.plan) for e in bank)
    shots = retrieve("could you put the pink cube onto the cyan cube", bank, 2)
    assert shots[-1].task.family == "block_on_block"


def test_reading_instructions() -> None:
    assert mentioned_objects("stack the purple, gray and pink cubes") == ["purple block", "gray block", "pink block"]
    assert mentioned_objects("drop the grey cube in the red dish") == ["gray block", "red bowl"]
    assert cannot_reason("put the purple block in the red bowl", ["purple block", "green bowl"]).startswith(
        "There is no red bowl")
    assert cannot_reason("put the green bowl on the red block", ["red block", "green bowl"]) is not None
    assert cannot_reason("put the red block in the green bowl", ["red block", "green bowl"]) is None
    import numpy as np

    spec = scene_for("put the blocks in the matching bowls", np.random.default_rng(0))
    assert set(spec.blocks) <= set(spec.bowls) and len(spec.blocks) == 3
    spec = scene_for("put the red block in the green bowl", np.random.default_rng(1))
    assert "red" in spec.blocks and "green" in spec.bowls


def test_training_data_teaches_retries_and_wording() -> None:
    rng = random.Random(3)
    pairs = trajectory_examples("stack_three", PLANNER_TRAIN.start + 5, rng, fail_p=1.0, reword_p=1.0)
    assert pairs[0][1].startswith(" pick up")
    assert any("(failed:" in p for p, _ in pairs)  # a failed step is followed by a target to retry
    assert reword("put the red block in the green bowl and the blue block on the yellow block", random.Random(0))
    task = generate("block_in_bowl", PLANNER_TRAIN.start)
    assert task.seed >= PLANNER_TRAIN.start


def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    return LlamaForCausalLM(cfg).eval()


def test_lora_starts_neutral_and_round_trips(tmp_path) -> None:
    ids = torch.randint(0, 64, (2, 9))
    base = tiny_model()
    ref = base(input_ids=ids).logits
    model = tiny_model()
    wrapped = apply_lora(model, LoRAConfig(r=4))
    assert len(wrapped) == 2 * 7
    torch.testing.assert_close(model(input_ids=ids).logits, ref)  # B starts at zero
    for name, p in model.named_parameters():
        if "lora_b" in name:
            p.data.normal_()
    trained = model(input_ids=ids).logits
    save_adapter(model, LoRAConfig(r=4), tmp_path / "a")
    again = tiny_model()
    load_adapter(again, tmp_path / "a")
    torch.testing.assert_close(again(input_ids=ids).logits, trained, atol=2e-2, rtol=1e-2)  # fp16 storage


def test_bad_checkpoints_fail_clearly(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no adapter"):
        load_adapter(tiny_model(), tmp_path / "missing")
    model = tiny_model()
    apply_lora(model, LoRAConfig(r=4))
    folder = save_adapter(model, LoRAConfig(r=4), tmp_path / "a")
    (folder / "adapter.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_adapter(tiny_model(), folder)
    (folder / "adapter_config.json").write_text("{")
    with pytest.raises(CheckpointError, match="not a valid adapter config"):
        load_adapter(tiny_model(), folder)
    other = save_adapter(model, LoRAConfig(r=4), tmp_path / "b")
    cfg = json.loads((other / "adapter_config.json").read_text())
    cfg["lora"]["r"] = 2
    (other / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_adapter(tiny_model(), other)


@pytest.mark.slow
def test_embedded_planner_solves_generated_tasks_symbolically() -> None:
    """The shipped adapter on the embedded model plans a few unseen tasks (ideal skills) from the words alone:
    the planner is not given the goal, so nothing but the model decides when it is done."""
    import dataclasses

    from embodied.planners.prompting import initial_state
    from embodied.planners.saycan import SayCanPlanner
    from skills import apply

    planner = SayCanPlanner(affordance=False)
    solved = 0
    for family, seed in (("block_in_bowl", 31), ("stack_three", 32), ("matching_bowls", 33)):
        task = generate(family, seed)
        planner.reset(dataclasses.replace(task, goal=[]))
        state, calls = initial_state(task), []
        for _ in range(task.max_steps):
            objs = SceneState(objects={n: ObjectState(n, n.split()[1], n.split()[0], (0, 0, 0))  # type: ignore[arg-type]
                                       for n in task.scene.object_names()})
            d = planner.step(objs)
            if d.call.name == "done":
                break
            calls.append(d.call)
            state, why = apply(state, d.call)
            from skills import SkillResult

            planner.feedback(d.call, SkillResult(why is None, why or ""), objs)
        solved += symbolic_plan_success(task, calls)
    assert solved == 3
    assert planner.episode_stats()["llm_calls"] >= 1


@pytest.mark.slow
def test_cli_run_instruction_and_cannot(tmp_path) -> None:
    from embodied.cli import main

    out = tmp_path / "ok"
    assert main(["run", "put the red block in the green bowl", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "success" and summary["steps"][0]["args"] == {"block": "red block",
                                                                                 "target": "green bowl"}
    out = tmp_path / "no"
    code = main(["run", "put the purple block in the green bowl", "--scene",
                 '{"blocks": ["red"], "bowls": ["green"]}', "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 3 and summary["outcome"] == "cannot" and "purple block" in summary["reason"]


@pytest.mark.slow
def test_train_planner_command_writes_a_loadable_adapter(tmp_path) -> None:
    from embodied.cli import main
    from embodied.llm.base import load_language_model

    out = tmp_path / "adapter"
    assert main(["train", "planner", "--episodes", "4", "--steps", "2", "--batch-size", "2", "--warmup", "1",
                 "--out", str(out)]) == 0
    meta = json.loads((out / "adapter_config.json").read_text())
    assert meta["train"]["steps"] == 2 and len(json.loads((out / "loss.json").read_text())) == 2
    load_adapter(load_language_model("smollm2").model, out)
