"""The rewards of --stage grpo: rule rewards (--reward_funcs) and a reward model run (--reward_model).

trl's GRPOTrainer calls each reward with the batch's prompts, completions (decoded text) and
completion_ids, plus every column of the dataset row (core/data/preprocess.py's grpo rows:
answer, answer_length, prompt_messages, prompt_system), and takes one float per completion.
The rule rewards are plain Python; torch is imported only by the reward model.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional

from core.errors import UserError


def exact_match(completions: list[str], answer: list[str], **_: Any) -> list[float]:
    """1 when the answer is the dataset's reference answer (surrounding whitespace aside), else 0."""
    return [1.0 if c.strip() == a.strip() else 0.0 for c, a in zip(completions, answer)]


def length(completion_ids: list[list[int]], answer_length: list[int], max_new_tokens: int, **_: Any) -> list[float]:
    """A length penalty: 0 up to the reference answer's length (in tokens, its eos included),
    then falling linearly to -1 for an answer that fills max_new_tokens."""
    out = []
    for ids, reference in zip(completion_ids, answer_length):
        room = max(1, max_new_tokens - reference)
        out.append(-min(1.0, max(0, len(ids) - reference) / room))
    return out


# --reward_funcs names (core/args.py REWARD_FUNCS) -> the reward; `length` is given max_new_tokens.
RULE_REWARDS: dict[str, Callable[..., list[float]]] = {"exact_match": exact_match, "length": length}


def rule_rewards(names: list[str], max_new_tokens: int) -> list[Callable[..., list[float]]]:
    # functools.partial keeps the function's name, which trl logs as rewards/<name>/mean.
    return [functools.partial(RULE_REWARDS[name], max_new_tokens=max_new_tokens) if name == "length"
            else RULE_REWARDS[name] for name in names]


def check_reward_model(run_dir: str) -> dict[str, Any]:
    """The run.yaml of a --stage rm run folder (or one of its checkpoint-N); anything else is refused
    in one line. Light: reads files only, so the parser checks it before a run folder is written."""
    from core.chat import run_config

    if not Path(run_dir).is_dir():
        raise UserError(f"--reward_model {run_dir}: no such folder; pass the output_dir of a --stage rm run")
    config = run_config(run_dir)
    if not config:
        raise UserError(f"--reward_model {run_dir} has no run.yaml; pass the output_dir of a --stage rm run")
    if config.get("stage") != "rm":
        raise UserError(f"--reward_model {run_dir} is a --stage {config.get('stage')} run, not a reward model; "
                        "train one with --stage rm")
    return config


class RewardModelScorer:
    """A --stage rm run of this tool as a reward: its base model, adapter (with the score head),
    template and cutoff_len from the run's run.yaml; an answer is encoded exactly as rm training
    encoded it (core/score.py) and scored on its last token."""

    def __init__(self, run_dir: str):
        from core.data.templates import get_template
        from core.score import load_reward_model

        folder = Path(run_dir)
        config = check_reward_model(run_dir)
        lora = (folder / "adapter_config.json").is_file()
        base = str(config.get("model_name_or_path")) if lora else run_dir
        self.model, self.tokenizer = load_reward_model(base, run_dir if lora else None,
                                                       trust_remote_code=bool(config.get("trust_remote_code")))
        self.template = get_template(config.get("template"), self.tokenizer)
        self.system: Optional[str] = config.get("system")
        self.cutoff_len = int(config.get("cutoff_len") or 1024)

    def to(self, device: Any) -> "RewardModelScorer":
        self.model.to(device)
        return self

    def __call__(self, messages: list[list[dict[str, str]]], systems: list[Optional[str]], answers: list[str]) -> list[float]:
        import torch

        from core.data.collator import pad_batch
        from core.score import encode

        rows = [encode(self.tokenizer, self.template, m, [a], s or self.system, self.cutoff_len)[0]
                for m, s, a in zip(messages, systems, answers)]
        batch = pad_batch(rows, rows, self.tokenizer.pad_token_id, pad_to_multiple_of=8)
        device = next(self.model.parameters()).device
        with torch.no_grad():
            out = self.model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                             use_cache=False)
        return [float(x) for x in out.logits.squeeze(-1).float().cpu()]


def reward_model(completions: list[str], prompt_messages: list[list[dict[str, str]]], prompt_system: list[Optional[str]],
                 scorer: RewardModelScorer, **_: Any) -> list[float]:
    """The reward model's score of each answer to its prompt."""
    return scorer(prompt_messages, prompt_system, completions)
