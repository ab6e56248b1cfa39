"""Supervised fine-tuning (and, with packed text blocks, pretraining) on transformers' Trainer.

Reads top to bottom: tokenizer and template, data, model, trainer, train, save.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from core import rundir
from core.args import TrainArgs
from core.train.callbacks import AbortSignal, RunDirCallback
from core.progress import print_phase
from core.train.run import is_main_process


def run_sft(args: TrainArgs, abort: AbortSignal) -> bool:
    return train_causal_lm(args, abort, stage="sft")


def setup_tokenizer_and_data(args: TrainArgs, stage: str):
    """Tokenizer, template and tokenized datasets; rank 0 tokenizes first, the others read its cache."""
    from core.data import prefetch
    from core.data.preprocess import get_dataset
    from core.data.templates import get_template
    from core.model import load_tokenizer

    print_phase("loading the tokenizer and tokenizing the dataset")
    tokenizer = load_tokenizer(args.model)
    template = get_template(args.data.template, tokenizer) if stage != "pt" else None
    if template is not None and is_main_process():
        rundir.record_template(Path(args.training.output_dir), template.name)
    with args.training.main_process_first(desc="tokenizing the dataset"):
        prefetched = prefetch.wait() == prefetch.TOKENIZED
        # What the helper has just written is what --overwrite_cache asked for: read it.
        data_args = dataclasses.replace(args.data, overwrite_cache=False) if prefetched else args.data
        train_set, eval_set = get_dataset(
            args.data.dataset_dir, args.data.dataset, stage, tokenizer, template, data_args,
            seed=args.training.seed, prefetched=prefetched,
        )
        if args.data.eval_dataset:  # the parser refused it together with --val_size
            from core.data.preprocess import tokenize

            eval_set = tokenize(args.data.dataset_dir, args.data.eval_dataset, stage, tokenizer, template, data_args)[0]
    print(f"[tuneforge] {len(train_set)} training samples" + (f", {len(eval_set)} for evaluation" if eval_set else ""), flush=True)
    return tokenizer, template, train_set, eval_set


def enable_eval_if_split(training_args: Any, eval_set: Any) -> None:
    """A validation split without an eval schedule would never be used: evaluate every --eval_steps
    steps, or at each logging step when that is not set either."""
    from transformers.trainer_utils import IntervalStrategy

    if eval_set is not None and training_args.eval_strategy == IntervalStrategy.NO:
        training_args.eval_strategy = IntervalStrategy.STEPS
        training_args.eval_steps = training_args.eval_steps or training_args.logging_steps
        training_args.do_eval = True


def early_stopping(patience: Any, training_args: Any) -> list:
    """transformers' early stopping on the eval loss (unless --metric_for_best_model names another
    metric), as a list of zero or one callback."""
    if not patience:
        return []
    from core.train.callbacks import EarlyStopping

    if training_args.metric_for_best_model is None:  # set by transformers with --load_best_model_at_end
        training_args.metric_for_best_model, training_args.greater_is_better = "loss", False
    return [EarlyStopping(patience)]


def resume_checkpoint(training_args: Any) -> Any:
    """--resume_from_checkpoint: a folder, or `last`/`true` for the newest checkpoint of output_dir."""
    from core import rundir
    from core.errors import UserError

    value = training_args.resume_from_checkpoint
    if not value:
        return None
    if str(value).lower() in ("last", "true"):
        # Only checkpoints whose save finished: a run killed while saving leaves a half-written one.
        complete = rundir.checkpoints(Path(training_args.output_dir), complete=True)
        if not complete:
            raise UserError(f"--resume_from_checkpoint {value}: no complete checkpoint-N folder in {training_args.output_dir}")
        return str(complete[-1])
    if not Path(value).is_dir():
        raise UserError(f"--resume_from_checkpoint {value}: no such checkpoint folder")
    if not (Path(value) / rundir.CHECKPOINT_DONE).is_file():
        raise UserError(f"--resume_from_checkpoint {value}: the checkpoint is incomplete (its save was interrupted); "
                        "resume from an earlier checkpoint-N")
    return value


def drop_rows_after(run_dir: Path, step: int) -> None:
    """On resume, log rows past the checkpoint are replayed: remove them so the curve stays single."""
    from core import rundir
    from core.atomic import write_atomic

    path = run_dir / rundir.TRAINER_LOG
    if not path.exists():
        return
    rows = [r for r in rundir.read_log_rows(run_dir) if (r.get("step") or 0) <= step]
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def count_real_tokens(training_args: Any) -> None:
    """Count real (non-padding) tokens for tokens/s, gathered over every rank."""
    if training_args.include_num_input_tokens_seen in (None, False, "no"):
        training_args.include_num_input_tokens_seen = "non_padding"


def build_trainer(args: TrainArgs, model: Any, tokenizer: Any, train_set: Any, eval_set: Any, abort: AbortSignal,
                  collator: Any, trainer_class: Any = None, callback: Any = None, trainer_args: Any = None, **kwargs: Any):
    """The Trainer (or trainer_class) with our run-directory callback.

    trainer_args replaces args.training for trainers with their own config class (trl's DPOConfig),
    which the stage builds from args.training so that every flag the user set applies.
    """
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback

    from core.trackers import prepare_trackers

    trainer_args = trainer_args or args.training
    enable_eval_if_split(trainer_args, eval_set)
    prepare_trackers(trainer_args)
    callback = callback or RunDirCallback(Path(args.training.output_dir), abort)
    callbacks = [callback, *early_stopping(args.finetuning.early_stopping_patience, trainer_args)]
    trainer = (trainer_class or Trainer)(
        model=model,
        args=trainer_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=callbacks,
        **kwargs,
    )
    trainer.remove_callback(PrinterCallback)  # our callback prints one line per logging step
    return trainer, callback


def record_rank_checksums(trainer: Any, run_dir: Path) -> None:
    """In a multi-process run, check that every rank ended with the same trainable weights.

    Data parallel training keeps the replicas equal by construction; recording one checksum per
    rank in status.json makes that visible (and a broken setup obvious) at almost no cost.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        return  # sharded: each rank holds a different part by design
    model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        total = sum(float(p.detach().double().sum()) for p in model.parameters() if p.requires_grad)
    checksums: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(checksums, round(total, 6))
    if trainer.is_world_process_zero():
        from core import rundir

        rundir.write_status(run_dir, "running", rank_weight_checksums=checksums)
        if len(set(checksums)) > 1:
            print(f"[tuneforge] warning: ranks ended with different weights: {checksums}", flush=True)


def record_stop_reason(trainer: Any, run_dir: Path) -> None:
    """Why training ended, in status.json (the web UI shows it): early stopping or all steps done;
    with --load_best_model_at_end, which checkpoint the saved weights come from."""
    from core.train.callbacks import EarlyStopping

    state = trainer.state
    stopped = next((c.reason for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStopping) and c.reason), None)
    reason = stopped or f"completed {state.global_step} of {state.max_steps} steps"
    extra: dict[str, Any] = {"stop_reason": reason}
    if trainer.args.load_best_model_at_end and state.best_model_checkpoint:
        extra["best_checkpoint"] = Path(state.best_model_checkpoint).name
        extra["best_metric"] = state.best_metric
        print(f"[tuneforge] the saved weights are the best checkpoint's: {extra['best_checkpoint']} "
              f"({trainer.args.metric_for_best_model} {state.best_metric:.4g})", flush=True)
    rundir.write_status(run_dir, "running", **extra)


