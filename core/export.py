"""Merge a LoRA adapter into its base model and save a standalone model folder.

`python launch.py export --model_name_or_path M --adapter_name_or_path RUN --export_dir DIR
[--export_size 2GB] [--overwrite]` writes safetensors shards, the tokenizer and the generation
config. It prints `[tuneforge-progress] FRACTION MESSAGE` lines, which the web UI (running it as
a subprocess) turns into a progress bar.

The merge always happens in full precision: an adapter trained on a 4-bit (QLoRA) base is merged
into the base loaded without quantization, never into 4-bit weights (rounding the merged weights
to 4 bits would lose most of what the adapter learned). A base folder stored quantized is refused.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from core.args import AdapterTemplateArguments, ModelArguments
from core.errors import UserError
from core.progress import every_percent, part_of, print_progress

Progress = Callable[[float, str], None]
EXPORT_MARKER = "export.json"  # written last: how the folder was made

# The files an export writes; --overwrite removes these (and only these) first, so stale shards of
# an earlier, differently sharded export cannot be mixed into the new one.
_EXPORT_PATTERNS = (
    "model*.safetensors", "model.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json",
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
    "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja",
    "chat_template.json", EXPORT_MARKER,
)


def check_export_dir(export_dir: str | Path, model_dir: str | Path, adapter_dir: str | Path, overwrite: bool) -> Path:
    """The target folder: new or empty, or holding an earlier export with `overwrite`."""
    target = Path(export_dir).expanduser()
    for source, what in ((model_dir, "base model"), (adapter_dir, "adapter")):
        if target.resolve() == Path(source).expanduser().resolve():
            raise UserError(f"export_dir '{export_dir}' is the {what} folder; choose a new folder for the merged model")
    if target.exists() and not target.is_dir():
        raise UserError(f"export_dir '{export_dir}' is a file; choose a folder")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            count = sum(1 for _ in target.iterdir())
            raise UserError(f"export_dir '{export_dir}' is not empty ({count} entries); choose an empty folder or pass --overwrite to replace the model files in it")
    return target


def _clear_previous_export(target: Path) -> None:
    for pattern in _EXPORT_PATTERNS:
        for path in target.glob(pattern):
            if path.is_file():
                path.unlink()


def stored_quantization(model_dir: str | Path) -> Optional[str]:
    """The quantization method a model folder is stored with (config.json), if any."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    quant = config.get("quantization_config")
    if not quant:
        return None
    return str(quant.get("quant_method", "quantized")) if isinstance(quant, dict) else "quantized"


def _stored_dtype(model_dir: Path):
    """The dtype the base model is stored in, so the merged model is no larger than its base."""
    import torch

    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get("dtype") or config.get("torch_dtype")
    value = getattr(torch, str(name), None) if name else None
    return value if isinstance(value, torch.dtype) and value.is_floating_point else None


