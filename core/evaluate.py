"""Evaluation against references: the checks of the evaluation options, and predict.

`launch.py train --stage sft --do_predict --predict_with_generate --model_name_or_path M
[--adapter_name_or_path RUN] --eval_dataset NAME --output_dir DIR` generates an answer to the
prompt of every --eval_dataset record, in batches with left padding, and scores each against the
record's answer (core/metrics.py). With an adapter the same run also answers with the adapter
switched off (`model.disable_adapter()`: one copy of the weights), so the base and the adapter
are compared sample by sample. It writes into DIR:

    generated_predictions.jsonl  one line per sample: prompt, label, predict (+ base_predict,
                                 each answer's scores, score_change = adapter - base ROUGE-L)
    predict_results.json         the mean of each metric: predict_* (the adapter, or the model
                                 without one), base_predict_* and delta_* (adapter - base)

The web UI's Evaluate tab runs this same command as a subprocess (`predict_argv`) and reads its
progress lines (core/progress.py) and these files. Nothing here imports torch at module level:
core/args.py calls `check_evaluation_options` while it parses.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from core.errors import UserError

if TYPE_CHECKING:
    from core.args import ModelArguments, TrainArgs

Progress = Callable[[float, str], None]

PREDICTIONS_FILE = "generated_predictions.jsonl"
RESULTS_FILE = "predict_results.json"


# ---------------------------------------------------------------------------- option checks


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)  # an enum member (IntervalStrategy) as its string


def check_evaluation_options(values: Mapping[str, Any]) -> None:
    """Refuse, by flag, evaluation options that cannot work together, from a plain dict of option
    values (the parser's or the web UI form's), before anything loads."""
    eval_set = bool(values.get("val_size")) or bool(values.get("eval_dataset"))
    if values.get("val_size") and values.get("eval_dataset"):
        raise UserError("--val_size and --eval_dataset both make an eval set; use one of them")
    if values.get("do_train"):
        _check_training_eval(values, eval_set)
    if values.get("do_predict"):
        _check_predict(values)
    from core.trackers import check_trackers

    check_trackers(values.get("report_to"))


def _check_training_eval(values: Mapping[str, Any], eval_set: bool) -> None:
    strategy = str(_plain(values.get("eval_strategy")) or "no")
    if strategy != "no" and not eval_set:
        raise UserError(f"--eval_strategy {strategy} needs an eval set: add --val_size 0.1 or --eval_dataset NAME")
    patience = values.get("early_stopping_patience")
    best = values.get("load_best_model_at_end")
    if (patience or best) and not eval_set:
        flag = "--early_stopping_patience" if patience else "--load_best_model_at_end"
        raise UserError(f"{flag} watches the eval loss: add an eval set (--val_size 0.1 or --eval_dataset NAME) "
                        "and --eval_strategy steps --eval_steps N")
    if not best:
        return
    if strategy == "no":
        raise UserError("--load_best_model_at_end keeps the checkpoint with the best eval loss: add --eval_strategy steps "
                        "--eval_steps N, with --save_steps a multiple of N")
    save_strategy = str(_plain(values.get("save_strategy")) or "steps")
    if save_strategy != strategy:
        raise UserError(f"--load_best_model_at_end needs checkpoints when it evaluates: --save_strategy {save_strategy} "
                        f"and --eval_strategy {strategy} must be the same")
    every = values.get("eval_steps") or values.get("logging_steps")
    save = values.get("save_steps")
    if strategy == "steps" and every and save and every >= 1 and save >= 1 and save % every:
        raise UserError(f"--load_best_model_at_end needs a checkpoint at every evaluation it may keep: --save_steps "
                        f"{save:g} must be a multiple of --eval_steps {every:g}")


def _check_predict(values: Mapping[str, Any]) -> None:
    stage = values.get("stage") or "sft"
    if stage != "sft":
        raise UserError(f"--do_predict generates answers of --stage sft models; got --stage {stage}")
    if not values.get("predict_with_generate"):
        raise UserError("--do_predict needs --predict_with_generate: it generates an answer to each --eval_dataset "
                        "prompt and scores it against the reference")
    if not values.get("eval_dataset"):
        raise UserError("--do_predict needs --eval_dataset NAME: the dataset whose prompts are answered and whose "
                        "answers are the references")


def check_eval_datasets(args: "TrainArgs") -> None:
    """--eval_dataset names registered datasets of the shape the run needs (sft for predict)."""
    from core.data.registry import check_stage, get_spec

    if not args.data.eval_dataset:
        return
    stage = args.finetuning.stage
    for name in dataset_names(args.data.eval_dataset):
        try:
            check_stage(get_spec(args.data.dataset_dir, name), stage)
        except UserError as err:
            raise UserError(f"--eval_dataset {name}: {err}") from None


def dataset_names(value: Optional[str]) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


# ---------------------------------------------------------------------------- predict: the plan


@dataclass
class PredictPlan:
    """Everything predict needs, checked and with the records read, before any model loads."""

    model_args: "ModelArguments"
    adapter: Optional[str]
    dataset: str
    records: list[dict]
    template: Optional[str]
    system: Optional[str]
    cutoff_len: int
    batch_size: int
    generation: dict[str, Any]
    output_dir: Path


def plan_predict(args: "TrainArgs", adapter: Optional[str] = None, model_path: Optional[str] = None) -> PredictPlan:
    """The checked plan of a --do_predict run (adapter/model_path: those a training run just saved)."""
    from core.chat import GENERATION_FIELDS, check_adapter_dir, generation_settings, run_config
    from core.data.registry import load_records
    from core.model_source import check_model_source

    values = {**dataclasses.asdict(args.data), **dataclasses.asdict(args.finetuning), "do_predict": True}
    _check_predict(values)
    model_args = dataclasses.replace(args.model, model_name_or_path=model_path or args.model.model_name_or_path,
                                     adapter_name_or_path=None)
    check_model_source(model_args.model_name_or_path)
    adapter = adapter or args.model.adapter_name_or_path
    if adapter:
        check_adapter_dir(adapter)
    check_eval_datasets(args)
    records: list[dict] = []
    for name in dataset_names(args.data.eval_dataset):
        records += load_records(args.data.dataset_dir, name, max_samples=args.data.max_samples)
    if not records:
        raise UserError(f"--eval_dataset {args.data.eval_dataset} has no records to answer; add records or pick another dataset")
    # Greedy unless sampling is asked for: scores that change from run to run compare nothing.
    given = {k: getattr(args.generating, k) for k in GENERATION_FIELDS if k in args.config}
    generation = generation_settings(**{"do_sample": False, **given, "seed": args.training.seed})
    trained = run_config(adapter)
    return PredictPlan(
        model_args=model_args, adapter=adapter, dataset=args.data.eval_dataset, records=records,
        template=args.data.template or trained.get("template"), system=args.data.system or trained.get("system"),
        cutoff_len=args.data.cutoff_len, batch_size=args.training.per_device_eval_batch_size,
        generation=generation, output_dir=Path(args.training.output_dir),
    )


# ---------------------------------------------------------------------------- predict: the run


@dataclass
class PredictResult:
    output_dir: Path
    results: dict[str, Any]  # predict_results.json
    rows: list[dict[str, Any]] = field(default_factory=list)  # generated_predictions.jsonl


def run_predict(plan: PredictPlan, progress: Optional[Progress] = None) -> PredictResult:
    """Load the model once, answer every prompt with the adapter on (and off), score and save."""
    from core.data.templates import get_template
    from core.model import compute_device, load_adapter, load_base_model, load_tokenizer

    report = progress or (lambda fraction, message: None)
    started = time.time()
    report(0.0, "loading the tokenizer")
    tokenizer = load_tokenizer(plan.model_args)
    template = get_template(plan.template, tokenizer)
    prompts, labels, cut = encode_prompts(plan.records, template, tokenizer, plan.system, plan.cutoff_len)
    if cut:
        print(f"[tuneforge] {cut} of {len(prompts)} prompts were longer than --cutoff_len {plan.cutoff_len}: "
              "kept their last tokens", flush=True)
    report(0.02, "loading the model")
    model = load_base_model(plan.model_args)
    if plan.model_args.quantization_bit is None:
        model = model.to(compute_device())
    if plan.adapter:
        model = load_adapter(model, plan.adapter, is_trainable=False)
    model.eval()
    passes = ["adapter", "base"] if plan.adapter else ["model"]
    answers: dict[str, list[str]] = {}
    for k, name in enumerate(passes):
        def batch_done(done: int, k: int = k, name: str = name) -> None:
            fraction = 0.1 + 0.85 * (k * len(prompts) + done) / (len(passes) * len(prompts))
            report(fraction, f"{name}: {done}/{len(prompts)} answers")

        answers[name] = generate_answers(model, tokenizer, prompts, template.stop_token_ids(tokenizer), plan.generation,
                                         plan.batch_size, use_adapter=name != "base", on_batch=batch_done)
    report(0.96, "scoring")
    texts = tokenizer.batch_decode(prompts, skip_special_tokens=True)
    rows, results = score_answers(texts, labels, answers)
    elapsed = time.time() - started
    results.update({
        "predict_samples": len(prompts), "predict_runtime": round(elapsed, 3),
        "predict_samples_per_second": round(len(prompts) * len(passes) / elapsed, 3) if elapsed else None,
        "model_name_or_path": plan.model_args.model_name_or_path, "adapter_name_or_path": plan.adapter,
        "eval_dataset": plan.dataset, "template": template.name, "generation": _jsonable(plan.generation),
    })
    write_results(plan.output_dir, rows, results)
    report(1.0, f"saved in {plan.output_dir}")
    return PredictResult(plan.output_dir, results, rows)


def encode_prompts(records: list[dict], template: Any, tokenizer: Any, system: Optional[str],
                   cutoff_len: int) -> tuple[list[list[int]], list[str], int]:
    """Prompt ids (the conversation up to the last answer, as training encodes it) and the
    references (that last answer); prompts over cutoff_len keep their last tokens."""
    prompts, labels, cut = [], [], 0
    for record in records:
        messages = record["messages"]
        ids = template.encode_prompt(tokenizer, messages[:-1], record.get("system") or system)
        if len(ids) > cutoff_len:
            ids, cut = ids[-cutoff_len:], cut + 1
        prompts.append(ids)
        labels.append(messages[-1]["content"])
    return prompts, labels, cut


def generate_answers(model: Any, tokenizer: Any, prompts: list[list[int]], stop_ids: list[int], generation: dict[str, Any],
                     batch_size: int, use_adapter: bool = True, on_batch: Optional[Callable[[int], None]] = None) -> list[str]:
    """One answer per prompt, generated in batches of similar length, left-padded (generation
    continues from the right end of every row)."""
    import torch
    from contextlib import nullcontext

    from transformers import set_seed

    settings = dict(generation)
    seed = settings.pop("seed", None)
    if seed is not None:
        set_seed(int(seed))  # the same random stream for the adapter and the base pass
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers = [""] * len(prompts)
    switch_off = not use_adapter and hasattr(model, "disable_adapter")
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in batch)
        ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in batch], dtype=torch.long, device=device)
        mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in batch], dtype=torch.long, device=device)
        with torch.inference_mode(), (model.disable_adapter() if switch_off else nullcontext()):
            out = model.generate(input_ids=ids, attention_mask=mask, eos_token_id=stop_ids, pad_token_id=pad, **settings)
        for row, i in zip(out[:, width:].tolist(), batch):
            answers[i] = decode_answer(tokenizer, row, stop_ids)
        if on_batch is not None:
            on_batch(min(start + batch_size, len(order)))
    return answers


def decode_answer(tokenizer: Any, ids: list[int], stop_ids: list[int]) -> str:
    """The answer's text up to its first stop token (what follows is padding)."""
    for k, token in enumerate(ids):
        if token in stop_ids:
            ids = ids[:k]
            break
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


