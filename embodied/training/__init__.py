"""Trainers (`embodied train planner|palme|grounding`): each a thin `main(argv)`. They import models and the
runtime; nothing imports them."""
