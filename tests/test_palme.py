"""PaLM-E encoders, the multimodal prefix, checkpoints, questions and the planner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from embodied.planners.palme import planning_prompt, question_prompt
from embodied.planners.prompting import Step
from embodied.runtime.vqa import scene_questions
from embodied.world.errors import EmbodiedError
from embodied.world.scene import ObjectState, SceneState
from policies.lora import CheckpointError
from policies.palme import (
    ENCODERS,
    N_RELATION,
    MultimodalPrefix,
    PalmEConfig,
    PalmEEncoders,
    aux_targets,
    make_encoder,
    object_segments,
    scene_features,
)
from skills import SkillCall

WIDTH = 16  # a tiny fake LM width: nothing may assume SmolLM2's 576


class FakeLM:
    """Just enough of the LanguageModel embedding API: one token per character."""

    supports_embeddings = True
    name = "fake"
    hidden_size = WIDTH
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.table = torch.nn.Embedding(128, WIDTH)

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return [ord(c) % 128 for c in text]

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)


def _state() -> SceneState:
    return SceneState(objects={
        "red block": ObjectState("red block", "block", "red", (0.45, 0.0, 0.645)),
        "blue block": ObjectState("blue block", "block", "blue", (0.45, 0.0, 0.685)),
        "green bowl": ObjectState("green bowl", "bowl", "green", (0.55, 0.15, 0.625)),
    })


def _obs(rng: np.random.Generator, n: int = 4096) -> dict[str, np.ndarray]:
    xyz = np.c_[rng.uniform(0.25, 0.7, n), rng.uniform(-0.3, 0.3, n), rng.uniform(0.62, 0.72, n)]
    return {"rgb": rng.integers(0, 255, (128, 128, 3), dtype=np.uint8), "proprio": rng.normal(size=22).astype(np.float32),
            "points": np.c_[xyz, rng.uniform(0, 1, (n, 3))].astype(np.float32)}


def _encoders(lm: FakeLM | None = None) -> PalmEEncoders:
    torch.manual_seed(0)
    enc = PalmEEncoders(PalmEConfig(hidden_size=WIDTH))
    enc.init_anchors(MultimodalPrefix(lm or FakeLM()).word)
    return enc.eval()


@pytest.mark.parametrize("type_", list(ENCODERS))
def test_every_encoder_builds_and_outputs_lm_width(type_):
    enc = make_encoder(type_, WIDTH)
    if type_ == "camera":
        out = enc(torch.zeros(2, 128, 128, 3, dtype=torch.uint8))
        assert out.shape == (2, enc.config.n_tokens, WIDTH)
    elif type_ == "proprio":
        assert enc(torch.zeros(3, 22)).shape == (3, 1, WIDTH)
    else:
        tok, aux = enc(torch.zeros(5, 64, 6), torch.ones(5, 64, dtype=torch.bool), torch.zeros(5, 3), torch.zeros(5, 12))
        assert tok.shape == (5 * enc.config.n_tokens, WIDTH) and aux.shape == (5, 2, 11)


def test_unknown_encoder_and_bad_config_are_clear():
    with pytest.raises(EmbodiedError, match="did you mean 'camera'"):
        make_encoder("camra", WIDTH)
    with pytest.raises(EmbodiedError, match="n_tokens"):
        make_encoder("camera", WIDTH, n_tokens=0)
    with pytest.raises(EmbodiedError, match="hidden_size"):
        PalmEConfig(hidden_size=0)


def test_encode_scene_gives_two_tokens_per_object_that_start_as_its_name():
    lm = FakeLM()
    enc = _encoders(lm)
    word = MultimodalPrefix(lm).word
    feats = scene_features(_obs(np.random.default_rng(0)), _state())
    with torch.no_grad():
        tokens = enc.encode(feats)
    assert tokens["<img>"].shape == (4, WIDTH)
    assert tokens["<obj>"].shape == (6, WIDTH)  # "<colour> <kind>" per object
    assert tokens["<state>"].shape == (1, WIDTH)
    # untrained: the green bowl's tokens are (nearly) the words " green" and " bowl"
    with torch.no_grad():
        assert torch.allclose(tokens["<obj>"][4], word(" green"), atol=0.05)
        cos = torch.nn.functional.cosine_similarity(tokens["<obj>"][5], word(" bowl"), dim=0)
    assert cos > 0.8


def test_segments_are_columns_around_objects():
    rng = np.random.default_rng(1)
    pts, mask, _, labels, names = object_segments(_obs(rng)["points"], _state(), n_points=32)
    assert names == ["red block", "blue block", "green bowl"]
    assert pts.shape == (3, 32, 6) and mask.any(1).all()
    assert np.abs(pts[0, mask[0], :2]).max() * 0.05 <= 0.035 + 1e-6  # within the block radius
    assert labels[0].sum() == 2 and labels[2].sum() == 2  # colour and kind


def test_prefix_replaces_placeholders_in_order():
    lm = FakeLM()
    prefix = MultimodalPrefix(lm)
    enc = {"<img>": torch.randn(4, WIDTH), "<obj>": torch.randn(2, WIDTH), "<state>": torch.randn(1, WIDTH)}
    text = planning_prompt("put the red block in the green bowl", [], 2, obj_tokens=1)
    x = prefix.embed(text, enc)
    n_text = len(lm.tokenize(text.replace("<img>", "").replace("<obj>", "").replace("<state>", "")))
    assert x.shape == (n_text + 7, WIDTH)
    start = len("Scene:")
    assert torch.equal(x[start:start + 4], enc["<img>"])


def test_placeholder_encoding_mismatch_raises_with_both_counts():
    prefix = MultimodalPrefix(FakeLM())
    text = planning_prompt("stack the blocks", [], 3)
    enc = {"<img>": torch.randn(4, WIDTH), "<obj>": torch.randn(5, WIDTH), "<state>": torch.randn(1, WIDTH)}
    with pytest.raises(EmbodiedError, match=r"6 <obj> placeholders but 5 <obj> encodings"):
        prefix.embed(text, enc)
    with pytest.raises(EmbodiedError, match=r"0 <img> placeholders but 4"):
        prefix.embed(planning_prompt("x", [], 3, flags={"camera": False}), {**enc, "<obj>": torch.randn(6, WIDTH)})


def test_dropped_modalities_leave_no_placeholder():
    text = planning_prompt("x", [Step(SkillCall("done"), True)], 3, flags={"camera": False, "proprio": False})
    assert "<img>" not in text and "<state>" not in text and text.count("<obj>") == 6
    assert "Objects:<obj><obj>,<obj><obj>,<obj><obj>." in text
    assert planning_prompt("x", [], 3, flags={"camera": False, "pointcloud": False, "proprio": False}).startswith("Request")
    assert question_prompt("is the red bowl empty?", [], 1).endswith("Question: is the red bowl empty?\nAnswer:")


def test_save_load_round_trip_is_exact(tmp_path):
    enc = _encoders()
    enc.save(tmp_path, losses=[1.0, 0.5, 0.25])
    back = PalmEEncoders.load(tmp_path)
    assert back.config == enc.config
    a, b = enc.state_dict(), back.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    feats = scene_features(_obs(np.random.default_rng(2)), _state())
    with torch.no_grad():
        x, y = enc.encode(feats), back.encode(feats)
    assert all(torch.equal(x[k], y[k]) for k in x)
    assert (tmp_path / "loss.json").exists()


def test_missing_and_corrupt_checkpoints_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no PaLM-E encoders"):
        PalmEEncoders.load(tmp_path / "nowhere")
    _encoders().save(tmp_path)
    (tmp_path / "encoders.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt encoder weights"):
        PalmEEncoders.load(tmp_path)
    _encoders().save(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="not a valid PaLM-E config"):
        PalmEEncoders.load(tmp_path)
    (tmp_path / "config.json").write_text('{"hidden_size": 32}')
    with pytest.raises(CheckpointError, match="does not fit"):
        PalmEEncoders.load(tmp_path)


def test_questions_follow_the_support_relation():
    names = ["red block", "blue block", "green bowl", "yellow bowl"]
    support = {"red block": "green bowl", "blue block": "red block"}
    qs = {(t, q): (o, a) for t, q, o, a in scene_questions(names, support)}
    opts, a = qs[("on", "what is on the red block?")]
    assert opts[a] == " the blue block."
    opts, a = qs[("empty", "is the green bowl empty?")]
    assert opts[a] == " no."
    opts, a = qs[("empty", "is the yellow bowl empty?")]
    assert opts[a] == " yes."
    opts, a = qs[("clear", "which blocks can be picked?")]
    assert opts[a] == " the blue block." and len(opts) == len(set(opts)) > 1
    aux = aux_targets(names, support)
    assert aux[0].tolist() == [0, 2] and aux[1].tolist() == [10, 1]  # red: blue on it, in green; blue: on red


def _fake_cache(path: Path, scenes: list[dict], examples: list[dict]) -> Path:
    """A data cache in train_palme's format with zero features (only the records matter here)."""
    import json

    n = len(scenes)
    np.savez_compressed(path, meta=np.array(json.dumps({"scenes": scenes, "examples": examples})),
                        rgb=np.zeros((n, 4, 4, 3), np.uint8), aux=np.zeros((n, 8, 2), np.int64))
    return path


