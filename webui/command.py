"""Form values <-> run config, and the one command that runs it.

There is one way from the form to the trainer: the form becomes the run's complete config
(core.args.resolved_config, what the trainer itself records), the runner writes it into the run
folder as run.yaml, and launches `accelerate launch ... launch.py train RUN/run.yaml`; a resume
adds `--resume_from_checkpoint CHECKPOINT`. The preview shows `shlex.join(argv)` of the very list
the runner passes to Popen, so what the user reads is what runs; `dry_run` has the trainer check
the config and print what it resolves, without training.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from core.args import check_options, known_option, option_spec, resolved_config
from core.errors import UserError
from core.rundir import RUN_YAML
from webui import form
from webui.paths import ROOT, display_path, resolve_path

LAUNCH_PY = "launch.py"
# What accelerate 1.15's launcher assumes when run without a config file (and warns about, see
# _validate_launch_command): one machine, no mixed precision of its own (the trainer's
# --fp16/--bf16 decide, through TrainingArguments) and no torch.compile backend.
LAUNCH_DEFAULTS = ("--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no")
DRY_RUN_TIMEOUT_S = 300  # imports torch and reads every record: seconds normally, minutes on a huge local set


# ---------------------------------------------------------------------------- form <-> config


def config_from_form(values: dict[str, Any], extra_yaml: str = "") -> dict[str, Any]:
    """The run's complete config from the form's values and the extra-options YAML.

    Every option the form shows is given; `extra_yaml` holds options the form does not show
    (`key: value` lines), whose unknown keys are refused by name rather than dropped.
    """
    given = {name: form.from_ui(name, value) for name, value in {**form.IMPLIED, **values}.items()}
    given.update(parse_extra(extra_yaml))
    if not given.get("model_name_or_path"):
        raise UserError("choose a model: a model folder (e.g. data/models/demo), a .gguf file or a hub id ORG/NAME")
    if not given.get("output_dir"):
        raise UserError("set the output directory of the run")
    return resolved_config(given, given)


def config_to_form(config: dict[str, Any]) -> tuple[list[Any], str]:
    """A config file as the form's values (missing keys: the schema default) and extra YAML.

    The extra YAML holds the options the form does not show, where they differ from their
    default, so that the form gives back the same config (config_from_form).
    """
    import yaml

    extra: dict[str, Any] = {}
    for key, value in config.items():
        if not known_option(key):
            raise UserError(f"unknown key '{key}' in the config file")
        if key not in form.FORM_FIELDS and key not in form.IMPLIED and value != option_spec(key).default:
            extra[key] = value
    updates = []
    for name in form.FORM_FIELDS:
        value = config.get(name, option_spec(name).default)
        if name == "dataset":
            value = [v.strip() for v in str(value or "").split(",") if v.strip()]
        elif name in form.DROPDOWN_TEXT_FIELDS and not value:
            value = form.NONE if name == "adapter_name_or_path" else ""
        else:
            value = form.to_ui(name, value)
        updates.append(value)
    return updates, (yaml.safe_dump(extra, sort_keys=False) if extra else "")


def parse_extra(text: str) -> dict[str, Any]:
    import yaml

    if not text or not text.strip():
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UserError(f"extra arguments are not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError("extra arguments must be `key: value` lines")
    for key in data:
        if not known_option(str(key)):
            raise UserError(f"unknown option '{key}' in extra arguments")
    return {str(k): v for k, v in data.items()}


def check_config(config: dict[str, Any], dataset_dir: Path) -> None:
    """The trainer's light refusals, run before Start creates a run folder or a process.

    The same functions as the trainer's (values by flag name, the model source, dataset names
    and their shape for the stage), so the UI and the CLI refuse alike; nothing heavy is imported.
    """
    from core.data.registry import check_stage, get_spec
    from core.model_source import check_model_source

    check_options(config)
    model = str(config.get("model_name_or_path") or "")
    check_model_source(model if _is_hub_id(model) else str(resolve_path(model)))
    data = Path(str(config.get("dataset_dir") or dataset_dir))
    data = data if data.is_absolute() else ROOT / data
    for name in [n.strip() for n in str(config.get("dataset") or "").split(",") if n.strip()]:
        check_stage(get_spec(data, name), str(config.get("stage") or "sft"))


def _is_hub_id(text: str) -> bool:
    from core.model_source import is_hub_id

    return is_hub_id(text) and not resolve_path(text).exists()


def config_yaml(config: dict[str, Any]) -> str:
    """The YAML that `python launch.py train file.yaml` accepts unchanged."""
    import yaml

    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)


# ---------------------------------------------------------------------------- the command


@dataclass
class LaunchSpec:
    """How to start one run: its folder, the config its run.yaml gets, and the launcher settings."""

    run_dir: Path
    config: Optional[dict[str, Any]]  # None: a resume, the run's own run.yaml stays as it is
    num_processes: int = 1
    accelerate_config: Optional[str] = None
    resume_from: Optional[str] = None  # a checkpoint folder
    extra_flags: tuple[str, ...] = ()  # a resumed CLI run whose run.yaml names another output_dir

    @classmethod
    def of_config(cls, config: dict[str, Any], num_processes: int = 1, accelerate_config: Optional[str] = None) -> "LaunchSpec":
        return cls(resolve_path(str(config["output_dir"])), config, num_processes, accelerate_config)

    @property
    def run_yaml(self) -> str:
        return display_path(self.run_dir / RUN_YAML)

    @property
    def launcher(self) -> dict[str, Any]:
        """The launcher settings launch.json records, so that a resume launches the same way."""
        return {"num_processes": self.num_processes, "accelerate_config": self.accelerate_config}


def accelerate_prefix() -> list[str]:
    """`accelerate` of this Python environment (so the run uses the app's packages)."""
    exe = Path(sys.executable).with_name("accelerate")
    if exe.exists():
        return [str(exe), "launch"]
    found = shutil.which("accelerate")
    if found:
        return [found, "launch"]
    return [sys.executable, "-m", "accelerate.commands.launch"]


def build_argv(spec: LaunchSpec) -> list[str]:
    """The exact argument list of `accelerate launch ... launch.py train RUN/run.yaml [--resume_from_checkpoint C]`.

    On a machine without GPUs, `--multi_gpu --num_processes N` runs N gloo ranks on the CPU;
    `--cpu` would start only one. N = 1 needs no `--multi_gpu`. Without a config file, accelerate
    fills in what it was not given and warns about each one in six lines at the top of every
    console: LAUNCH_DEFAULTS gives those values, the same ones it would pick.
    """
    argv = accelerate_prefix()
    if spec.accelerate_config:
        argv += ["--config_file", spec.accelerate_config]
    else:
        n = int(spec.num_processes or 1)
        if n < 1:
            raise UserError(f"number of processes must be 1 or more, got {n}")
        if n > 1:
            argv += ["--multi_gpu"]
        argv += ["--num_processes", str(n), *LAUNCH_DEFAULTS]
    argv += [LAUNCH_PY, "train", spec.run_yaml]
    if spec.resume_from:
        argv += ["--resume_from_checkpoint", spec.resume_from]
    return argv + list(spec.extra_flags)


def preview(argv: list[str]) -> str:
    return shlex.join(argv)


def dry_run(config: dict[str, Any]) -> str:
    """`launch.py train CONFIG --dry_run` on this config: the run.yaml the trainer resolves from
    it, or a UserError with the line the trainer refused it with. Writes only a temp file."""
    from core.rundir import last_error_line

    with tempfile.TemporaryDirectory(prefix="tuneforge-dry-run-") as tmp:
        path = Path(tmp) / RUN_YAML
        path.write_text(config_yaml(config), encoding="utf-8")
        try:
            proc = subprocess.run([sys.executable, str(ROOT / LAUNCH_PY), "train", str(path), "--dry_run"], cwd=ROOT,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DRY_RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise UserError(f"the dry run took over {DRY_RUN_TIMEOUT_S} s; Start checks the same before training") from None
    if proc.returncode != 0:
        line = last_error_line(proc.stderr) or f"the dry run ended with exit code {proc.returncode}"
        raise UserError(line.removeprefix("error:").strip())
    return proc.stdout
