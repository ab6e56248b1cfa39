"""The Train tab's memory estimate: the run's estimated peak (core/memory.py) beside the memory
there is (each GPU through nvidia-smi, else the RAM; only the chosen GPUs when some are chosen),
updated whenever a field that decides it changes; a run that will not fit says so before Start,
with what to change."""

from __future__ import annotations

import time
from typing import Any

from core.errors import UserError
from core.memory import MemoryPool, RunPlan, available_memory, check_fit, estimate, human, model_shape
from webui import choices, command, form
from webui.context import AppContext
from webui.i18n import t
from webui.paths import ROOT

# The form's fields the estimate reads, in the order the handler receives them.
MEMORY_FIELDS = ("model_name_or_path", "finetuning_type", "lora_rank", "lora_target", "additional_target",
                 "freeze_trainable_layers", "quantization_bit", "double_quantization",
                 "per_device_train_batch_size", "cutoff_len")
POOLS_TTL_S = 5.0  # nvidia-smi is asked at most this often, however fast the fields change
_pools: tuple[float, list[MemoryPool]] = (0.0, [])


def pools() -> list[MemoryPool]:
    global _pools
    if time.monotonic() - _pools[0] > POOLS_TTL_S:
        _pools = (time.monotonic(), available_memory())
    return _pools[1]


def processes(nproc: Any, accel: Any, gpus: Any = None) -> int:
    """Processes of the run on this machine, as the command starts them (command.processes_per_machine);
    the field's number when the distributed settings cannot be read (the preview says why)."""
    try:
        launcher = command.launcher_from_form(nproc, accel, gpus)
        file = command.accelerate_file(launcher["accelerate_config"])
        return command.processes_per_machine(max(1, launcher["num_processes"]), launcher["gpus"], file)
    except UserError:
        try:
            return max(1, int(nproc or 1))
        except (TypeError, ValueError):
            return 1


def chosen_pools(available: list[MemoryPool], gpus: Any) -> list[MemoryPool]:
    """The memory the run can use: the chosen GPUs' when GPUs are chosen (and listed), else all there is."""
    try:
        wanted = [g for g in command.parse_gpus(gpus).split(",") if g]
    except UserError:
        return available
    chosen = [p for p in available if choices.gpu_index(p) in wanted]
    return sorted(chosen, key=lambda p: wanted.index(choices.gpu_index(p))) if chosen else available


def memory_markdown(ctx: AppContext, lang: str, extra: str, nproc: Any, accel: Any, gpus: Any, *values: Any) -> str:
    """The estimate, the memory there is, and, for a run that will not fit, the changes that would."""
    try:
        config = {name: form.from_ui(name, value) for name, value in zip(MEMORY_FIELDS, values)}
        config.update(command.parse_extra(extra))
        shape = model_shape(str(config.get("model_name_or_path") or ""), ROOT)
    except UserError as err:
        return t(lang, "mem.unavailable", reason=str(err))
    available = chosen_pools(pools(), gpus)
    device = "cuda" if any(p.kind == "gpu" for p in available) else "cpu"
    plan = RunPlan.from_config(config, processes(nproc, accel, gpus), device)
    est = estimate(shape, plan)
    verdict = check_fit(est, available)
    parts = {key: human(value) for key, value in est.parts.items()}
    lines = [t(lang, "mem.estimate", total=human(est.per_process), batch=plan.batch_size, cutoff=plan.cutoff_len,
               where=t(lang, "mem.on_gpu" if device == "cuda" else "mem.on_cpu"), **parts)]
    if not shape.exact:
        lines.append(t(lang, "mem.guessed", source=shape.source))
    if device == "cpu":
        lines.append(t(lang, "mem.processes", n=plan.num_processes, needed=human(verdict.needed)))
    lines.append(t(lang, "mem.available") + " " + "; ".join(
        t(lang, "mem.pool", name=p.name, free=human(p.free), total=human(p.total)) for p in available))
    if verdict.fits:
        lines.append(t(lang, "mem.fits", needed=human(verdict.needed), available=human(verdict.available), pool=verdict.pool))
        return "\n\n".join(lines)
    lines.append(t(lang, "mem.no_fit", needed=human(verdict.needed), available=human(verdict.available), pool=verdict.pool))
    bullets = []
    for change in verdict.changes:
        text = t(lang, f"mem.change.{change.code}", batch=change.plan.batch_size, cutoff=change.plan.cutoff_len,
                 accum=max(1, plan.batch_size // change.plan.batch_size))
        key = "mem.change_fits" if change.fits else "mem.change_lowers"
        bullets.append("- " + t(lang, key, change=text, needed=human(change.needed)))
    return "\n\n".join(lines) + ("\n\n" + "\n".join(bullets) if bullets else "")