def score_answers(prompts: list[str], labels: list[str], answers: dict[str, list[str]]) -> tuple[list[dict], dict[str, Any]]:
    """Per-sample rows and the summary: predict_* for the adapter (or the lone model), base_predict_*
    and delta_* when the base answered too."""
    from core.metrics import METRICS, SAMPLE_SCORE, mean_scores, sample_scores

    main = "adapter" if "adapter" in answers else "model"
    rows = []
    for i, (prompt, label) in enumerate(zip(prompts, labels)):
        row: dict[str, Any] = {"prompt": prompt, "label": label, "predict": answers[main][i]}
        row["scores"] = sample_scores(row["predict"], label)
        if "base" in answers:
            row["base_predict"] = answers["base"][i]
            row["base_scores"] = sample_scores(row["base_predict"], label)
            row["score_change"] = round(row["scores"][SAMPLE_SCORE] - row["base_scores"][SAMPLE_SCORE], 4)
        rows.append(row)
    summary = mean_scores(r["scores"] for r in rows).scores
    results: dict[str, Any] = {f"predict_{k}": summary[k] for k in METRICS}
    if "base" in answers:
        base = mean_scores(r["base_scores"] for r in rows).scores
        results.update({f"base_predict_{k}": base[k] for k in METRICS})
        results.update({f"delta_{k}": round(summary[k] - base[k], 4) for k in METRICS})
    return rows, results