def test_data_caches_merge_with_shifted_observations_and_sampling_balances_answers(tmp_path):
    from embodied.training.palme import TrainConfig, _Sampler, merge_data

    full = {"names": ["red block", "green bowl", "blue bowl", "pink bowl"], "support": {"red block": "green bowl"}}
    empty = {"names": ["red block", "green bowl", "blue bowl"], "support": {"red block": "table"}}
    ok = {"kind": "success", "obs": 0, "history": [], "answer": 0}
    a = _fake_cache(tmp_path / "a.npz", [empty, empty], [ok, {**ok, "obs": 1}])
    b = _fake_cache(tmp_path / "b.npz", [full], [{**ok, "answer": 1}])
    arrays, meta = merge_data([a, b])
    assert len(arrays["rgb"]) == 3 and [e["obs"] for e in meta["examples"]] == [0, 1, 2]
    assert meta["scenes"][2] == full
    bad = tmp_path / "bad.npz"
    np.savez_compressed(bad, meta=np.array('{"scenes": [], "examples": []}'), rgb=np.zeros((0, 4, 4, 3)))
    with pytest.raises(EmbodiedError, match="differ"):
        merge_data([a, bad])
    # 1 of 7 bowls is full and 1 of 3 steps failed, yet the first question's answers come out near half/half
    sampler = _Sampler(arrays, meta, TrainConfig(pack=1, seed=3))
    answers: dict[str, list[str]] = {"empty": [], "success": []}
    for _ in range(600):
        _, segments, _, _, qtype = sampler.draw("question")
        if qtype in answers:
            answers[qtype].append(segments[0][0])
    for qtype, got in answers.items():
        assert 0.35 < got.count(" no.") / len(got) < 0.65, (qtype, got.count(" no."), len(got))
    # contrast: an empty bowl is asked about next to a full one (only the third scene has both), either first
    sampler = _Sampler(arrays, meta, TrainConfig(pack=3, contrast=1.0, seed=4))
    firsts = []
    for _ in range(300):
        _, segments, k, _, qtype = sampler.draw("question")
        if qtype == "empty":
            assert k == 2 and "empty?" in segments[1][0], (k, segments)
            assert {segments[0][0], segments[2][0]} == {" yes.", " no."}, segments
            firsts.append(segments[0][0])
    assert 0.35 < firsts.count(" no.") / len(firsts) < 0.65