def export_merged(
    model_name_or_path: str,
    adapter_name_or_path: str,
    export_dir: str,
    template: Optional[str] = None,
    max_shard_size: str = "2GB",
    overwrite: bool = False,
    progress: Optional[Progress] = None,
) -> Path:
    """Merge the adapter into the base (full precision) and save model, tokenizer and generation config."""
    from core.args import ModelArguments
    from core.chat import check_adapter_dir, run_config
    from core.model import load_adapter, load_base_model, load_tokenizer, resolve_source
    from core.model_source import check_model_source

    report = progress or (lambda fraction, message: None)
    source = check_model_source(model_name_or_path)  # a bad name is refused before anything downloads
    if not adapter_name_or_path:
        raise UserError("--adapter_name_or_path is required: the LoRA run folder (or checkpoint-N) to merge")
    check_adapter_dir(adapter_name_or_path)
    # A hub id downloads here and takes the first half of the bar (as in the Chat tab), the merge
    # the rest; a download reports every chunk, the console and the Export tab need a line a percent.
    download_share = 0.5 if source.kind == "hub" else 0.0
    download = every_percent(part_of(report, 0.0, download_share))
    model_dir = resolve_source(model_name_or_path, progress=download).folder
    report = part_of(report, download_share, 1.0)
    target = check_export_dir(export_dir, model_dir, adapter_name_or_path, overwrite)
    _check_shard_size(max_shard_size)
    method = stored_quantization(model_dir)
    if method:
        raise UserError(
            f"the base model '{model_name_or_path}' is stored quantized ({method}); merging needs full-precision weights: "
            "pass the original (unquantized) model folder the quantized one was made from"
        )
    config = run_config(adapter_name_or_path)
    if config.get("quantization_bit"):
        report(0.02, f"the adapter was trained on a {config['quantization_bit']}-bit base; merging into the full-precision base weights instead (never into quantized weights)")
    if template is not None:
        from core.args import TEMPLATE_NAMES

        if template not in TEMPLATE_NAMES:
            raise UserError(f"unknown template '{template}'; choose one of {', '.join(TEMPLATE_NAMES)}")

    started = time.time()
    model_args = ModelArguments(model_name_or_path=model_name_or_path)  # no quantization: merge in full precision
    report(0.05, "loading the tokenizer")
    tokenizer = load_tokenizer(model_args)
    report(0.10, f"loading the base model {model_name_or_path}")
    model = load_base_model(model_args)
    report(0.45, f"loading the adapter {adapter_name_or_path}")
    model = load_adapter(model, adapter_name_or_path, is_trainable=False)
    report(0.55, "merging the adapter into the weights")
    model = model.merge_and_unload()
    dtype = _stored_dtype(model_dir)
    if dtype is not None and dtype != model.dtype:
        model = model.to(dtype)
    target.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _clear_previous_export(target)
    report(0.65, f"saving safetensors shards of at most {max_shard_size} into {target}")
    model.save_pretrained(str(target), max_shard_size=max_shard_size, safe_serialization=True)
    report(0.90, "saving the tokenizer and the generation config")
    # The tokenizer keeps its own chat template; the training template's name goes to export.json.
    tokenizer.save_pretrained(str(target))
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(str(target))
    (target / EXPORT_MARKER).write_text(json.dumps({
        "base_model": str(model_name_or_path), "adapter": str(adapter_name_or_path),
        "template": template or config.get("template"), "max_shard_size": max_shard_size,
        "seconds": round(time.time() - started, 1),
    }, indent=1), encoding="utf-8")
    report(1.0, f"done: {target}")
    return target


def _check_shard_size(size: str) -> None:
    import re

    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|KIB|MIB|GIB)\s*", str(size), flags=re.IGNORECASE):
        raise UserError(f"--export_size '{size}' is not a size; use e.g. 500MB or 2GB")


# ---------------------------------------------------------------------------- command line


@dataclass
class ExportArguments:
    """Where the merged model goes (the model and adapter are the training run's ModelArguments)."""

    export_dir: Optional[str] = field(default=None, metadata={"help": "New (or empty) folder for the merged model."})
    export_size: str = field(default="2GB", metadata={"help": "Largest safetensors shard, e.g. 500MB or 2GB."})
    overwrite: bool = field(default=False, metadata={
        "help": "Replace the model files of an earlier export in a non-empty export_dir."})


EXPORT_DESCRIPTION = ("Merge a LoRA adapter into its base model (always in full precision) and save the result; "
                      "--template is the one the adapter was trained with, recorded in export.json.")


def parse_export_args(argv: list[str]) -> tuple[ModelArguments, AdapterTemplateArguments, ExportArguments]:
    from core.args import parse_cli

    model_args, template_args, export_args = parse_cli(
        argv, (ModelArguments, AdapterTemplateArguments, ExportArguments), prog="launch.py export", description=EXPORT_DESCRIPTION)
    if model_args.quantization_bit is not None:
        raise UserError("export merges into the full-precision base model; drop --quantization_bit "
                        "(an adapter trained on a 4-bit base is merged the same way)")
    return model_args, template_args, export_args


def main(argv: list[str]) -> int:
    try:
        model_args, template_args, args = parse_export_args(argv)
        for name, value in (("model_name_or_path", model_args.model_name_or_path),
                            ("adapter_name_or_path", model_args.adapter_name_or_path), ("export_dir", args.export_dir)):
            if not value:
                raise UserError(f"--{name} is required")
        export_merged(model_args.model_name_or_path, model_args.adapter_name_or_path, args.export_dir,
                      template=template_args.template, max_shard_size=args.export_size, overwrite=args.overwrite,
                      progress=print_progress)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    return 0
