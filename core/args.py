"""The argument dataclasses: the one source of every option, its default, help and choices.

The trainer parses them together with transformers' TrainingArguments through HfArgumentParser,
from a YAML/JSON file, from argv, or both (file first, argv overrides); the chat, score and
export commands parse their share of the same dataclasses the same way (`parse_cli`). Each
dataclass checks its own values in `__post_init__`; the TrainingArguments fields this tool sets
or checks are declared once, in TRAINING_OPTIONS. The web UI builds its form from the same
fields (`option_spec`), and `resolved_config` is what a run records in run.yaml, whoever
writes it. Reading the schema stays light: transformers is imported only inside the parsing
functions, and TrainingArguments' fields are read from transformers' own source with `ast`
(see `training_field`), so they have one source too.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import importlib.util
import json
import os
import sys
import typing
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any, Callable, Iterable, Literal, Mapping, Optional

from core.errors import UserError

STAGES = ("pt", "sft", "rm", "dpo", "kto", "grpo")
# Stages other tools train that this one does not: `--stage NAME` is refused with the line to use instead.
RETIRED_STAGES = {
    "ppo": "trl 1.16 has no PPO trainer; use --stage grpo (online RL from --reward_model saves/RM-RUN and/or "
           "--reward_funcs exact_match,length)",
}
PREF_LOSSES = ("sigmoid", "hinge", "ipo", "orpo", "simpo")
REFERENCE_FREE_LOSSES = ("orpo", "simpo")  # trained through trl.experimental's ORPO/CPO trainers: no reference model
REWARD_FUNCS = ("exact_match", "length")  # the rule rewards of --stage grpo (core/train/rewards.py)
# The options of some stages only: the Train tab shows them for these stages and hides them for the others.
STAGE_OPTIONS: dict[str, tuple[str, ...]] = {
    "pref_beta": ("dpo", "kto"), "pref_loss": ("dpo",), "pref_ftx": ("dpo",), "simpo_gamma": ("dpo",),
    "kto_chosen_weight": ("kto",), "kto_rejected_weight": ("kto",),
    "reward_model": ("grpo",), "reward_funcs": ("grpo",), "num_generations": ("grpo",), "grpo_beta": ("grpo",),
}
TEMPLATE_NAMES = ("auto", "default", "alpaca", "vicuna", "llama2", "chatml", "llama3", "qwen", "qwen3", "mistral", "gemma", "phi", "phi4")


# ---------------------------------------------------------------------------- value checks


def refuse_unless(name: str, value: Any, ok: Callable[[Any], bool], rule: str) -> None:
    """One line naming the flag when a set value breaks its rule (None is unset: always allowed)."""
    if value is None:
        return
    try:
        fine = bool(ok(value))
    except TypeError:  # a string where a number belongs: argparse types the CLI, not a hand-made dict
        fine = False
    if not fine:
        raise UserError(f"--{name} {rule}, got {value}")


def positive(name: str, value: Any) -> None:
    refuse_unless(name, value, lambda v: v > 0, "must be greater than 0")


# ---------------------------------------------------------------------------- our options


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "The base model: a local Hugging Face folder, a .gguf file, or a hub id ORG/NAME (downloaded once into the Hugging Face cache)."},
    )
    adapter_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "A LoRA adapter folder (a finished run or a checkpoint) to continue training from or to load for chat."},
    )
    quantization_bit: Optional[Literal[4, 8]] = field(
        default=None,
        metadata={"help": "Load the base model in 4 or 8 bits through bitsandbytes (QLoRA); empty = full precision."},
    )
    quantization_type: Literal["nf4", "fp4"] = field(
        default="nf4", metadata={"help": "4-bit data type."}
    )
    double_quantization: bool = field(
        default=True, metadata={"help": "Also quantize the 4-bit quantization constants (saves memory)."}
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Run Python code shipped inside the model folder. Only for models you trust."},
    )


@dataclass
class TemplateArguments:
    """How a conversation becomes tokens: training's (in DataArguments), chat's and score's."""

    template: Optional[Literal[TEMPLATE_NAMES]] = field(  # type: ignore[valid-type]
        default=None,
        metadata={"help": "Prompt template. Empty = the tokenizer's own chat template if it has one, else 'default'."},
    )
    system: Optional[str] = field(
        default=None, metadata={"help": "System prompt; empty = the template's default."}
    )


@dataclass
class AdapterTemplateArguments(TemplateArguments):
    """The template options of chat, score and export, which start from a trained run's adapter."""

    template: Optional[Literal[TEMPLATE_NAMES]] = field(  # type: ignore[valid-type]
        default=None,
        metadata={"help": "Prompt template; optional. Empty = the one the adapter's run trained with (its run.yaml); "
                          "without an adapter, or a run that recorded none, the tokenizer's own chat template if it "
                          "has one, else 'default'."},
    )


