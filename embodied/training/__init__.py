"""Trainers (`embodied train planner|palme|grounding`): each a thin `main(argv)`. They import models and the
runtime; nothing imports them."""

from __future__ import annotations

import logging


def show_progress(*loggers: str, fmt: str = "%(asctime)s %(name)s %(message)s") -> None:
    """INFO progress lines from ``loggers`` on stderr: run alone (``python -m``) logging is set up here; under
    `embodied train ...` the CLI's handler stays and only these loggers are let through at INFO."""
    logging.basicConfig(level=logging.INFO, format=fmt)
    for name in loggers:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
