"""The argument dataclasses: the one source of every option, its default, help and choices.

The trainer parses them together with transformers' TrainingArguments through HfArgumentParser,
from a YAML/JSON file, from argv, or both (file first, argv overrides). The web UI builds its
form from the same fields. Reading the schema stays light: transformers is imported only inside
`parse_train_args`, and the few TrainingArguments fields the UI shows are read from
transformers' own source with `ast` (see `training_field`), so they have one source too.
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
from functools import lru_cache
from typing import Any, Literal, Optional

from core.errors import UserError

STAGES = ("pt", "sft", "rm", "dpo")
TEMPLATE_NAMES = ("auto", "default", "alpaca", "vicuna", "llama2", "chatml", "llama3", "qwen", "qwen3", "mistral", "gemma", "phi", "phi4")


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Local folder of the base model (a Hugging Face model directory)."},
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
class DataArguments:
    dataset: Optional[str] = field(
        default=None, metadata={"help": "Dataset name(s) from dataset_info.json, comma separated."}
    )
    dataset_dir: str = field(
        default="data", metadata={"help": "Folder holding dataset_info.json and the dataset files."}
    )
    template: Optional[Literal[TEMPLATE_NAMES]] = field(  # type: ignore[valid-type]
        default=None,
        metadata={"help": "Prompt template. Empty = the tokenizer's own chat template if it has one, else 'default'."},
    )
    system: Optional[str] = field(
        default=None, metadata={"help": "System prompt; empty = the template's default."}
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
    train_on_prompt: bool = field(
        default=False, metadata={"help": "Also train on prompt tokens (by default only answers are trained)."}
    )
    overwrite_cache: bool = field(
        default=False, metadata={"help": "Tokenize again instead of reusing the cached tokenized dataset."}
    )
    preprocessing_num_workers: Optional[int] = field(
        default=None, metadata={"help": "Processes used for tokenization."}
    )


@dataclass
class FinetuningArguments:
    stage: Literal[STAGES] = field(  # type: ignore[valid-type]
        default="sft",
        metadata={"help": "pt: pretraining on text; sft: supervised fine-tuning; rm: reward model; dpo: preference optimisation."},
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
    pref_beta: float = field(default=0.1, metadata={"help": "dpo: beta, how far the policy may move from the reference."})
    pref_loss: Literal["sigmoid", "hinge", "ipo"] = field(default="sigmoid", metadata={"help": "dpo: loss type."})
    pref_ftx: float = field(
        default=0.0, metadata={"help": "dpo: weight of an extra SFT loss on the chosen answers."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace a finished run already in output_dir (its log, checkpoints and adapter)."},
    )
    plot_loss: bool = field(
        default=False, metadata={"help": "Write training_loss.html (loss curves) into the run folder at the end."}
    )


@dataclass
class GeneratingArguments:
    do_sample: bool = field(default=True, metadata={"help": "Sample (on) or greedy decoding (off)."})
    temperature: float = field(default=0.95, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.7, metadata={"help": "Nucleus sampling: keep the smallest set of tokens with this much probability."})
    top_k: int = field(default=50, metadata={"help": "Sample among the k most likely tokens."})
    max_new_tokens: int = field(default=512, metadata={"help": "Most tokens to generate for one answer."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "> 1 discourages repeating tokens."})


OUR_DATACLASSES = (ModelArguments, DataArguments, FinetuningArguments, GeneratingArguments)

# Our defaults for TrainingArguments fields, where transformers' own would surprise a user of
# this tool (logging every 500 steps, reporting to every installed tracker, random batches that
# pad 40 % of the positions). Applied to the CLI parser and shown by the UI alike.
TRAINING_DEFAULTS: dict[str, Any] = {
    "output_dir": "output",
    "logging_steps": 10,
    "save_steps": 500,
    "report_to": "none",
    "learning_rate": 5e-5,
    "num_train_epochs": 3.0,
    "per_device_train_batch_size": 4,
    "lr_scheduler_type": "cosine",
    "train_sampling_strategy": "group_by_length",
    "ddp_find_unused_parameters": False,
    "optim": "adamw_torch",
    # Our collators drop the helper columns themselves; the Trainer must keep `length` for
    # the length-grouped sampler instead of recomputing it by reading every sample.
    "remove_unused_columns": False,
    # The run prints one line per logging step; tqdm's carriage returns garble console.log.
    "disable_tqdm": True,
}

# TrainingArguments fields that must be positive, checked before anything loads.
POSITIVE_FIELDS = (
    "learning_rate", "num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "logging_steps", "save_steps", "cutoff_len", "lora_rank",
    "freeze_trainable_layers", "max_new_tokens", "temperature", "pref_beta",
)


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
        default, help_text = None, ""
        call = node.value
        if isinstance(call, ast.Call):
            for kw in call.keywords:
                if kw.arg == "default":
                    default = _literal(kw.value)
                elif kw.arg == "metadata" and isinstance(kw.value, ast.Dict):
                    for k, v in zip(kw.value.keys, kw.value.values):
                        if isinstance(k, ast.Constant) and k.value == "help":
                            help_text = _literal(v) or ""
        elif call is not None:
            default = _literal(call)
        annotation = ast.unparse(node.annotation)
        name = node.target.id
        out[name] = TrainingField(name, default, " ".join(str(help_text).split()), annotation, _annotation_choices(annotation))
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


def config_to_argv(config: dict[str, Any], known: set[str], source: str) -> list[str]:
    """Turn config keys into `--key value` so argv given later overrides them."""
    argv: list[str] = []
    for key, value in config.items():
        if key not in known:
            raise UserError(f"unknown key '{key}' in {source}{_suggest(key, known)}")
        if value is None:
            continue
        if isinstance(value, bool):
            argv += [f"--{key}", str(value).lower()]
        elif isinstance(value, (list, tuple)):
            argv += [f"--{key}", ",".join(str(v) for v in value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


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


def _make_parser():
    from transformers import HfArgumentParser, TrainingArguments

    class _Parser(HfArgumentParser):
        # argparse prints usage and exits 2 on a bad value; we want one line naming the flag.
        def error(self, message: str):  # type: ignore[override]
            raise UserError(_argparse_message(message))

    parser = _Parser((*OUR_DATACLASSES, TrainingArguments), allow_abbrev=False)
    parser.set_defaults(**TRAINING_DEFAULTS)
    return parser


def _argparse_message(message: str) -> str:
    # "argument --lr_scheduler_type: invalid choice: 'x' (choose from ...)" is already one line
    # naming the flag; make the other forms read the same way.
    message = message.replace("argument ", "", 1)
    if message.startswith("the following arguments are required"):
        return message + "; add them to the command or the config file"
    return message


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
    known = {a.dest for a in parser._actions if a.dest != "help"}
    if config_path:
        flags = config_to_argv(load_config_file(config_path), known, config_path) + flags
    namespace, rest = parser.parse_known_args(flags)
    for token in rest:
        if token.startswith("-"):
            name = token.lstrip("-").split("=")[0].replace("-", "_")
            raise UserError(f"unknown flag '{token.split('=')[0]}'{_suggest(name, known)}")
        raise UserError(f"unexpected value '{token}': every value must follow a --flag")
    values = vars(namespace)
    # run.yaml records what was asked (fp16 stays on), not this machine's fallbacks.
    config = {k: v for k, v in values.items() if v != parser.get_default(k) or k in ("stage", "output_dir")}
    _check_hardware(values)
    check_values(values)
    objs = []
    for cls in parser.dataclass_types:
        keys = {f.name for f in dataclasses.fields(cls) if f.init}
        try:
            objs.append(cls(**{k: v for k, v in values.items() if k in keys}))
        except (ValueError, TypeError) as err:
            raise UserError(f"invalid training settings: {str(err).splitlines()[0]}") from None
    _check_combinations(*objs)
    return TrainArgs(*objs, config=config)


def parse_data_args(argv: list[str]) -> tuple[ModelArguments, DataArguments, FinetuningArguments]:
    """The model, data and stage arguments of a train command line, for the tokenizing helper
    (core/data/prefetch.py). No TrainingArguments, so no torch; every other flag is skipped here
    and checked by parse_train_args."""
    from transformers import HfArgumentParser

    classes = (ModelArguments, DataArguments, FinetuningArguments)
    config_path, flags = _split_argv(list(argv))
    if config_path:
        ours = {f.name for cls in classes for f in dataclasses.fields(cls)}
        config = {k: v for k, v in load_config_file(config_path).items() if k in ours}
        flags = config_to_argv(config, ours, config_path) + flags
    parsed = HfArgumentParser(classes).parse_args_into_dataclasses(flags, return_remaining_strings=True, look_for_args_file=False)
    return parsed[0], parsed[1], parsed[2]


def _gpu_available() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


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
    if values.get("bf16"):
        print("[tuneforge] --bf16 needs a GPU and none was found: training in fp32 instead.", file=sys.stderr)
        values["bf16"] = False


def check_values(values: dict[str, Any]) -> None:
    """Refuse impossible values by flag name; reads a plain dict, so the UI checks with it too."""
    for name in POSITIVE_FIELDS:
        value = values.get(name)
        if value is not None and value <= 0:
            raise UserError(f"--{name} must be greater than 0, got {value}")
    if values.get("val_size", 0) < 0:
        raise UserError(f"--val_size must be 0 (none), a share below 1 or a record count, got {values['val_size']}")
    if not 0 <= values.get("lora_dropout", 0) < 1:
        raise UserError(f"--lora_dropout must be in [0, 1), got {values['lora_dropout']}")
    if values.get("max_samples") is not None and values["max_samples"] <= 0:
        raise UserError(f"--max_samples must be greater than 0, got {values['max_samples']}")
    if values.get("top_p") is not None and not 0 < values["top_p"] <= 1:
        raise UserError(f"--top_p must be in (0, 1], got {values['top_p']}")


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


class OneLineParser(argparse.ArgumentParser):
    """argparse for the small commands (chat, score, export, data): a bad flag is one UserError
    line naming it, not the usage text and exit 2."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(_argparse_message(message))


def option_help(name: str) -> str:
    """The help text of one of our options, for commands that take it too."""
    return our_fields()[name].metadata.get("help", "")


def cli_help() -> str:
    """`launch.py train --help`: every option of ours with its help and choices."""
    lines = ["usage: launch.py train [CONFIG.yaml] [--flag value ...]", ""]
    for cls in OUR_DATACLASSES:
        lines.append(f"{cls.__name__}:")
        for f in dataclasses.fields(cls):
            choices = field_choices(f)
            extra = f" (one of: {', '.join(map(str, choices))})" if choices else ""
            lines.append(f"  --{f.name:<28} {f.metadata.get('help', '')}{extra} [default: {f.default}]")
    lines.append("")
    lines.append("Every transformers TrainingArguments flag is accepted too (e.g. --learning_rate, --num_train_epochs, --fp16).")
    return "\n".join(lines)