def write_results(output_dir: Path, rows: list[dict], results: dict[str, Any]) -> None:
    from core.atomic import write_atomic

    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(output_dir / PREDICTIONS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_atomic(output_dir / RESULTS_FILE, json.dumps(results, ensure_ascii=False, indent=2) + "\n")


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None}


# ---------------------------------------------------------------------------- reading results back


def read_results(folder: Path) -> Optional[PredictResult]:
    """A predict folder's results and rows, or None when it holds none."""
    from core.rundir import read_json

    folder = Path(folder)
    results = read_json(folder / RESULTS_FILE)
    if results is None:
        return None
    rows = []
    try:
        with open(folder / PREDICTIONS_FILE, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError):
        rows = []
    return PredictResult(folder, results, rows)


def metrics_table(results: Mapping[str, Any]) -> list[list[Any]]:
    """[metric, base, adapter, delta] rows (base and delta empty without an adapter)."""
    from core.metrics import METRICS

    return [[k, results.get(f"base_predict_{k}"), results.get(f"predict_{k}"), results.get(f"delta_{k}")] for k in METRICS]


def rows_by_change(rows: list[dict]) -> list[dict]:
    """Samples where the adapter lost the most against the base first (the largest ROUGE-L drop)."""
    return sorted(rows, key=lambda r: (r.get("score_change", 0.0), r["scores"].get("rouge-l", 0.0)))


