"""Form controls built from the argument metadata in core/args.py (one source of every option).

A control's default, choices and hint come from the dataclass field (our options) or from
transformers' TrainingArguments source read with `ast` (never imported: the UI must start fast).
The only values set here are the few UI presets that make the demo work out of the box.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Optional

from core import args as core_args
from core.errors import UserError

NONE = "none"  # the dropdown value standing for an empty (None) optional choice

# What the Train tab opens with, where it differs from the argument defaults: the demo model
# and dataset, and settings with which the tiny demo model visibly learns in about a minute
# (lr 3e-3, LoRA on every linear layer, the output layer included). Everything else is the
# schema's default.
UI_PRESETS: dict[str, Any] = {
    "stage": "sft",
    "dataset": "demo_sft",
    "template": "llama2",
    "do_train": True,
    "learning_rate": 3e-3,
    # Measured on the demo model: LoRA on every linear layer at lr 3e-3 for 6 epochs takes the
    # loss from ~7.8 to ~0.7 and reproduces the identity answers (about 20 s on 2 CPU cores).
    "num_train_epochs": 6.0,
    "cutoff_len": 256,
    "per_device_train_batch_size": 8,
    "logging_steps": 2,
    "save_steps": 100,
    "plot_loss": True,
}

# Groups of the Train tab, in order. Names only: everything else comes from the metadata.
GROUPS: dict[str, tuple[str, ...]] = {
    "basic": ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
              "gradient_accumulation_steps", "cutoff_len", "max_samples", "lr_scheduler_type",
              "warmup_steps", "logging_steps", "save_steps"),
    "lora": ("lora_rank", "lora_alpha", "lora_dropout", "lora_target", "additional_target",
             "freeze_trainable_layers"),
    "quantization": ("quantization_bit", "quantization_type", "double_quantization"),
    "evaluation": ("val_size", "eval_strategy", "eval_steps", "per_device_eval_batch_size"),
    "preference": ("pref_beta", "pref_loss", "pref_ftx"),
    "advanced": ("system", "train_on_prompt", "max_grad_norm", "weight_decay", "seed", "fp16", "bf16",
                 "train_sampling_strategy", "optim", "preprocessing_num_workers", "overwrite_cache",
                 "trust_remote_code", "plot_loss", "save_total_limit"),
}
# Shown at the top of the tab, outside the groups.
TOP_FIELDS = ("model_name_or_path", "template", "stage", "finetuning_type", "adapter_name_or_path",
              "dataset", "output_dir")
# Sent with every command even when equal to their defaults, so a run config reads on its own.
ALWAYS_SENT = ("stage", "do_train", "model_name_or_path", "dataset", "template", "finetuning_type", "output_dir")


@dataclass(frozen=True)
class FieldSpec:
    """One option as the form needs it."""

    name: str
    kind: str  # bool | int | float | text | choice
    default: Any
    help: str
    choices: Optional[tuple] = None
    optional: bool = False
    source: str = "ours"  # ours | training


def _kind_of(tp: Any) -> tuple[str, bool]:
    args = typing.get_args(tp)
    optional = type(None) in args
    inner = [a for a in args if a is not type(None)] if args else [tp]
    base = inner[0] if len(inner) == 1 else tp
    if typing.get_origin(base) is Literal:
        return "choice", optional
    if base is bool:
        return "bool", optional
    if base is int:
        return "int", optional
    if base is float:
        return "float", optional
    return "text", optional


@lru_cache(maxsize=None)
def field_spec(name: str) -> FieldSpec:
    """The spec of one option, ours first, then TrainingArguments'."""
    ours = core_args.our_fields()
    if name in ours:
        f = ours[name]
        hints = typing.get_type_hints(core_args._owner(f))
        kind, optional = _kind_of(hints[name])
        choices = core_args.field_choices(f)
        default = f.default if f.default is not dataclasses.MISSING else None
        return FieldSpec(name, kind, default, f.metadata.get("help", ""), choices, optional, "ours")
    tf = core_args.training_field(name)  # KeyError for an unknown name
    kind = "choice" if tf.choices else _kind_from_annotation(tf.annotation, tf.default)
    return FieldSpec(name, kind, tf.default, tf.help, tf.choices, "None" in tf.annotation, "training")