@dataclass
class DataArguments(TemplateArguments):
    dataset: Optional[str] = field(
        default=None, metadata={"help": "Dataset name(s) from dataset_info.json, comma separated."}
    )
    dataset_dir: str = field(
        default="data", metadata={"help": "Folder holding dataset_info.json and the dataset files."}
    )
    cutoff_len: int = field(
        default=1024, metadata={"help": "Maximum tokens of a sample after tokenization (longer ones are cut)."}
    )
    max_samples: Optional[int] = field(
        default=None, metadata={"help": "Use at most this many records of each dataset (for quick tries)."}
    )
    val_size: float = field(
        default=0.0,
        metadata={"help": "Held-out share (0-1) or number (>= 1) of records for an eval loss curve."},
    )
    eval_dataset: Optional[str] = field(
        default=None,
        metadata={"help": "Dataset name(s) for evaluation, comma separated: the eval loss curve while training "
                          "(instead of --val_size), and the prompts --do_predict answers."},
    )
    train_on_prompt: bool = field(
        default=False, metadata={"help": "Also train on prompt tokens (by default only answers are trained)."}
    )
    overwrite_cache: bool = field(
        default=False, metadata={"help": "Tokenize again instead of reusing the cached tokenized dataset."}
    )
    preprocessing_num_workers: Optional[int] = field(
        default=None, metadata={"help": "Processes used for tokenization."}
    )

    def __post_init__(self) -> None:
        positive("cutoff_len", self.cutoff_len)
        positive("max_samples", self.max_samples)
        refuse_unless("val_size", self.val_size, lambda v: v >= 0, "must be 0 (none), a share below 1 or a record count")