@pytest.mark.slow
def test_planner_returns_a_decision_on_a_real_scene(tmp_path):
    from embodied.llm.base import load_language_model
    from embodied.planners.base import Decision
    from embodied.planners.palme import PalmEPlanner
    from envs.generator import generate
    from envs.tabletop import TabletopEnv

    lm = load_language_model("smollm2")
    enc = PalmEEncoders(PalmEConfig(hidden_size=lm.hidden_size, adapter="none"))
    enc.init_anchors(MultimodalPrefix(lm).word)
    enc.save(tmp_path)
    planner = PalmEPlanner(lm=lm, checkpoint=str(tmp_path))
    env = TabletopEnv(image_size=(64, 64))
    try:
        task = generate("block_in_bowl", 123)
        obs, _ = env.reset(seed=task.seed, options={"task": task})
        planner.reset(task)
        decision = planner.step(env.scene_state(), obs=obs)
        assert isinstance(decision, Decision) and decision.call is not None and decision.options
        with pytest.raises(EmbodiedError, match="needs obs"):
            planner.step(env.scene_state(), obs=None)
    finally:
        env.close()


def test_drop_flag_parses_modalities_and_rejects_unknown_ones(capsys):
    from embodied.cli import main

    with pytest.raises(SystemExit) as e:
        main(["eval", "--tasks", "x.jsonl", "--planner", "palme", "--drop", "camera,lidar"])
    assert e.value.code == 2
    from embodied.cli import _csv

    assert _csv(("camera", "pointcloud", "proprio"))("camera, proprio") == ("camera", "proprio")
    tasks = Path(__file__).resolve().parent.parent / "benchmarks" / "generated_100.jsonl"
    capsys.readouterr()
    assert main(["eval", "--tasks", str(tasks), "--drop", "camera"]) == 2  # saycan has no sensor tokens to drop
    assert "belong to --planner palme" in capsys.readouterr().err


