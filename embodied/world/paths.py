"""Output paths checked before any work starts: a run that would end unable to save what it computed is
refused up front, with a message naming the path (`EmbodiedError`, exit 2 on the command line)."""

from __future__ import annotations

import os
from pathlib import Path

from embodied.world.errors import EmbodiedError


def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """Make sure ``path`` is (or can be made) a writable folder, before any work; `EmbodiedError` otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EmbodiedError(f"{what} {path} is an existing file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise EmbodiedError(f"{what} {path}: cannot write there ({e.strerror or e})") from None
    return path


def check_output_file(path: str | Path, what: str = "--out") -> Path:
    """Make sure ``path`` can be written as a file (not a folder, parent writable), before any work."""
    path = Path(path)
    if path.is_dir():
        raise EmbodiedError(f"{what} {path} is a folder; give a file name, e.g. {path / 'out.json'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise EmbodiedError(f"{what} {path}: the file is not writable")
    check_output_dir(path.parent, f"{what} {path}: its folder")
    return path