@dataclass
class FinetuningArguments:
    stage: Literal[STAGES] = field(  # type: ignore[valid-type]
        default="sft",
        metadata={"help": "pt: pretraining on text; sft: supervised fine-tuning; rm: reward model; dpo: preference "
                          "optimisation on pairs (also orpo, simpo through pref_loss); kto: on answers tagged desirable or "
                          "undesirable; grpo: online RL from a reward model or rule rewards."},
    )
    finetuning_type: Literal["lora", "freeze", "full"] = field(
        default="lora",
        metadata={"help": "lora: small adapter; freeze: train only the last layers; full: train every weight."},
    )
    lora_target: str = field(
        default="all",
        metadata={"help": "Modules that get LoRA, comma separated (e.g. q_proj,v_proj), or 'all' linear layers."},
    )
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank (r)."})
    lora_alpha: Optional[float] = field(
        default=None, metadata={"help": "LoRA scaling alpha; empty = 2 x rank."}
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA path."})
    additional_target: Optional[str] = field(
        default=None,
        metadata={"help": "Modules trained in full and saved with the adapter, comma separated (e.g. lm_head)."},
    )
    freeze_trainable_layers: int = field(
        default=2, metadata={"help": "freeze: number of last decoder layers to train."}
    )
    pref_beta: float = field(default=0.1, metadata={
        "help": "dpo, kto: beta, how far the policy may move from the reference; orpo: weight of the odds-ratio term; "
                "simpo: reward scale (its paper uses 2-10)."})
    pref_loss: Literal[PREF_LOSSES] = field(default="sigmoid", metadata={  # type: ignore[valid-type]
        "help": "dpo: loss type. sigmoid (DPO), hinge, ipo use the reference model; orpo and simpo need none "
                "(length-normalised log-probabilities)."})
    pref_ftx: float = field(
        default=0.0, metadata={"help": "dpo (sigmoid, hinge, ipo, simpo): weight of an extra SFT loss on the chosen "
                                       "answers; orpo has its own SFT term."}
    )
    simpo_gamma: float = field(default=0.5, metadata={"help": "simpo: target reward margin gamma."})
    kto_chosen_weight: float = field(default=1.0, metadata={"help": "kto: weight of the loss on desirable answers."})
    kto_rejected_weight: float = field(default=1.0, metadata={"help": "kto: weight of the loss on undesirable answers."})
    reward_model: Optional[str] = field(default=None, metadata={
        "help": "grpo: a reward model run folder of this tool (--stage rm: its adapter and score head, or a freeze/full "
                "run), e.g. saves/demo-rm-lora; its rewards add to --reward_funcs."})
    reward_funcs: Optional[str] = field(default=None, metadata={
        "help": "grpo: rule rewards, comma separated: exact_match (1 when the answer equals the dataset's reference "
                "answer, else 0), length (0 up to the reference answer's length, falling to -1 at max_new_tokens)."})
    num_generations: int = field(default=4, metadata={
        "help": "grpo: answers sampled per prompt; each is scored against its group's mean. per_device_train_batch_size "
                "x gradient_accumulation_steps must be a multiple of it. Sampling uses max_new_tokens, temperature, "
                "top_p and top_k."})
    grpo_beta: float = field(default=0.04, metadata={
        "help": "grpo: weight of the KL penalty towards the policy the run started from (the base, or the adapter it "
                "continues); 0 turns it off and KL is not logged."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace a finished run already in output_dir (its log, checkpoints and adapter)."},
    )
    plot_loss: bool = field(
        default=False, metadata={"help": "Write training_loss.html (loss curves) into the run folder at the end."}
    )
    early_stopping_patience: Optional[int] = field(
        default=None,
        metadata={"help": "Stop training when the eval loss has not improved for this many evaluations in a row "
                          "(needs an eval set; with --load_best_model_at_end the best checkpoint is what is saved)."},
    )
    predict_with_generate: bool = field(
        default=False,
        metadata={"help": "--do_predict: generate an answer to each --eval_dataset prompt and score it against the "
                          "reference (BLEU-4, ROUGE, exact match), with the adapter on and off."},
    )

    def __post_init__(self) -> None:
        positive("lora_rank", self.lora_rank)
        refuse_unless("lora_dropout", self.lora_dropout, lambda v: 0 <= v < 1, "must be in [0, 1)")
        positive("freeze_trainable_layers", self.freeze_trainable_layers)
        positive("pref_beta", self.pref_beta)
        positive("early_stopping_patience", self.early_stopping_patience)
        refuse_unless("pref_ftx", self.pref_ftx, lambda v: v >= 0, "must be 0 or more")
        refuse_unless("num_generations", self.num_generations, lambda v: v >= 2,
                      "must be 2 or more (grpo scores each answer against the others of its group)")
        refuse_unless("grpo_beta", self.grpo_beta, lambda v: v >= 0, "must be 0 or more")
        for name in ("kto_chosen_weight", "kto_rejected_weight"):
            positive(name, getattr(self, name))
        unknown = [n for n in split_names(self.reward_funcs) if n not in REWARD_FUNCS]
        if unknown:
            raise UserError(f"--reward_funcs {','.join(unknown)} is unknown; use any of {', '.join(REWARD_FUNCS)}")


def split_names(value: Optional[str]) -> list[str]:
    """A comma-separated option as its names."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@dataclass
class GeneratingArguments:
    do_sample: bool = field(default=True, metadata={"help": "Sample (on) or greedy decoding (off)."})
    temperature: float = field(default=0.95, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.7, metadata={"help": "Nucleus sampling: keep the smallest set of tokens with this much probability."})
    top_k: int = field(default=50, metadata={"help": "Sample among the k most likely tokens."})
    max_new_tokens: int = field(default=512, metadata={"help": "Most tokens to generate for one answer."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "> 1 discourages repeating tokens."})

    def __post_init__(self) -> None:
        positive("temperature", self.temperature)
        refuse_unless("top_p", self.top_p, lambda v: 0 < v <= 1, "must be in (0, 1]")
        positive("max_new_tokens", self.max_new_tokens)


OUR_DATACLASSES = (ModelArguments, DataArguments, FinetuningArguments, GeneratingArguments)
# What a training run records in full in run.yaml (GeneratingArguments only when set: they do not
# change the training).
RUN_DATACLASSES = (ModelArguments, DataArguments, FinetuningArguments)

THEIRS = object()  # a TrainingOption default: keep transformers' own


@dataclass(frozen=True)
class TrainingOption:
    """A TrainingArguments field as this tool treats it: our default where transformers' would
    surprise a user of this tool, and the check of its value (transformers' own come later, and
    after the model is loaded for some)."""

    default: Any = THEIRS
    check: Optional[Callable[[str, Any], None]] = None


# The TrainingArguments fields a run records in run.yaml (with the options of RUN_DATACLASSES), in
# that order, and the only ones this tool sets a default for or checks. Any other field is
# accepted too, and recorded when given.
TRAINING_OPTIONS: dict[str, TrainingOption] = {
    "do_train": TrainingOption(),
    "output_dir": TrainingOption("output"),
    "learning_rate": TrainingOption(5e-5, positive),
    "num_train_epochs": TrainingOption(3.0, positive),
    "max_steps": TrainingOption(),
    "per_device_train_batch_size": TrainingOption(4, positive),
    "gradient_accumulation_steps": TrainingOption(check=positive),
    "lr_scheduler_type": TrainingOption("cosine"),
    "warmup_steps": TrainingOption(),
    "weight_decay": TrainingOption(),
    "max_grad_norm": TrainingOption(),
    "optim": TrainingOption("adamw_torch"),
    # Random batches pad 40 % of the positions of the benchmark set; grouped ones far fewer.
    "train_sampling_strategy": TrainingOption("group_by_length"),
    "seed": TrainingOption(),
    "fp16": TrainingOption(),
    # Left unset, on where the hardware multiplies bf16 (_default_precision below).
    "bf16": TrainingOption(None),
    # Left unset, on where a batch's activations would be large (_default_checkpointing below).
    "activation_checkpointing": TrainingOption(),
    # transformers logs every 500 steps: a short run would show no curve at all.
    "logging_steps": TrainingOption(10, positive),
    "save_steps": TrainingOption(500, positive),
    "save_total_limit": TrainingOption(),
    "eval_strategy": TrainingOption(),
    "eval_steps": TrainingOption(),
    "load_best_model_at_end": TrainingOption(),
    "per_device_eval_batch_size": TrainingOption(check=positive),
    # transformers reports to every tracker it finds installed.
    "report_to": TrainingOption("none"),
    "ddp_find_unused_parameters": TrainingOption(False),
    # Our collators drop the helper columns themselves; the Trainer must keep `length` for
    # the length-grouped sampler instead of recomputing it by reading every sample.
    "remove_unused_columns": TrainingOption(False),
    # The run prints one line per logging step; tqdm's carriage returns garble console.log.
    "disable_tqdm": TrainingOption(True),
}
# Our defaults, applied to the CLI parser and shown by the UI alike.
TRAINING_DEFAULTS: dict[str, Any] = {name: o.default for name, o in TRAINING_OPTIONS.items() if o.default is not THEIRS}
# Given options that run.yaml leaves out: how a run was launched, not what it is. A resume is
# recorded in launch.json; `launch.py train run.yaml` must not resume another run's checkpoint.
NOT_RECORDED = ("resume_from_checkpoint",)


# ---------------------------------------------------------------------------- schema (light)


def field_choices(f: dataclasses.Field) -> Optional[tuple]:
    """The allowed values of a field whose type is a Literal (or Optional Literal)."""
    tp = f.type if not isinstance(f.type, str) else typing.get_type_hints(_owner(f))[f.name]
    for arg in (tp, *typing.get_args(tp)):
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return None


def _owner(f: dataclasses.Field) -> type:
    for cls in OUR_DATACLASSES:
        if f.name in {x.name for x in dataclasses.fields(cls)}:
            return cls
    raise KeyError(f.name)


def our_fields() -> dict[str, dataclasses.Field]:
    """Every option of ours by name."""
    return {f.name: f for cls in OUR_DATACLASSES for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class TrainingField:
    """One TrainingArguments field as the UI needs it: default (ours first), help, type and choices."""

    name: str
    default: Any
    help: str
    annotation: str = ""  # the type as written in transformers' source, e.g. "bool", "float | None"
    choices: Optional[tuple] = None  # the values of an enum-typed field (SchedulerType, ...)


def _transformers_source(file_name: str) -> Optional[ast.Module]:
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], file_name)
    with open(path, encoding="utf-8") as fh:
        return ast.parse(fh.read())


@lru_cache(maxsize=1)
def _enum_classes() -> dict[str, tuple[str, ...]]:
    """String enums of transformers' training code (SchedulerType, IntervalStrategy, ...) by name."""
    out: dict[str, tuple[str, ...]] = {}
    for file_name in ("training_args.py", "trainer_utils.py"):
        tree = _transformers_source(file_name)
        for node in tree.body if tree else []:
            if isinstance(node, ast.ClassDef):
                values = tuple(n.value.value for n in node.body if isinstance(n, ast.Assign)
                               and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str))
                if values:
                    out[node.name] = values
    return out


def _annotation_choices(annotation: str) -> Optional[tuple]:
    enums = _enum_classes()
    for word in annotation.replace("|", " ").replace("[", " ").replace("]", " ").replace(",", " ").split():
        name = word.split(".")[-1]
        if name in enums:
            return enums[name]
    return None


@lru_cache(maxsize=1)
def _training_arguments_source() -> dict[str, TrainingField]:
    """Read TrainingArguments' fields from transformers' source without importing it.

    Importing transformers.training_args takes seconds (it pulls torch, accelerate and peft);
    the web UI must start faster than that and still show transformers' own help and defaults.
    """
    tree = _transformers_source("training_args.py")
    if tree is None:
        return {}
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TrainingArguments")
    out: dict[str, TrainingField] = {}
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        default, help_text, listed = None, "", None
        call = node.value
        if isinstance(call, ast.Call):
            for kw in call.keywords:
                if kw.arg == "default":
                    default = _literal(kw.value)
                elif kw.arg == "metadata" and isinstance(kw.value, ast.Dict):
                    for k, v in zip(kw.value.keys, kw.value.values):
                        if isinstance(k, ast.Constant) and k.value == "help":
                            help_text = _literal(v) or ""
                        elif isinstance(k, ast.Constant) and k.value == "choices":
                            listed = _literal(v)  # a literal list (train_sampling_strategy); else None
        elif call is not None:
            default = _literal(call)
        annotation = ast.unparse(node.annotation)
        name = node.target.id
        choices = tuple(listed) if isinstance(listed, list) and listed else _annotation_choices(annotation)
        out[name] = TrainingField(name, default, " ".join(str(help_text).split()), annotation, choices)
    return out


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def training_field(name: str) -> TrainingField:
    """A TrainingArguments field with our default applied (see TRAINING_DEFAULTS)."""
    base = _training_arguments_source().get(name)
    if base is None:
        raise KeyError(f"TrainingArguments has no field {name!r}")
    return dataclasses.replace(base, default=TRAINING_DEFAULTS.get(name, base.default))


@dataclass(frozen=True)
class OptionSpec:
    """One option as a form or a config file needs it: its kind, default, help and choices."""

    name: str
    kind: str  # bool | int | float | text | choice
    default: Any
    help: str
    choices: Optional[tuple] = None
    optional: bool = False
    source: str = "ours"  # ours | training


@lru_cache(maxsize=None)
def option_spec(name: str) -> OptionSpec:
    """The spec of one option, ours first, then TrainingArguments' (KeyError for an unknown name)."""
    ours = our_fields()
    if name in ours:
        f = ours[name]
        kind, optional = _kind_of(typing.get_type_hints(_owner(f))[name])
        default = f.default if f.default is not dataclasses.MISSING else None
        return OptionSpec(name, kind, default, f.metadata.get("help", ""), field_choices(f), optional, "ours")
    tf = training_field(name)
    kind = "choice" if tf.choices else _kind_from_annotation(tf.annotation, tf.default, tf.help)
    # A bool whose default is unset (bf16: the machine decides) takes three values, as an Optional one does.
    optional = "None" in tf.annotation or (kind == "bool" and tf.default is None)
    return OptionSpec(name, kind, tf.default, tf.help, tf.choices, optional, "training")


def option_stages(name: str) -> Optional[tuple[str, ...]]:
    """The stages an option does something for (STAGE_OPTIONS); None: every stage."""
    return STAGE_OPTIONS.get(name)


def known_option(name: str) -> bool:
    try:
        option_spec(name)
        return True
    except KeyError:
        return False


def all_option_names() -> set[str]:
    """Every option a run takes: ours and transformers' TrainingArguments (read from its source)."""
    return set(our_fields()) | set(_training_arguments_source())


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


def _kind_from_annotation(annotation: str, default: Any, help_text: str) -> str:
    if "bool" in annotation:
        return "bool"
    if "float" in annotation and (isinstance(default, int) or "integer" in help_text.lower()):
        # logging_steps, save_steps, eval_steps, warmup_steps: a count of steps, or a ratio below 1.
        return "int"
    if "float" in annotation:
        return "float"
    if "int" in annotation:
        return "int"
    return "text"


# ---------------------------------------------------------------------------- what a run records


def typed_value(name: str, value: Any) -> Any:
    """A value as the option's type has it, for run.yaml: 5 steps (not 5.0), 6.0 epochs (not 6).

    A step count that is a ratio (0.1) stays a float; an enum member becomes its value.
    """
    if isinstance(value, Enum):
        value = value.value
    if value is None or isinstance(value, bool):
        return value
    kind = option_spec(name).kind
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "float" and isinstance(value, int):
        return float(value)
    return value


def recorded_options() -> list[str]:
    """The options every run.yaml holds, whether given or not, in the order it lists them."""
    return [f.name for cls in RUN_DATACLASSES for f in dataclasses.fields(cls)] + list(TRAINING_OPTIONS)


def resolved_config(values: Mapping[str, Any], given: Iterable[str]) -> dict[str, Any]:
    """What run.yaml records: every recorded option and every other option given, typed.

    `values` holds the options' values (a missing one takes its default from the schema); `given`
    names the options that were set (in the config file, on the command line or in the form).
    The trainer and the web UI both write run.yaml through this, so a run launched from the UI
    records the same file the trainer would. The machine's fallbacks (fp16 without a GPU) are
    not applied here: run.yaml records what was asked.
    """
    names = recorded_options()
    names += [n for n in dict.fromkeys(given) if n not in names and n not in NOT_RECORDED]
    return {name: typed_value(name, values[name] if name in values else option_spec(name).default) for name in names}


def check_options(values: Mapping[str, Any]) -> None:
    """Refuse impossible values by flag name, from a plain dict: each dataclass's own checks
    (__post_init__) and TRAINING_OPTIONS' checks. Light, so the web UI checks its form with it."""
    for cls in OUR_DATACLASSES:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        cls(**{k: v for k, v in values.items() if k in names})
    check_training_options(values)


def check_training_options(values: Mapping[str, Any]) -> None:
    for name, option in TRAINING_OPTIONS.items():
        if option.check is not None:
            option.check(name, values.get(name))
    from core.evaluate import check_evaluation_options  # light: eval set, early stopping, predict, trackers

    check_evaluation_options(values)


# ---------------------------------------------------------------------------- config files


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML or JSON run config into a flat dict, refusing anything else in one line."""
    import yaml

    if not os.path.isfile(path):
        raise UserError(f"config file {path} does not exist; pass a .yaml, .yml or .json file")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh) if path.endswith(".json") else yaml.safe_load(fh)
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0]
        raise UserError(f"config file {path} is not valid YAML/JSON ({reason}); fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold key: value pairs, not a {type(data).__name__}")
    return data


def config_to_argv(config: dict[str, Any], parser: argparse.ArgumentParser, source: str) -> list[str]:
    """Config keys as `--key value` flags, so that argv given after them overrides them.

    The one place a config becomes flags: argparse then types and checks file values and
    command-line values alike. An unknown key is refused by name, not dropped.
    """
    actions = _actions_by_dest(parser)
    argv: list[str] = []
    for key, value in config.items():
        if key not in actions:
            raise UserError(f"unknown key '{key}' in {source}{_suggest(key, set(actions))}")
        if value is None:
            continue
        if isinstance(value, bool):
            argv += [f"--{key}", str(value).lower()]
        elif isinstance(value, (list, tuple)):
            several = actions[key].nargs in ("+", "*")  # report_to: each value its own item
            argv += [f"--{key}", *map(str, value)] if several else [f"--{key}", ",".join(map(str, value))]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def _actions_by_dest(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    actions: dict[str, argparse.Action] = {}
    for action in parser._actions:  # a bool's `--no_x` complement comes after `--x`: keep `--x`
        if action.dest != "help" and action.option_strings:
            actions.setdefault(action.dest, action)
    return actions


def _suggest(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else "; see `python launch.py train --help`"


# ---------------------------------------------------------------------------- parsing


def _split_argv(argv: list[str]) -> tuple[Optional[str], list[str]]:
    """A leading .yaml/.yml/.json path is the config file; the rest are flags."""
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml", ".json")):
        return argv[0], argv[1:]
    return None, argv


def raw_value(argv: list[str], name: str) -> Any:
    """The value of --name as written in argv or the config file, read before parsing.

    For decisions that must precede importing transformers (see core.train.run.hide_unused_packages);
    a malformed config file reads as absent here and is refused by parse_train_args right after.
    """
    config_path, flags = _split_argv(list(argv))
    value = None
    if config_path:
        try:
            value = load_config_file(config_path).get(name)
        except UserError:
            value = None
    for i, token in enumerate(flags):
        if token == f"--{name}" and i + 1 < len(flags):
            value = flags[i + 1]
        elif token.startswith(f"--{name}="):
            value = token.split("=", 1)[1]
    return value


def _one_line_parser(dataclass_types: tuple, **kwargs: Any):
    """HfArgumentParser over the dataclasses, whose errors are one UserError line naming the flag
    (argparse would print its usage and exit 2)."""
    from transformers import HfArgumentParser

    class _Parser(HfArgumentParser):
        def error(self, message: str):  # type: ignore[override]
            raise UserError(_argparse_message(message))

    return _Parser(dataclass_types, allow_abbrev=False, **kwargs)


def _make_parser():
    from transformers import TrainingArguments

    parser = _one_line_parser((*OUR_DATACLASSES, TrainingArguments))
    parser.set_defaults(**TRAINING_DEFAULTS)
    return parser


def _argparse_message(message: str) -> str:
    # "argument --lr_scheduler_type: invalid choice: 'x' (choose from ...)" is already one line
    # naming the flag; make the other forms read the same way.
    message = message.replace("argument ", "", 1)
    if message.startswith("the following arguments are required"):
        return message + "; add them to the command or the config file"
    return message


def _parse_flags(parser: argparse.ArgumentParser, flags: list[str]) -> dict[str, Any]:
    """Every option's value; an unknown flag or a stray value is refused by name."""
    namespace, rest = parser.parse_known_args(flags)
    known = set(_actions_by_dest(parser))
    for token in rest:
        if token.startswith("-"):
            name = token.lstrip("-").split("=")[0].replace("-", "_")
            raise UserError(f"unknown flag '{token.split('=')[0]}'{_suggest(name, known)}")
        raise UserError(f"unexpected value '{token}': every value must follow a --flag")
    return vars(namespace)


def _given(config: Mapping[str, Any], flags: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """The options set in the config file or named on the command line (by their field name)."""
    names = list(config)
    for token in flags:
        action = parser._option_string_actions.get(token.split("=", 1)[0])
        if action is not None and action.dest != "help":
            names.append(action.dest)
    return names


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    """One dataclass from the parsed values; our own refuse bad values in their __post_init__."""
    keys = {f.name for f in dataclasses.fields(cls) if f.init}
    try:
        return cls(**{k: v for k, v in values.items() if k in keys})
    except (ValueError, TypeError) as err:  # transformers' own checks of TrainingArguments
        raise UserError(f"invalid training settings: {str(err).splitlines()[0]}") from None


@dataclass
class TrainArgs:
    """Everything a run needs, parsed and checked; `config` is what run.yaml records."""

    model: ModelArguments
    data: DataArguments
    finetuning: FinetuningArguments
    generating: GeneratingArguments
    training: Any  # transformers.TrainingArguments
    config: dict[str, Any]


def parse_train_args(argv: list[str]) -> TrainArgs:
    """Parse a config file and/or flags into the five argument objects.

    Refuses unknown flags and keys by name and bad values naming the flag and what is allowed,
    before any model or dataset is loaded.
    """
    config_path, flags = _split_argv(list(argv))
    parser = _make_parser()
    config = load_config_file(config_path) if config_path else {}
    given_argv = config_to_argv(config, parser, config_path or "") + flags
    _refuse_retired_stage(given_argv)
    values = _parse_flags(parser, given_argv)
    _honour_old_checkpointing_name(values, _given(config, flags, parser))
    # run.yaml records what was asked (fp16 stays on), not this machine's fallbacks below.
    recorded = resolved_config(values, _given(config, flags, parser))
    _default_precision(values)
    _default_checkpointing(values)
    _check_hardware(values)
    check_training_options(values)
    objs = [_build(cls, values) for cls in parser.dataclass_types]
    _check_combinations(*objs)
    return TrainArgs(*objs, config=recorded)


def _honour_old_checkpointing_name(values: dict[str, Any], given: list[str]) -> None:
    """`gradient_checkpointing` alone decides, as transformers reads its deprecated alias when the
    new name is unset: carried over to the new name here, so that _default_checkpointing leaves
    it alone and transformers warns of the alias at no run's start."""
    if "gradient_checkpointing" in given and "activation_checkpointing" not in given:
        values["activation_checkpointing"] = values.get("gradient_checkpointing")


def _default_precision(values: dict[str, Any]) -> None:
    """bf16 left unset: on where this machine multiplies bf16 in hardware (hardware_bf16), unless
    --fp16 is asked. run.yaml keeps it unset, as asked; the run's console says what was decided.

    Measured on SmolLM2-135M (LoRA, 8 x 512 tokens, 2 AVX512-BF16 cores): ~270 tokens/s against
    ~148 in fp32, the same losses to the second decimal (README, Performance).
    """
    if values.get("bf16") is None:
        values["bf16"] = not values.get("fp16") and hardware_bf16()


def _default_checkpointing(values: dict[str, Any]) -> None:
    """Activation checkpointing left unset: on where one batch's activations would be large
    (core.memory.checkpointing_by_default). run.yaml keeps it unset, as asked (a resume decides
    the same); the run's console says what was decided.

    Each decoder layer then keeps only its input and recomputes the rest in the backward pass:
    SmolLM2-135M at 8 x 512 tokens keeps 0.4 GB instead of 5.2 GB, for ~12 % of its speed.
    """
    if values.get("activation_checkpointing") is not None:  # set, under either name (see above)
        return
    from core.memory import RunPlan, checkpointing_by_default, model_shape

    try:
        shape = model_shape(str(values.get("model_name_or_path") or ""))
    except (UserError, OSError, ValueError, KeyError, TypeError, AttributeError):  # no shape to judge by: off, as in transformers
        values["activation_checkpointing"] = False
        return
    plan = RunPlan.from_config(values, device="cuda" if _gpu_available() else "cpu")
    values["activation_checkpointing"] = checkpointing_by_default(shape, plan)


def parse_own_args(argv: list[str]) -> tuple:
    """This project's own dataclasses (OUR_DATACLASSES) from a train command line, without
    transformers' TrainingArguments, so without torch: a bad value of one of our options, or a
    flag or key that no option has, is refused in one line in a second, not after the imports.
    transformers' own options are left to parse_train_args, which checks everything again."""
    parser = _one_line_parser(OUR_DATACLASSES)
    config_path, flags = _split_argv(list(argv))
    config = load_config_file(config_path) if config_path else {}
    for key in config:
        if not known_option(key):
            raise UserError(f"unknown key '{key}' in {config_path}{_suggest(key, set(all_option_names()))}")
    ours = set(_actions_by_dest(parser))
    flags = config_to_argv({k: v for k, v in config.items() if k in ours}, parser, config_path or "") + flags
    _refuse_retired_stage(flags)
    namespace, rest = parser.parse_known_args(flags)
    for token in rest:
        name = token.lstrip("-").split("=")[0].replace("-", "_")
        if token.startswith("--") and not known_option(name):
            raise UserError(f"unknown flag '{token.split('=')[0]}'{_suggest(name, set(all_option_names()))}")
    values = vars(namespace)
    return tuple(_build(cls, values) for cls in OUR_DATACLASSES)


def parse_data_args(argv: list[str]) -> tuple[ModelArguments, DataArguments, FinetuningArguments]:
    """The model, data and stage arguments of a train command line, for the tokenizing helper
    (core/data/prefetch.py). No TrainingArguments, so no torch; every other flag is skipped here
    and checked by parse_train_args."""
    from transformers import HfArgumentParser

    classes = (ModelArguments, DataArguments, FinetuningArguments)
    parser = HfArgumentParser(classes)
    config_path, flags = _split_argv(list(argv))
    if config_path:
        ours = {f.name for cls in classes for f in dataclasses.fields(cls)}
        config = {k: v for k, v in load_config_file(config_path).items() if k in ours}
        flags = config_to_argv(config, parser, config_path) + flags
    parsed = parser.parse_args_into_dataclasses(flags, return_remaining_strings=True, look_for_args_file=False)
    return parsed[0], parsed[1], parsed[2]


def parse_cli(argv: list[str], dataclass_types: tuple, prog: str, description: str) -> tuple:
    """A small command's flags (chat, score, export) into its dataclasses: the same fields, help
    and checks as a training run's. A bad flag or value is one UserError line; -h prints the help."""
    parser = _one_line_parser(dataclass_types, prog=prog, description=description)
    values = _parse_flags(parser, list(argv))
    return tuple(_build(cls, values) for cls in dataclass_types)


def _gpu_available() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


@lru_cache(maxsize=None)
def hardware_bf16() -> bool:
    """Whether this machine multiplies bf16 in hardware: a CUDA GPU that supports it, else a CPU
    with AVX512-BF16 or AMX instructions (there bf16 matrix products run 2-3x faster than fp32;
    without them torch emulates bf16, slower than fp32)."""
    import torch

    if _gpu_available():
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return native_cpu_bf16()


def native_cpu_bf16() -> bool:
    import torch

    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def _check_hardware(values: dict[str, Any]) -> None:
    """Fall back, in one line each, where this machine cannot honour a flag."""
    if _gpu_available():
        return
    # accelerate sets up several CPU ranks (gloo) only when told the run is on the CPU; without
    # this each rank of `accelerate launch --num_processes 2` would train alone.
    values["use_cpu"] = True
    if values.get("fp16"):
        print("[tuneforge] --fp16 needs a GPU and none was found: training in fp32 instead.", file=sys.stderr)
        values["fp16"] = False
    if values.get("bf16") and not native_cpu_bf16():
        print("[tuneforge] --bf16 needs a GPU or a CPU with bf16 instructions (AVX512-BF16, AMX) and this machine "
              "has neither: training in fp32 instead.", file=sys.stderr)
        values["bf16"] = False


def _refuse_retired_stage(argv: list[str]) -> None:
    """`--stage ppo` (a LLaMA-Factory config, say) names the stage to use instead, not argparse's choice list."""
    for i, token in enumerate(argv):
        value = argv[i + 1] if token == "--stage" and i + 1 < len(argv) else token.partition("=")[2] if token.startswith("--stage=") else None
        if value in RETIRED_STAGES:
            raise UserError(f"--stage {value}: {RETIRED_STAGES[value]}")


def _check_stage_options(finetuning_args, generating_args, training_args) -> None:
    """What a stage needs of the other options, refused by flag before anything loads."""
    stage = finetuning_args.stage
    batch = training_args.per_device_train_batch_size
    if stage == "dpo" and finetuning_args.pref_loss == "orpo" and finetuning_args.pref_ftx > 0:
        raise UserError("--pref_ftx does not apply to --pref_loss orpo, whose loss already holds an SFT term; leave it at 0")
    if stage == "kto" and batch < 2:
        raise UserError(f"--stage kto needs --per_device_train_batch_size 2 or more (got {batch}): its KL term pairs each "
                        "prompt with another answer of the same batch")
    if stage != "grpo":
        return
    if not finetuning_args.reward_model and not finetuning_args.reward_funcs:
        raise UserError("--stage grpo needs a reward: --reward_model saves/RM-RUN (a --stage rm run) and/or "
                        f"--reward_funcs {','.join(REWARD_FUNCS)}")
    if finetuning_args.reward_model:
        from core.train.rewards import check_reward_model  # light: reads its run.yaml

        check_reward_model(finetuning_args.reward_model)
    completions = batch * training_args.gradient_accumulation_steps
    if completions % finetuning_args.num_generations:
        raise UserError(f"--per_device_train_batch_size {batch} x --gradient_accumulation_steps "
                        f"{training_args.gradient_accumulation_steps} = {completions} answers is not a multiple of "
                        f"--num_generations {finetuning_args.num_generations}; make it one (e.g. batch "
                        f"{finetuning_args.num_generations * max(1, batch // finetuning_args.num_generations)})")
    if not generating_args.do_sample:
        raise UserError("--stage grpo samples several answers per prompt: leave --do_sample on")


def _check_combinations(model_args, data_args, finetuning_args, generating_args, training_args) -> None:
    if model_args.model_name_or_path is None:
        raise UserError("--model_name_or_path is required: the folder of the base model (e.g. data/models/demo; build it with `python launch.py demo-model`)")
    if training_args.do_train and not data_args.dataset:
        raise UserError("--do_train needs --dataset: one or more names from dataset_info.json (see `python launch.py data list`)")
    if model_args.quantization_bit is not None and finetuning_args.finetuning_type != "lora":
        raise UserError(f"--quantization_bit {model_args.quantization_bit} works only with --finetuning_type lora (quantized weights cannot be trained directly)")
    if model_args.adapter_name_or_path and finetuning_args.finetuning_type != "lora":
        raise UserError("--adapter_name_or_path continues a LoRA adapter; use it with --finetuning_type lora")
    if model_args.quantization_bit is not None and importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("--quantization_bit needs the bitsandbytes package: pip install bitsandbytes")
    _check_stage_options(finetuning_args, generating_args, training_args)


def cli_help() -> str:
    """`launch.py train --help`: every option, ours and transformers' TrainingArguments, with its
    help, choices and default (TrainingArguments read from transformers' source, as the UI does)."""
    lines = ["usage: launch.py train [CONFIG.yaml] [--flag value ...]", ""]

    def line(name: str, help_text: str, choices: Optional[Iterable], default: Any) -> str:
        extra = f" (one of: {', '.join(map(str, choices))})" if choices else ""
        return f"  --{name:<28} {help_text}{extra} [default: {default}]"

    for cls in OUR_DATACLASSES:
        lines.append(f"{cls.__name__}:")
        lines += [line(f.name, f.metadata.get("help", ""), field_choices(f), f.default) for f in dataclasses.fields(cls)]
    fields = _training_arguments_source()
    lines += ["", "TrainingArguments (transformers), the options this tool sets a default for or checks:"]
    lines += [line(name, training_field(name).help, training_field(name).choices, training_field(name).default)
              for name in TRAINING_OPTIONS if name in fields]
    lines += ["", "TrainingArguments (transformers), every other flag, with transformers' defaults:"]
    lines += [line(name, tf.help, tf.choices, tf.default) for name, tf in fields.items() if name not in TRAINING_OPTIONS]
    return "\n".join(lines)