def test_finetuned_checkpoint_carries_its_adapter(tmp_path):
    """The fine-tuned variant saves the LM adapter beside the encoders and loads it back exactly."""
    from embodied.training.palme import _adapter_config
    from policies.lora import LoRAConfig, adapter_state, apply_lora, load_adapter, save_adapter

    model = torch.nn.Sequential()
    model.add_module("q_proj", torch.nn.Linear(8, 8))
    apply_lora(model, LoRAConfig(r=2, targets=["q_proj"]))
    torch.nn.init.normal_(model.q_proj.lora_b)
    cfg = _adapter_config(model)
    assert cfg.r == 2 and cfg.targets == ["q_proj"] and cfg.alpha == pytest.approx(16.0)
    save_adapter(model, cfg, tmp_path)
    back = torch.nn.Sequential()
    back.add_module("q_proj", torch.nn.Linear(8, 8))
    load_adapter(back, tmp_path, merge=False)  # kept apart, to compare the tensors
    a, b = adapter_state(model), adapter_state(back)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    merged = torch.nn.Sequential()
    merged.add_module("q_proj", torch.nn.Linear(8, 8))
    merged.q_proj.load_state_dict(back.q_proj.base.state_dict())
    load_adapter(merged, tmp_path)  # inference: folded into the weight, a plain Linear again
    x = torch.randn(3, 8)
    assert type(merged.q_proj) is torch.nn.Linear
    torch.testing.assert_close(merged(x), back(x), atol=1e-5, rtol=1e-5)


def test_eval_vqa_rejects_seeds_that_overlap_evaluation_and_missing_checkpoints(tmp_path, capsys):
    from embodied.cli import main

    assert main(["eval-vqa", "--seed", "9000"]) == 2
    assert "leaves [700000, 1000000)" in capsys.readouterr().err
    assert main(["eval-vqa", "--seed", "6000000"]) == 2
    assert "training scenes" in " ".join(capsys.readouterr().err.split())
    assert main(["eval-vqa", "--checkpoint", str(tmp_path / "none"), "--scenes", "1"]) == 2
    assert "no PaLM-E encoders" in capsys.readouterr().err


def test_shipped_checkpoint_fits_its_config_and_the_size_limit():
    from embodied.planners.palme import DEFAULT_CHECKPOINT

    enc = PalmEEncoders.load(DEFAULT_CHECKPOINT)
    assert enc.config.pointcloud.n_tokens == 3 and enc.config.hidden_size == 576
    files = [DEFAULT_CHECKPOINT / f for f in ("encoders.safetensors", "config.json", "loss.png", "loss.json")]
    if enc.config.adapter == "checkpoint":
        files += [DEFAULT_CHECKPOINT / "adapter.safetensors", DEFAULT_CHECKPOINT / "adapter_config.json"]
    assert all(f.exists() for f in files)
    assert sum(f.stat().st_size for f in DEFAULT_CHECKPOINT.iterdir()) < 20e6
    assert enc.config.meta["steps_run"] > 0 and enc.config.meta["seed_base"] >= 6_000_000


