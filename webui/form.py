"""Form controls built from the argument metadata in core/args.py (one source of every option).

A control's kind, default, choices and hint come from core.args.option_spec: the dataclass field
(our options) or transformers' TrainingArguments source read with `ast` (never imported: the UI
must start fast). What is set here: the Train tab's groups and order, and the few UI presets
that make the demo work out of the box.
"""

from __future__ import annotations

from typing import Any, Optional

from core.args import option_spec, option_stages
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
    "evaluation": ("val_size", "eval_dataset", "eval_strategy", "eval_steps", "per_device_eval_batch_size",
                   "load_best_model_at_end", "early_stopping_patience", "report_to"),
    "preference": ("pref_beta", "pref_loss", "pref_ftx", "simpo_gamma", "kto_chosen_weight", "kto_rejected_weight"),
    "online_rl": ("reward_model", "reward_funcs", "num_generations", "grpo_beta"),
    "advanced": ("system", "train_on_prompt", "max_grad_norm", "weight_decay", "seed", "fp16", "bf16",
                 "train_sampling_strategy", "optim", "preprocessing_num_workers", "overwrite_cache",
                 "trust_remote_code", "plot_loss", "save_total_limit"),
}
# Shown at the top of the tab, outside the groups.
TOP_FIELDS = ("model_name_or_path", "template", "stage", "finetuning_type", "adapter_name_or_path",
              "dataset", "output_dir")
# Every control of the Train tab, in the order handlers receive their values.
FORM_FIELDS: tuple[str, ...] = TOP_FIELDS + tuple(name for group in GROUPS.values() for name in group)
# Dropdowns that also take any typed path; their "none" choice means empty.
DROPDOWN_TEXT_FIELDS = ("model_name_or_path", "adapter_name_or_path")
# What the Train tab sets without a control: it always trains.
IMPLIED: dict[str, Any] = {"do_train": True}


# ---------------------------------------------------------------------------- values


def form_values(values: tuple) -> dict[str, Any]:
    """The Train tab's control values (in FORM_FIELDS order) by option name, as config values read them."""
    out = dict(zip(FORM_FIELDS, values))
    if isinstance(out.get("dataset"), (list, tuple)):
        out["dataset"] = ",".join(out["dataset"])
    for name in DROPDOWN_TEXT_FIELDS:
        if out.get(name) == NONE:
            out[name] = ""
    return out


def default_value(name: str) -> Any:
    """The value the form opens with (a preset, else the schema's default)."""
    return UI_PRESETS.get(name, option_spec(name).default)


def to_ui(name: str, value: Any) -> Any:
    """A config value as its control holds it."""
    spec = option_spec(name)
    if spec.kind == "choice":
        return NONE if value is None else str(value)
    if spec.kind == "bool" and spec.optional:  # a dropdown: none, true, false
        return NONE if value is None else str(bool(value)).lower()
    if spec.kind == "bool":
        return bool(value)
    if spec.kind == "text" or (spec.optional and spec.kind in ("int", "float")):
        if isinstance(value, (list, tuple)):
            return ",".join(map(str, value))
        return "" if value is None else str(value)
    return value


def from_ui(name: str, value: Any) -> Any:
    """A control's value as the trainer expects it (None = unset)."""
    spec = option_spec(name)
    if spec.kind == "choice":
        if value in (None, "", NONE):
            return None
        for choice in spec.choices or ():
            if str(choice) == str(value):
                return choice
        raise UserError(f"--{name}: '{value}' is not one of {', '.join(map(str, spec.choices or ()))}")
    if spec.kind == "bool" and spec.optional:  # a dropdown: none (unset: this tool decides), true, false
        return None if value in (None, "", NONE) else str(value).lower() in ("true", "1")
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


# The groups whose options depend on the stage or the fine-tuning type (see `applies`).
STAGED_GROUPS = ("lora", "preference", "online_rl")


def applies(name: str, stage: Optional[str], finetuning_type: Optional[str]) -> bool:
    """Whether an option does anything for this stage and fine-tuning type; the Train tab hides
    the others (their values stay and are still sent, so switching back loses nothing). A stage's
    own options say which stages they serve in core/args.py (STAGE_OPTIONS)."""
    stages = option_stages(name)
    if stages is not None:
        return stage in stages
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

    spec = option_spec(name)
    value = to_ui(name, default_value(name) if value is None else value)
    kw: dict[str, Any] = {"label": I18N(f"field.{name}"), "info": I18N(f"help.{name}"),
                          "elem_id": f"field-{name}", "interactive": True}
    kw.update(overrides)
    if spec.kind == "choice":
        choices = [str(c) for c in spec.choices or ()]
        if spec.optional:
            choices = [NONE, *choices]
        return gr.Dropdown(choices=choices, value=value, **kw)
    if spec.kind == "bool" and spec.optional:
        return gr.Dropdown(choices=[NONE, "true", "false"], value=value, **kw)
    if spec.kind == "bool":
        # A checkbox in a row gets no min width of its own and is squeezed to a column (app.py's CSS).
        return gr.Checkbox(value=value, elem_classes=["tf-check"], **kw)
    if spec.optional and spec.kind in ("int", "float"):
        # gr.Number cannot hold "unset" (it shows and returns 0): empty text means None.
        return gr.Textbox(value=value, lines=1, max_lines=1, placeholder="–", **kw)
    if spec.kind == "int":
        return gr.Number(value=value, precision=0, **kw)
    if spec.kind == "float":
        return gr.Number(value=value, **kw)
    return gr.Textbox(value=value, lines=1, max_lines=4 if name == "system" else 1, **kw)