def known_option(name: str) -> bool:
    try:
        field_spec(name)
        return True
    except KeyError:
        return False


def _kind_from_annotation(annotation: str, default: Any) -> str:
    if "bool" in annotation:
        return "bool"
    if isinstance(default, int) and not isinstance(default, bool) and "float" in annotation:
        return "int"  # logging_steps, save_steps: "int or a ratio"; the form offers the count
    if "float" in annotation:
        return "float"
    if "int" in annotation:
        return "int"
    return "text"


# ---------------------------------------------------------------------------- values


def default_value(name: str) -> Any:
    """The value the form opens with (a preset, else the schema's default)."""
    return UI_PRESETS.get(name, field_spec(name).default)


def to_ui(name: str, value: Any) -> Any:
    """A config value as its control holds it."""
    spec = field_spec(name)
    if spec.kind == "choice":
        return NONE if value is None else str(value)
    if spec.kind == "bool":
        return bool(value)
    if spec.kind == "text" or (spec.optional and spec.kind in ("int", "float")):
        if isinstance(value, (list, tuple)):
            return ",".join(map(str, value))
        return "" if value is None else str(value)
    return value


def from_ui(name: str, value: Any) -> Any:
    """A control's value as the trainer expects it (None = unset)."""
    spec = field_spec(name)
    if spec.kind == "choice":
        if value in (None, "", NONE):
            return None
        for choice in spec.choices or ():
            if str(choice) == str(value):
                return choice
        raise UserError(f"--{name}: '{value}' is not one of {', '.join(map(str, spec.choices or ()))}")
    if spec.kind == "bool":
        return bool(value)
    if spec.kind in ("int", "float"):
        if value in (None, ""):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserError(f"--{name} must be a number, got '{value}'") from None
        if spec.kind == "int" and number.is_integer():
            return int(number)
        return number
    text = "" if value is None else str(value).strip()
    return text or None


def is_default(name: str, value: Any) -> bool:
    default = field_spec(name).default
    if isinstance(default, float) or isinstance(value, float):
        try:
            return default is not None and value is not None and float(default) == float(value)
        except (TypeError, ValueError):
            return False
    return value == default


# The groups whose options depend on the stage or the fine-tuning type (see `applies`).
STAGED_GROUPS = ("lora", "preference")


def applies(name: str, stage: Optional[str], finetuning_type: Optional[str]) -> bool:
    """Whether an option does anything for this stage and fine-tuning type; the Train tab hides
    the others (their values stay and are still sent, so switching back loses nothing)."""
    if name in GROUPS["preference"]:
        return stage == "dpo"
    if name == "freeze_trainable_layers":
        return finetuning_type == "freeze"
    if name in GROUPS["lora"]:
        return finetuning_type == "lora"
    return True


def group_applies(group: str, stage: Optional[str], finetuning_type: Optional[str]) -> bool:
    return any(applies(name, stage, finetuning_type) for name in GROUPS[group])


# ---------------------------------------------------------------------------- controls


def build_control(name: str, value: Any = None, **overrides: Any):
    """A Gradio control for one option: label and hint translated, default from metadata."""
    import gradio as gr

    from webui.i18n import I18N

    spec = field_spec(name)
    value = to_ui(name, default_value(name) if value is None else value)
    kw: dict[str, Any] = {"label": I18N(f"field.{name}"), "info": I18N(f"help.{name}"),
                          "elem_id": f"field-{name}", "interactive": True}
    kw.update(overrides)
    if spec.kind == "choice":
        choices = [str(c) for c in spec.choices or ()]
        if spec.optional:
            choices = [NONE, *choices]
        return gr.Dropdown(choices=choices, value=value, **kw)
    if spec.kind == "bool":
        return gr.Checkbox(value=value, **kw)
    if spec.optional and spec.kind in ("int", "float"):
        # gr.Number cannot hold "unset" (it shows and returns 0): empty text means None.
        return gr.Textbox(value=value, lines=1, max_lines=1, placeholder="–", **kw)
    if spec.kind == "int":
        return gr.Number(value=value, precision=0, **kw)
    if spec.kind == "float":
        return gr.Number(value=value, **kw)
    return gr.Textbox(value=value, lines=1, max_lines=4 if name == "system" else 1, **kw)
