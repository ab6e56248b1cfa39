"""Multiple-choice benchmarks (MMLU, C-Eval, CMMLU style): accuracy per subject and overall, for
the base model and its adapter from one copy of the weights.

    python launch.py eval --task mc_demo --model_name_or_path M [--adapter_name_or_path RUN]
                          [--template T] [--n_shot K] [--batch_size N] [--max_samples N] [--save_dir DIR]

A benchmark is a dataset_info.json entry with "formatting": "choice" (core/data/formats.py): each
record a question, the four choices A-D, the right letter and optionally a subject. Each question
becomes a user turn of the run's chat template:

    {question}
    A. {A}
    B. {B}
    C. {C}
    D. {D}
    Answer:

under a system line naming the subject ("The following are multiple choice questions (with
answers) about {subject}."; in Chinese when the question is Chinese), after --n_shot solved
questions of the same subject (the first K others of the set, with their letter as the
assistant's answer). The model's choice is the letter whose token is most likely as the first
token of the assistant's answer (its log-probability, read in one forward pass per question);
a letter the template writes after a fixed prefix (a space, a header) is read after that prefix.
Scores do not depend on a sampled answer, so they are exact and repeatable.

With --save_dir it writes results.json (accuracy per subject and overall: base, adapter, delta),
predictions.jsonl (each question's letter log-probabilities and choice, base and adapter) and
results.log (the table printed on the terminal).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from core.args import ModelArguments, TemplateArguments, positive
from core.errors import UserError

Progress = Callable[[float, str], None]

LETTERS = ("A", "B", "C", "D")
SYSTEM = {"en": "The following are multiple choice questions (with answers) about {subject}.",
          "zh": "以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。"}
ANSWER_CUE = {"en": "Answer:", "zh": "答案："}
CJK = re.compile(r"[\u3400-\u9fff]")
RESULTS_JSON, PREDICTIONS_JSONL, RESULTS_LOG = "results.json", "predictions.jsonl", "results.log"


@dataclass
class BenchmarkArguments:
    """The benchmark's own options (the model's and the template's are the training run's)."""

    task: Optional[str] = field(default=None, metadata={
        "help": "Benchmark dataset name(s) from dataset_info.json (\"formatting\": \"choice\"), comma separated."})
    dataset_dir: str = field(default="data", metadata={"help": "Folder holding dataset_info.json and the dataset files."})
    n_shot: int = field(default=0, metadata={"help": "Solved questions of the same subject shown before each question."})
    batch_size: int = field(default=8, metadata={"help": "Questions scored per forward pass."})
    max_samples: Optional[int] = field(default=None, metadata={"help": "Score at most this many questions of each benchmark."})
    cutoff_len: int = field(default=2048, metadata={"help": "Longest prompt in tokens; the oldest shots are dropped to fit."})
    save_dir: Optional[str] = field(default=None, metadata={"help": "Folder for results.json, predictions.jsonl and results.log."})

    def __post_init__(self) -> None:
        positive("batch_size", self.batch_size)
        positive("max_samples", self.max_samples)
        positive("cutoff_len", self.cutoff_len)
        if self.n_shot < 0:
            raise UserError(f"--n_shot must be 0 or more, got {self.n_shot}")


# ---------------------------------------------------------------------------- questions


def load_questions(dataset_dir: str, task: Optional[str], max_samples: Optional[int] = None) -> list[dict]:
    """Every question of the named benchmarks, each record checked (a bad answer letter is one
    line naming the file and record), before any model loads."""
    from core.data.registry import get_spec, load_records

    names = [n.strip() for n in (task or "").split(",") if n.strip()]
    if not names:
        raise UserError("--task is required: a benchmark from dataset_info.json with \"formatting\": \"choice\" (e.g. mc_demo)")
    questions: list[dict] = []
    for name in names:
        spec = get_spec(dataset_dir, name)
        if spec.shape != "mc":
            raise UserError(f"--task {name}: dataset '{name}' is not a multiple-choice benchmark; register one with "
                            "\"formatting\": \"choice\" (columns question, A, B, C, D, answer, subject)")
        questions += load_records(dataset_dir, name, max_samples=max_samples)
    if not questions:
        raise UserError(f"--task {task} has no questions; add records to it")
    return questions


def language(question: dict) -> str:
    return "zh" if CJK.search(question["question"]) else "en"


def format_question(question: dict) -> str:
    lines = [question["question"].strip(), *(f"{letter}. {text}" for letter, text in zip(LETTERS, question["choices"]))]
    return "\n".join([*lines, ANSWER_CUE[language(question)]])


def shots_for(question: dict, questions: list[dict], n_shot: int) -> list[dict]:
    """The first n_shot other questions of the same subject."""
    if not n_shot:
        return []
    same = [q for q in questions if q["subject"] == question["subject"] and q is not question]
    return same[:n_shot]


def conversation(question: dict, shots: list[dict]) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for shot in shots:
        messages += [{"role": "user", "content": format_question(shot)}, {"role": "assistant", "content": shot["answer"]}]
    return messages + [{"role": "user", "content": format_question(question)}]


def letter_tokens(template: Any, tokenizer: Any, messages: list[dict], system: str) -> tuple[list[int], list[int]]:
    """(the answer's fixed prefix ids, each letter's first own token id) as the template encodes
    an answer that is just the letter."""
    answers = []
    for letter in LETTERS:
        pairs = template.encode_multiturn(tokenizer, [*messages, {"role": "assistant", "content": letter}], system)
        answers.append(pairs[-1][1])
    prefix = 0
    while all(len(a) > prefix for a in answers) and len({a[prefix] for a in answers}) == 1:
        prefix += 1
    if not all(len(a) > prefix for a in answers) or len({a[prefix] for a in answers}) < len(LETTERS):
        raise UserError(f"template '{template.name}' with this tokenizer does not give the letters A-D distinct tokens; "
                        "pick another --template")
    return answers[0][:prefix], [a[prefix] for a in answers]


def encode_questions(questions: list[dict], template: Any, tokenizer: Any, n_shot: int,
                     cutoff_len: int) -> tuple[list[list[int]], list[list[int]]]:
    """Each question's prompt ids (up to where the letter goes) and its four letter token ids;
    shots are dropped, oldest first, until the prompt fits cutoff_len."""
    prompts, letters = [], []
    for question in questions:
        shots = shots_for(question, questions, n_shot)
        system = SYSTEM[language(question)].format(subject=question["subject"])
        while True:
            messages = conversation(question, shots)
            prefix, letter_ids = letter_tokens(template, tokenizer, messages, system)
            ids = template.encode_prompt(tokenizer, messages, system) + prefix
            if len(ids) <= cutoff_len or not shots:
                break
            shots = shots[1:]
        if len(ids) > cutoff_len:
            raise UserError(f"a question of {question['subject']} is {len(ids)} tokens, over --cutoff_len {cutoff_len}; raise it")
        prompts.append(ids)
        letters.append(letter_ids)
    return prompts, letters


# ---------------------------------------------------------------------------- scoring


def letter_logprobs(model: Any, prompts: list[list[int]], letters: list[list[int]], pad_id: int, batch_size: int,
                    use_adapter: bool = True, on_batch: Optional[Callable[[int], None]] = None) -> list[list[float]]:
    """log P(letter token | prompt) for the four letters of every question.

    Batches are left-padded with position ids counted from each row's first real token, so a
    padded row is scored as it would be alone; only the last position's logits are computed.
    """
    import torch
    from contextlib import nullcontext

    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    scores: list[list[float]] = [[] for _ in prompts]
    switch_off = not use_adapter and hasattr(model, "disable_adapter")
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in batch)
        ids = torch.tensor([[pad_id] * (width - len(prompts[i])) + prompts[i] for i in batch], device=device)
        mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in batch], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode(), (model.disable_adapter() if switch_off else nullcontext()):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for row, i in enumerate(batch):
            scores[i] = [round(float(logprobs[row, token]), 4) for token in letters[i]]
        if on_batch is not None:
            on_batch(min(start + batch_size, len(order)))
    return scores


def accuracy_table(questions: list[dict], choices: dict[str, list[str]]) -> tuple[dict[str, dict], dict[str, Any]]:
    """Accuracy (percent) per subject and overall for each model ("adapter", "base" or "model")."""
    subjects: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(q["subject"] for q in questions):
        members = [i for i, q in enumerate(questions) if q["subject"] == name]
        subjects[name] = {"questions": len(members), **{
            model: round(100.0 * sum(picked[i] == questions[i]["answer"] for i in members) / len(members), 2)
            for model, picked in choices.items()}}
    overall: dict[str, Any] = {"questions": len(questions), **{
        model: round(100.0 * sum(p == q["answer"] for p, q in zip(picked, questions)) / len(questions), 2)
        for model, picked in choices.items()}}
    if "base" in choices:
        for row in [*subjects.values(), overall]:
            row["delta"] = round(row["adapter"] - row["base"], 2)
    return subjects, overall


# ---------------------------------------------------------------------------- the run


@dataclass
class BenchmarkResult:
    results: dict[str, Any]
    rows: list[dict[str, Any]]


def run_benchmark(model_args: ModelArguments, template_args: TemplateArguments, bench: BenchmarkArguments,
                  progress: Optional[Progress] = None) -> BenchmarkResult:
    """Score every question with the adapter on (and off), from one load of the weights."""
    from core.chat import check_adapter_dir, run_config
    from core.data.templates import get_template
    from core.model import compute_device, load_adapter, load_base_model, load_tokenizer
    from core.model_source import check_model_source

    report = progress or (lambda fraction, message: None)
    check_model_source(model_args.model_name_or_path)
    adapter = model_args.adapter_name_or_path
    if adapter:
        check_adapter_dir(adapter)
    questions = load_questions(bench.dataset_dir, bench.task, bench.max_samples)
    started = time.time()
    report(0.0, "loading the tokenizer")
    base_args = dataclasses.replace(model_args, adapter_name_or_path=None)
    tokenizer = load_tokenizer(base_args)
    template = get_template(template_args.template or run_config(adapter).get("template"), tokenizer)
    prompts, letters = encode_questions(questions, template, tokenizer, bench.n_shot, bench.cutoff_len)
    report(0.02, "loading the model")
    model = load_base_model(base_args)
    if base_args.quantization_bit is None:
        model = model.to(compute_device())
    if adapter:
        model = load_adapter(model, adapter, is_trainable=False)
    model.eval()
    passes = ["adapter", "base"] if adapter else ["model"]
    logprobs: dict[str, list[list[float]]] = {}
    for k, name in enumerate(passes):
        def batch_done(done: int, k: int = k, name: str = name) -> None:
            report(0.1 + 0.88 * (k * len(prompts) + done) / (len(passes) * len(prompts)), f"{name}: {done}/{len(prompts)} questions")

        logprobs[name] = letter_logprobs(model, prompts, letters, tokenizer.pad_token_id, bench.batch_size,
                                         use_adapter=name != "base", on_batch=batch_done)
    choices = {name: [LETTERS[max(range(len(LETTERS)), key=lambda j: s[j])] for s in scores] for name, scores in logprobs.items()}
    subjects, overall = accuracy_table(questions, choices)
    results = {"task": bench.task, "model_name_or_path": model_args.model_name_or_path, "adapter_name_or_path": adapter,
               "template": template.name, "n_shot": bench.n_shot, "overall": overall, "subjects": subjects,
               "runtime_s": round(time.time() - started, 3)}
    rows = [{"subject": q["subject"], "question": q["question"], "answer": q["answer"],
             **{name: {"choice": choices[name][i], "logprobs": dict(zip(LETTERS, logprobs[name][i]))} for name in passes}}
            for i, q in enumerate(questions)]
    if bench.save_dir:
        save(Path(bench.save_dir), results, rows)
    report(1.0, f"saved in {bench.save_dir}" if bench.save_dir else "done")
    return BenchmarkResult(results, rows)


def save(folder: Path, results: dict[str, Any], rows: list[dict]) -> None:
    from core.atomic import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / RESULTS_JSON, json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    write_atomic(folder / PREDICTIONS_JSONL, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_atomic(folder / RESULTS_LOG, format_table(results) + "\n")


def format_table(results: dict[str, Any]) -> str:
    """Accuracy per subject and overall: base, adapter and delta columns, or the model's alone."""
    models = [m for m in ("base", "adapter", "delta", "model") if m in results["overall"]]
    width = max(12, *(len(s) + 2 for s in results["subjects"]))
    lines = [f"{'subject':<{width}} {'questions':>9} " + " ".join(f"{m:>8}" for m in models)]
    for name, row in [*results["subjects"].items(), ("overall", results["overall"])]:
        cells = " ".join(f"{row[m]:>+8.2f}" if m == "delta" else f"{row[m]:>8.2f}" for m in models)
        lines.append(f"{name:<{width}} {row['questions']:>9} {cells}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- command line


DESCRIPTION = ("Score a model (and its LoRA adapter, from one copy of the weights) on a multiple-choice benchmark "
               "registered in dataset_info.json with \"formatting\": \"choice\": accuracy per subject and overall.")


def main(argv: list[str]) -> int:
    from core.args import parse_cli
    from core.progress import print_progress
    from core.train.run import hide_unused_packages

    hide_unused_packages(argv)  # no bitsandbytes import unless --quantization_bit
    try:
        model_args, template_args, bench = parse_cli(argv, (ModelArguments, TemplateArguments, BenchmarkArguments),
                                                     prog="launch.py eval", description=DESCRIPTION)
        if not model_args.model_name_or_path:
            raise UserError("--model_name_or_path is required: the base model's folder, .gguf file or hub id")
        result = run_benchmark(model_args, template_args, bench, progress=print_progress)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    print(format_table(result.results), flush=True)
    return 0
