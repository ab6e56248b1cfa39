"""Form values -> run config -> the argv list that is launched.

The preview shows `shlex.join(argv)` of the very list the runner passes to Popen, so what the
user reads is what runs. Values are argv items, never parsed by a shell.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from core.errors import UserError
from webui import form

ROOT = Path(__file__).resolve().parent.parent  # the repository: launch.py lives here
LAUNCH_PY = "launch.py"


@dataclass
class LaunchSpec:
    """How to start one run: its config (what run.yaml / a saved YAML holds) and launcher settings."""

    config: dict[str, Any]
    num_processes: int = 1
    accelerate_config: Optional[str] = None
    extra_flags: list[str] = field(default_factory=list)  # e.g. --resume_from_checkpoint

    @property
    def output_dir(self) -> str:
        return str(self.config["output_dir"])


def config_from_form(values: dict[str, Any], extra_yaml: str = "") -> dict[str, Any]:
    """The run config: every option that differs from its default, plus ALWAYS_SENT.

    `extra_yaml` holds options the form does not show (`key: value` lines); unknown keys are
    refused by name rather than dropped.
    """
    values = {"do_train": True, **values}  # the Train tab always trains
    config: dict[str, Any] = {}
    for name in form.ALWAYS_SENT:  # first, so a saved config reads top-down
        value = form.from_ui(name, values.get(name))
        if value is not None and value is not False:
            config[name] = value
    for name, ui_value in values.items():
        if name in form.ALWAYS_SENT:
            continue
        value = form.from_ui(name, ui_value)
        if value is not None and not form.is_default(name, value):
            config[name] = value
    config.update(parse_extra(extra_yaml))
    if not config.get("model_name_or_path"):
        raise UserError("choose a model: the folder of a base model (e.g. data/models/demo)")
    if not config.get("output_dir"):
        raise UserError("set the output directory of the run")
    return config


def check_config(config: dict[str, Any], dataset_dir: Path) -> None:
    """The trainer's light refusals, run before Start creates a run folder or a process.

    The same functions as the trainer's (values by flag name, the model folder, dataset names
    and their shape for the stage), so the UI and the CLI refuse alike; nothing heavy is imported.
    """
    from core.args import check_options
    from core.data.registry import check_stage, get_spec
    from core.model import check_model_dir

    check_options(dict(config))
    model = Path(str(config.get("model_name_or_path") or ""))
    check_model_dir(str(model if model.is_absolute() else ROOT / model))
    data = Path(str(config.get("dataset_dir") or dataset_dir))
    data = data if data.is_absolute() else ROOT / data
    for name in [n.strip() for n in str(config.get("dataset") or "").split(",") if n.strip()]:
        check_stage(get_spec(data, name), str(config.get("stage") or "sft"))


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
        if not form.known_option(str(key)):
            raise UserError(f"unknown option '{key}' in extra arguments")
    return {str(k): v for k, v in data.items()}


def _flag_items(config: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in config.items():
        if value is None:
            continue
        if value is True:
            argv.append(f"--{key}")
        elif value is False:
            argv += [f"--{key}", "false"]
        elif isinstance(value, (list, tuple)):
            argv += [f"--{key}", ",".join(map(str, value))]
        else:
            argv += [f"--{key}", str(value)]
    return argv


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
    """The exact argument list of `accelerate launch ... launch.py train ...`.

    On a machine without GPUs, `--multi_gpu --num_processes N` runs N gloo ranks on the CPU;
    `--cpu` would start only one (FACTS). N = 1 needs no `--multi_gpu`.
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
        argv += ["--num_processes", str(n)]
    argv += [LAUNCH_PY, "train"]
    argv += _flag_items(spec.config)
    argv += list(spec.extra_flags)
    return argv


def preview(argv: list[str]) -> str:
    return shlex.join(argv)


def config_yaml(config: dict[str, Any]) -> str:
    """The YAML that `python launch.py train file.yaml` accepts unchanged."""
    import yaml

    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