def train_and_save(trainer: Any, callback: RunDirCallback, args: TrainArgs, tokenizer: Any) -> bool:
    """Train (resuming if asked) and save the result; False when the run was aborted."""
    from core import startup

    checkpoint = resume_checkpoint(args.training)
    if checkpoint is not None and trainer.is_world_process_zero():
        drop_rows_after(Path(args.training.output_dir), int(Path(checkpoint).name.rsplit("-", 1)[-1]))
    startup.done()
    print_phase("training: the first steps run")
    result = trainer.train(resume_from_checkpoint=checkpoint)
    record_rank_checksums(trainer, Path(args.training.output_dir))
    if callback.aborted:
        return False  # the checkpoint was saved by the step that saw the request
    if trainer.is_world_process_zero():
        record_stop_reason(trainer, Path(args.training.output_dir))
    trainer.save_model(args.training.output_dir)
    trainer.save_metrics("train", result.metrics)  # train_results.json, as other trainers write it
    trainer.save_state()
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(args.training.output_dir)
    return True


def train_causal_lm(args: TrainArgs, abort: AbortSignal, stage: str) -> bool:
    from core.data.collator import SFTCollator
    from core.model import load_model_for_training
    from core.train.logits import supervised_logits_trainer

    count_real_tokens(args.training)
    tokenizer, _template, train_set, eval_set = setup_tokenizer_and_data(args, stage)
    model = load_model_for_training(args.model, args.finetuning, args.training)
    collator = SFTCollator(tokenizer.pad_token_id, pad_to_multiple_of=8)
    trainer, callback = build_trainer(args, model, tokenizer, train_set, eval_set, abort, collator,
                                      trainer_class=supervised_logits_trainer())
    return train_and_save(trainer, callback, args, tokenizer)