@pytest.mark.slow
def test_data_train_and_vqa_round_trip_with_the_adapter(tmp_path):
    """Two oracle episodes -> two fine-tuning steps (encoders and LoRA both move) -> a checkpoint the planner
    and eval-vqa load with its own adapter."""
    from embodied.planners.palme import load_lm_for
    from embodied.runtime.vqa import DataConfig, collect, eval_vqa
    from embodied.training.palme import TrainConfig, train
    from policies.lora import adapter_state

    data = tmp_path / "d.npz"
    info = collect(DataConfig(episodes=2, seed=6_900_000, image_size=64), data)
    assert info["observations"] >= 2 and info["examples"] >= 2
    out = tmp_path / "ck"
    meta = train(data, out, TrainConfig(steps=2, batch_size=2, aux_steps=3, lora=True, lr=1e-2, lora_lr=1e-2,
                                        bf16=False, threads=1), adapter="none")  # a fresh adapter: lora_b = 0
    assert meta["steps_run"] == 2
    enc = PalmEEncoders.load(out)
    assert enc.config.adapter == "checkpoint" and (out / "adapter.safetensors").exists()
    lm = load_lm_for(out, enc.config, merge=False)  # the adapter kept apart, to read it back
    moved = [v for k, v in adapter_state(lm.model).items() if "lora_b" in k]
    assert moved and all(float(v.float().abs().sum()) > 0 for v in moved)  # they left their zero start
    assert float(enc.state_dict()["encoders.pointcloud.out.bias"].abs().sum()) > 0  # so did the object tokens
    report = eval_vqa(1, 700_000, out, lm=lm, data=data, max_per_type=2)
    assert set(report["per_type"]) == {"on", "empty", "clear", "success"} and 0 <= report["accuracy"] <= 1


def test_a_relation_token_of_its_own_starts_as_empty_and_growing_keeps_the_name_tokens(tmp_path):
    lm = FakeLM()
    word = MultimodalPrefix(lm).word
    torch.manual_seed(0)
    three = PalmEEncoders(PalmEConfig(hidden_size=WIDTH, pointcloud={"n_tokens": 3}))
    three.init_anchors(word)
    none = three["pointcloud"].relation_embed.weight[:, N_RELATION - 1]  # "nothing on/in it"
    assert torch.allclose(none, word(" empty"))
    assert not _encoders(lm)["pointcloud"].relation_embed.weight[:, N_RELATION - 1].any()  # 2 tokens: adds nothing

    two = _encoders(lm)
    grown = two.grow_object_tokens(3, word).eval()
    feats = scene_features(_obs(np.random.default_rng(0)), _state())
    with torch.no_grad():
        before, after = two.encode(feats)["<obj>"].view(3, 2, WIDTH), grown.encode(feats)["<obj>"].view(3, 3, WIDTH)
        rel = two["pointcloud"].relation_embed(two.encode(feats, with_aux=True)[1].softmax(-1).flatten(1))
    assert torch.allclose(after[:, 0], before[:, 0])  # colour tokens unchanged
    assert torch.allclose(after[:, 1], before[:, 1] - rel, atol=1e-6)  # kind tokens keep all but the relation
    assert grown.config.pointcloud.n_tokens == 3 and two.config.pointcloud.n_tokens == 2
    prompt = planning_prompt("put the red block in the green bowl", [], 3, obj_tokens=3)
    assert MultimodalPrefix(lm).embed(prompt, grown.encode(feats)).shape[1] == WIDTH
    back = PalmEEncoders.load(grown.save(tmp_path / "g"))
    assert back.config.pointcloud.n_tokens == 3
    with pytest.raises(EmbodiedError, match="only grow"):
        grown.grow_object_tokens(2, word)


def test_train_cli_rejects_bad_options_with_a_clear_line():
    from embodied.training.palme import main

    with pytest.raises(EmbodiedError, match="modality_dropout"):
        main(["train", "--modality-dropout", "1.5"])
    with pytest.raises(EmbodiedError, match=r"n_tokens must be in \[1, 4\]"):
        main(["train", "--obj-tokens", "9"])
    with pytest.raises(EmbodiedError, match="leaves"):
        main(["data", "--seed", "600"])  # evaluation seeds are not training data