def eval_folders(run_dir: Path) -> list[Path]:
    """The predict results kept in a run folder: its own (do_train + do_predict) and eval/*, newest first."""
    run_dir = Path(run_dir)
    found = [p.parent for p in [run_dir / RESULTS_FILE, *run_dir.glob(f"eval/*/{RESULTS_FILE}")] if p.is_file()]
    return sorted(found, key=lambda p: (p / RESULTS_FILE).stat().st_mtime, reverse=True)


# ---------------------------------------------------------------------------- commands


def predict_argv(model: str, dataset: str, output_dir: str, adapter: Optional[str] = None, template: Optional[str] = None,
                 max_samples: Optional[int] = None, max_new_tokens: Optional[int] = None,
                 batch_size: Optional[int] = None, dataset_dir: Optional[str] = None) -> list[str]:
    """The `launch.py train --do_predict` arguments the web UI runs (the CLI's own code path)."""
    argv = ["train", "--stage", "sft", "--do_predict", "--predict_with_generate", "--model_name_or_path", model,
            "--eval_dataset", dataset, "--output_dir", output_dir]
    optional = {"adapter_name_or_path": adapter, "template": template, "max_samples": max_samples,
                "max_new_tokens": max_new_tokens, "per_device_eval_batch_size": batch_size, "dataset_dir": dataset_dir}
    for name, value in optional.items():
        if value not in (None, ""):
            argv += [f"--{name}", str(value)]
    return argv


def predict_only(args: "TrainArgs") -> bool:
    return bool(args.training.do_predict) and not args.training.do_train


def predict_main(args: "TrainArgs", dry: bool = False) -> int:
    """`launch.py train --do_predict` without --do_train: writes only into --output_dir."""
    from core.progress import print_progress

    try:
        plan = plan_predict(args)
        if dry:
            print(f"[tuneforge] dry run: predict {len(plan.records)} records of {plan.dataset} into {plan.output_dir}",
                  file=sys.stderr, flush=True)
            return 0
        result = run_predict(plan, progress=print_progress)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    print(format_summary(result.results), flush=True)
    return 0


def predict_after_training(args: "TrainArgs") -> int:
    """--do_train --do_predict: predict with what the run just saved, into its own folder."""
    from core.progress import print_progress

    out = args.training.output_dir
    lora = args.finetuning.finetuning_type == "lora"
    try:
        plan = plan_predict(args, adapter=out if lora else None, model_path=None if lora else out)
        result = run_predict(plan, progress=print_progress)
    except UserError as err:
        print(f"[tuneforge] error: {err}", file=sys.stderr, flush=True)
        return 2
    print(format_summary(result.results), flush=True)
    return 0


def format_summary(results: Mapping[str, Any]) -> str:
    """The metrics as a small text table: base, adapter and delta columns when there is an adapter."""
    table = metrics_table(results)
    with_base = results.get("base_predict_rouge-l") is not None
    lines = [f"{'metric':<12} {'base':>9} {'adapter':>9} {'delta':>9}" if with_base else f"{'metric':<12} {'score':>9}"]
    for name, base, main, delta in table:
        lines.append(f"{name:<12} {base:>9.2f} {main:>9.2f} {delta:>+9.2f}" if with_base else f"{name:<12} {main:>9.2f}")
    lines.append(f"{results.get('predict_samples')} samples, {results.get('predict_runtime')} s")
    return "\n".join(lines)
