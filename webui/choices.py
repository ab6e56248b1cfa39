"""The choice lists more than one tab offers (model folders, adapters, finished runs, datasets,
accelerate configs) and what to preselect for a chosen adapter. Read from disk each time they
are asked for, so a tab shows what other tabs (or the command line) made meanwhile."""

from __future__ import annotations

import re
from typing import Any, Optional

from core import rundir
from core.errors import UserError
from webui.context import AppContext
from webui.form import NONE
from webui.paths import ROOT, display_path, resolve_path

ACCELERATE_CONFIGS = ROOT / "examples" / "accelerate"


def local_models(ctx: AppContext) -> list[str]:
    """Model folders under the dataset dir's models/ (and the demo model's place), demo first."""
    found = [display_path(ctx.demo_model)]
    for base in {ctx.dataset_dir / "models", ctx.demo_model.parent}:
        if base.is_dir():
            for child in sorted(base.iterdir()):
                if (child / "config.json").is_file() and display_path(child) not in found:
                    found.append(display_path(child))
    return found


def model_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """The model picker's (label, value) pairs: local model folders; the real model that
    `get-model` builds, marked while it is not built; then the curated hub ids, each with its
    size, template and whether it is gated. Any other folder, .gguf file or hub id can be typed."""
    from core.model_zoo import KNOWN_MODELS, built_model

    out = []
    for path in local_models(ctx):
        known = built_model(resolve_path(path))
        out.append((f"{path} ({known.params}, template {known.template})" if known else path, path))
    real = ctx.real_model
    if real is not None and not real.ready():
        path = display_path(real.out_dir)
        out.append((f"{path} (135M, not built yet: press Build, about a minute offline)", path))
    out += [(model.label(), model.hub_id) for model in KNOWN_MODELS]
    return out


def template_for_model(model: Optional[str]) -> Optional[str]:
    """The template to preselect for a model: a curated hub id's (or that of the model a folder
    was built from), else what the model's own tokenizer files suggest; None when unknown."""
    from core.data.templates import propose_template
    from core.model_source import check_model_source
    from core.model_zoo import built_model, known_model

    if not model:
        return None
    known = known_model(model)
    if known is not None:
        return known.template
    local = resolve_path(model)  # relative to the repository, as runs see it; else a hub id
    try:
        source = check_model_source(str(local) if local.exists() else model)
    except UserError:
        return None
    if source.folder is None:
        return None
    known = built_model(source.folder)
    if known is not None:
        return known.template
    if source.gguf_file:
        return "auto"  # a GGUF carries its chat template inside; transformers reads it from there
    return propose_template(source.folder)


def adapters(ctx: AppContext) -> list[str]:
    """Every LoRA adapter under the saves folder, checkpoints included, after "none": what a new
    run may continue from."""
    out = [NONE]
    for info in rundir.find_runs(ctx.saves_dir):
        if (info.path / "adapter_config.json").is_file():
            out.append(display_path(info.path))
        for ckpt in sorted(info.path.glob("checkpoint-*")):
            if (ckpt / "adapter_config.json").is_file():
                out.append(display_path(ckpt))
    return out


def finished_adapters(ctx: AppContext) -> list[str]:
    """Finished LoRA runs under the saves folder, newest first: what Chat and Export offer (any
    other run or checkpoint folder can be typed)."""
    return [display_path(info.path) for info in rundir.find_runs(ctx.saves_dir)
            if info.state == "finished" and (info.path / "adapter_config.json").is_file()]


def dataset_names(ctx: AppContext, stage: Optional[str]) -> list[str]:
    """Registered datasets that the stage accepts (none while the registry is broken: the
    Datasets tab says why)."""
    from core.data.registry import check_stage, load_registry

    try:
        registry = load_registry(str(ctx.dataset_dir))
    except UserError:
        return []
    names = []
    for name, spec in registry.items():
        try:
            check_stage(spec, stage or "sft")
            names.append(name)
        except UserError:
            continue
    return sorted(names)


def gpus() -> list[tuple[str, str]]:
    """(label, index) of each GPU nvidia-smi lists, the index as CUDA_VISIBLE_DEVICES takes it;
    none on a machine without GPUs (or without nvidia-smi)."""
    from core.memory import available_memory, human

    return [(f"{pool.name} ({human(pool.total)})", index) for pool in available_memory()
            if (index := gpu_index(pool)) is not None]


def gpu_index(pool: Any) -> Optional[str]:
    """A GPU memory pool's nvidia-smi index ("GPU 1: NVIDIA H200" -> "1"); None for the RAM."""
    found = re.match(r"GPU (\d+)\b", pool.name) if pool.kind == "gpu" else None
    return found.group(1) if found else None


def accelerate_configs() -> list[str]:
    """"none" and the ready accelerate configs of examples/accelerate/ (DDP, FSDP, DeepSpeed)."""
    found = [NONE]
    for path in sorted(ACCELERATE_CONFIGS.glob("*.yaml")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "distributed_type" in text or "compute_environment" in text:
            found.append(display_path(path))
    return found


def proposal(model: Optional[str], adapter: Optional[str]) -> dict[str, Any]:
    """Base model, template and system prompt to preselect for an adapter (its run.yaml) or a
    model alone (what its tokenizer files suggest): the Chat and Export tabs' proposal."""
    from core.chat import run_config
    from core.data.templates import _chat_template_text

    out: dict[str, Any] = {"model": model, "template": None, "system": None}
    config = run_config(str(resolve_path(adapter))) if adapter else {}
    if config.get("model_name_or_path"):
        out["model"] = str(config["model_name_or_path"])
    model_dir = resolve_path(out["model"]) if out["model"] else None
    if config:
        # What the run trained with; an empty template meant "the tokenizer's own, else default".
        has_own = bool(model_dir and _chat_template_text(model_dir))
        out["template"] = config.get("template") or ("auto" if has_own else "default")
        out["system"] = config.get("system")
    elif out["model"]:
        out["template"] = template_for_model(out["model"])
    return out
