"""Score answers with a trained reward model (`--stage rm`): `python launch.py score ...`.

    python launch.py score --model_name_or_path BASE --adapter_name_or_path RUN --template T \
        --prompt "question" --answer "answer"          prints the reward of that answer
    python launch.py score ... --file pairs.json      scores each record's [chosen, rejected]

A LoRA run is loaded as the base model with one score label plus the adapter (whose saved
`score` head replaces the random one); a freeze/full run folder is itself the model. The prompt
and answer are encoded exactly as rm training encoded them (core/data/preprocess.py's pairwise
tokenization: template, truncation to cutoff_len), and the reward is read on the last token.
torch/transformers/peft are imported inside the functions only.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from core.args import AdapterTemplateArguments, DataArguments, ModelArguments, positive
from core.data.templates import Template
from core.errors import UserError

Messages = list[dict[str, str]]


def load_reward_model(
    model_name_or_path: str,
    adapter_name_or_path: Optional[str] = None,
    quantization_bit: Optional[int] = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """(model, tokenizer) of a reward model in eval mode; any problem is one UserError line."""
    from transformers import AutoModelForSequenceClassification

    from core.chat import check_adapter_dir
    from core.model import load_adapter, load_base_model, load_tokenizer, resolve_source
    from core.model_source import check_model_source

    check_model_source(model_name_or_path)
    if adapter_name_or_path:
        check_adapter_dir(adapter_name_or_path)
        if not _has_trained_head(adapter_name_or_path):
            raise UserError(f"adapter '{adapter_name_or_path}' has no score head, so it is not a reward model; train one with --stage rm")
    elif not is_sequence_classifier_checkpoint(str(resolve_source(model_name_or_path).folder)):
        raise UserError(f"'{model_name_or_path}' is not a reward model (no score head); pass the base model with "
                        "--adapter_name_or_path RUN (a LoRA rm run), or a freeze/full rm run folder as --model_name_or_path")
    model_args = ModelArguments(model_name_or_path=model_name_or_path, quantization_bit=quantization_bit,
                                trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(model_args)
    with _quiet_load_report(bool(adapter_name_or_path)):
        model = load_base_model(model_args, model_class=AutoModelForSequenceClassification, num_labels=1,
                                pad_token_id=tokenizer.pad_token_id)
    if adapter_name_or_path:
        model = load_adapter(model, adapter_name_or_path, is_trainable=False)
    return model.eval(), tokenizer


@contextmanager
def _quiet_load_report(quiet: bool) -> Iterator[None]:
    # transformers reports the base's score head as "MISSING, newly initialized"; the adapter brings it.
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    if quiet:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


def _has_trained_head(adapter_path: str) -> bool:
    config = json.loads((Path(adapter_path) / "adapter_config.json").read_text(encoding="utf-8"))
    return config.get("task_type") == "SEQ_CLS"


def is_sequence_classifier_checkpoint(model_path: str) -> bool:
    """A saved freeze/full rm run: a *ForSequenceClassification model folder."""
    path = Path(model_path) / "config.json"
    if not path.is_file():  # a .gguf file: a causal LM, never a reward model
        return False
    config = json.loads(path.read_text(encoding="utf-8"))
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def encode(tokenizer: Any, template: Template, messages: Messages, answers: list[str],
           system: Optional[str] = None, cutoff_len: int = 1024) -> list[list[int]]:
    """prompt+answer ids for each answer, as rm training encodes and truncates a pair."""
    from core.data.preprocess import tokenize_pairwise

    rows = []
    for answer in answers:
        batch = {"messages": [messages], "system": [system], "chosen": [answer], "rejected": [answer]}
        out = tokenize_pairwise(batch, tokenizer, template, cutoff_len, system)
        rows.append(out["prompt_input_ids"][0] + out["chosen_input_ids"][0])
    return rows


def rewards(model: Any, tokenizer: Any, template: Template, messages: Messages, answers: list[str],
            system: Optional[str] = None, cutoff_len: int = 1024) -> list[float]:
    """The reward of each answer to the conversation `messages` (ending with the user turn)."""
    import torch

    from core.data.collator import pad_batch

    rows = encode(tokenizer, template, messages, answers, system, cutoff_len)
    batch = pad_batch(rows, rows, tokenizer.pad_token_id, pad_to_multiple_of=8)
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device), use_cache=False)
    return [float(x) for x in out.logits.squeeze(-1).float().cpu()]


def score(model: Any, tokenizer: Any, template: Template | str | None, messages: Messages, answer: str,
          system: Optional[str] = None, cutoff_len: int = 1024) -> float:
    """The reward of one answer to `messages` (a conversation ending with the user turn)."""
    from core.data.templates import get_template

    if not isinstance(template, Template):
        template = get_template(template, tokenizer)
    return rewards(model, tokenizer, template, messages, [answer], system, cutoff_len)[0]


# ---------------------------------------------------------------------------- CLI




@dataclass
class ScoreArguments:
    """What to score, and the one setting read from the run unless given (the others are the
    training run's dataclasses)."""

    prompt: Optional[str] = field(default=None, metadata={"help": "The user's message."})
    answer: Optional[str] = field(default=None, metadata={"help": "The answer to score."})
    file: Optional[str] = field(default=None, metadata={
        "help": "A ranking file (records with instruction, input, output: [chosen, rejected]); prints both rewards "
                "of each pair and the share ranked right."})
    cutoff_len: Optional[int] = field(default=None, metadata={
        "help": "Maximum tokens of prompt and answer (longer ones are cut as in training); empty = the run's."})

    def __post_init__(self) -> None:
        positive("cutoff_len", self.cutoff_len)


SCORE_DESCRIPTION = ("Print the reward a reward model (--stage rm) gives an answer. --adapter_name_or_path is the rm run "
                     "folder (LoRA) or one of its checkpoint-N folders; an empty --template is the one its run used.")


def parse_score_args(argv: list[str]) -> tuple[ModelArguments, AdapterTemplateArguments, ScoreArguments]:
    from core.args import parse_cli

    return parse_cli(argv, (ModelArguments, AdapterTemplateArguments, ScoreArguments), prog="launch.py score",
                     description=SCORE_DESCRIPTION)


def read_pairs(path: str) -> list[dict]:
    """Unified rw records of a ranking file, validated like a registered dataset (alpaca columns)."""
    from core.data.loaders import convert_all, first_problem, read_file
    from core.data.registry import ALPACA_COLUMNS, DatasetSpec

    file = Path(path)
    if not file.is_file():
        raise UserError(f"--file {path} does not exist")
    raw, problems = read_file(file)
    first_problem(problems)
    records, problems = convert_all(raw, DatasetSpec(name=file.name, ranking=True, columns=dict(ALPACA_COLUMNS)), max_errors=1)
    first_problem(problems)
    return records


def main(argv: list[str]) -> int:
    from core.chat import run_config
    from core.data.templates import get_template

    try:
        model_args, template_args, args = parse_score_args(argv)
        if not model_args.model_name_or_path:
            raise UserError("--model_name_or_path is required: the base model the reward model was trained on (e.g. data/models/demo)")
        if (args.file is None) == (args.prompt is None and args.answer is None):
            raise UserError("give either --prompt and --answer, or --file pairs.json")
        if args.file is None and not (args.prompt and args.answer):
            raise UserError("--prompt and --answer go together: pass both")
        pairs = read_pairs(args.file) if args.file else None
        config = run_config(model_args.adapter_name_or_path or model_args.model_name_or_path)
        model, tokenizer = load_reward_model(model_args.model_name_or_path, model_args.adapter_name_or_path,
                                             model_args.quantization_bit, model_args.trust_remote_code)
        template = get_template(template_args.template or config.get("template"), tokenizer)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    system = template_args.system if template_args.system is not None else config.get("system")
    cutoff_len = args.cutoff_len or int(config.get("cutoff_len") or DataArguments.cutoff_len)
    if pairs is None:
        messages = [{"role": "user", "content": args.prompt}]
        print(f"{score(model, tokenizer, template, messages, args.answer, system, cutoff_len):.4f}")
        return 0
    right = 0
    print("record\tchosen\trejected\tmargin")
    for i, pair in enumerate(pairs, start=1):
        chosen, rejected = rewards(model, tokenizer, template, pair["messages"], [pair["chosen"], pair["rejected"]],
                                   pair.get("system") or system, cutoff_len)
        right += chosen > rejected
        print(f"{i}\t{chosen:.4f}\t{rejected:.4f}\t{chosen - rejected:+.4f}")
    print(f"ranked right: {right}/{len(pairs)} ({100 * right / len(pairs):.1f} %)")
    return 0
