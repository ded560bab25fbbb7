"""Seed ranges: every data set that is generated from seeds draws from its own half-open range, so training
data never shares a layout with an evaluation set (a test checks that no two ranges overlap)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedRange:
    """Seeds ``start`` (inclusive) to ``stop`` (exclusive), and what they are for."""

    start: int
    stop: int
    purpose: str

    def __contains__(self, seed: object) -> bool:
        return isinstance(seed, int) and self.start <= seed < self.stop

    def check(self, seed: int, count: int = 1, what: str = "seed") -> None:
        """Raise a ``ValueError`` naming the range when ``seed .. seed + count - 1`` leaves it."""
        if not (self.start <= seed and seed + count <= self.stop):
            raise ValueError(f"{what} {seed} (+{count}) leaves [{self.start}, {self.stop}), the range for "
                             f"{self.purpose}")


GROUNDING_TRAIN = SeedRange(0, 500, "grounding training scenes and perception tuning")
EVALUATION = SeedRange(500, 100_000, "evaluation task files (benchmarks/) and generated suites")
DETECTION_HELDOUT = SeedRange(100_000, 500_000, "held-out perception (detection) scenes")
GROUNDING_HELDOUT = SeedRange(500_000, 700_000, "held-out affordance / success-detection scenes")
VQA_HELDOUT = SeedRange(700_000, 1_000_000, "held-out embodied-question scenes")
EXAMPLES = SeedRange(1_000_000, 2_000_000, "the planner's few-shot example bank")
PLANNER_TRAIN = SeedRange(2_000_000, 3_000_000, "planner LoRA training episodes")
LEARN = SeedRange(3_000_000, 4_000_000, "skill-library learning tasks")
VERIFY = SeedRange(4_000_000, 5_000_000, "skill-library verification tables")
GOAL_TRAIN = SeedRange(5_000_000, 6_000_000, "instruction-to-goal training pairs")
PALME_TRAIN = SeedRange(6_000_000, 7_000_000, "PaLM-E training episodes")
CODE_TRAIN = SeedRange(7_000_000, 8_000_000, "Code-as-Policies program-writing training tasks")
CRAFTER_LEARN = SeedRange(8_000_000, 8_100_000, "Crafter worlds the skill library is learned in")
CRAFTER_VERIFY = SeedRange(8_100_000, 8_500_000, "fresh Crafter worlds a new skill is verified on")
CRAFTER_SCORE = SeedRange(8_500_000, 8_600_000, "Crafter worlds of the score's long episodes")

SEED_RANGES: tuple[SeedRange, ...] = (GROUNDING_TRAIN, EVALUATION, DETECTION_HELDOUT, GROUNDING_HELDOUT,
                                      VQA_HELDOUT, EXAMPLES, PLANNER_TRAIN, LEARN, VERIFY, GOAL_TRAIN, PALME_TRAIN,
                                      CODE_TRAIN, CRAFTER_LEARN, CRAFTER_VERIFY, CRAFTER_SCORE)
