"""What a run checks before it writes or loads anything heavy, and `launch.py train --dry_run`.

Every run checks its model (a folder, a .gguf file or a hub id, through core.model_source), its
datasets (registered, of the stage's shape) and its run folder (not a finished run unless
resumed or overwritten). A dry run checks as much as can be checked without training: also every
record of each local dataset and the template against the model's tokenizer. It prints the
config the run would record in run.yaml, then exits 0, having written nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

from core import rundir
from core.args import TrainArgs
from core.errors import UserError

DRY_RUN_FLAG = "--dry_run"


def dataset_names(args: TrainArgs) -> list[str]:
    return [n.strip() for n in (args.data.dataset or "").split(",") if n.strip()]


def preflight(args: TrainArgs) -> Any:
    """The light checks of every rank of every run (check_run_dir is rank 0's); returns the
    model's core.model_source.ModelSource."""
    return check_model_and_data(args.model, args.data, args.finetuning, args.training.do_train)


def check_before_imports(argv: list[str]) -> None:
    """Refuse a bad flag, value, dataset or model path before torch and transformers' trainer
    are imported (seconds, on a busy machine), from this project's own options alone."""
    from core.args import parse_own_args

    model, data, finetuning, _ = parse_own_args(argv)
    # The datasets named are checked whether or not --do_train is given (a transformers flag,
    # not parsed here): a dataset that does not exist or fits no stage is wrong either way.
    check_model_and_data(model, data, finetuning, do_train=True)


def check_model_and_data(model: Any, data: Any, finetuning: Any, do_train: bool) -> Any:
    from core.data.registry import check_stage, get_spec
    from core.model_source import check_model_source

    source = check_model_source(model.model_name_or_path)
    if source.kind == "gguf" and model.quantization_bit is not None:
        from core.model import GGUF_QUANTIZATION_REFUSAL

        raise UserError(GGUF_QUANTIZATION_REFUSAL.format(name=source.name))
    if model.adapter_name_or_path:
        # An adapter to continue (grpo on an sft run, say) is often the output of another example
        # that was not run yet: say so before a run folder exists, not when peft fails to load it.
        from core.chat import check_adapter_dir

        check_adapter_dir(model.adapter_name_or_path)
    if do_train:
        for name in [n.strip() for n in (data.dataset or "").split(",") if n.strip()]:
            check_stage(get_spec(data.dataset_dir, name), finetuning.stage)
    return source


def check_run_dir(run_dir: Path, args: TrainArgs) -> Optional[dict[str, Any]]:
    """Refuse to mix a new run into a finished one; returns the folder's previous status, if any."""
    previous = rundir.read_json(run_dir / rundir.STATUS_JSON)
    resuming = bool(args.training.resume_from_checkpoint)
    if previous and previous.get("state") != "starting" and not resuming and not args.finetuning.overwrite_output_dir:
        raise UserError(
            f"output_dir '{run_dir}' already holds a run ({previous.get('state')}); choose a new --output_dir, "
            "resume it with --resume_from_checkpoint, or replace it with --overwrite_output_dir"
        )
    return previous


def dry_run(args: TrainArgs, source: Any) -> str:
    """The rest of what a run would refuse, short of training; returns run.yaml's text.

    Reads every record of each local dataset (a hub dataset would be downloaded: only its
    registration is checked) and resolves the template with the model's tokenizer (a hub model
    not downloaded yet: only the template's name is checked, by the parser).
    """
    import yaml

    from core.data.registry import get_spec, load_records

    for name in dataset_names(args) if args.training.do_train else []:
        if get_spec(args.data.dataset_dir, name).source == "hub":
            note(f"dataset {name} is on the hub: its records are checked when the run downloads it")
            continue
        records = load_records(args.data.dataset_dir, name, max_samples=args.data.max_samples)
        note(f"dataset {name}: {len(records)} records, every one valid")
    config = dict(args.config)
    if args.finetuning.stage != "pt":
        template = resolve_template(args, source)
        note(f"template: {template}" if template else "template: checked once the model is downloaded")
        if template:  # what the run records once it has resolved it (core.rundir.record_template)
            config["template"] = template
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def resolve_template(args: TrainArgs, source: Any) -> Optional[str]:
    """The name of the template the run will use, checked against the model's tokenizer; None
    when the tokenizer is not on this machine yet (a hub id not downloaded)."""
    from transformers import AutoTokenizer

    from core.data.templates import get_template

    if source.folder is None:
        return None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.folder), gguf_file=source.gguf_file,
                                                  trust_remote_code=args.model.trust_remote_code)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load the tokenizer of '{args.model.model_name_or_path}': {str(err).strip().splitlines()[0]}") from None
    return get_template(args.data.template, tokenizer).name


def note(line: str) -> None:
    # stderr: stdout carries only the config, which the web UI's Preview reads.
    print(f"[tuneforge] dry run: {line}", file=sys.stderr, flush=True)
