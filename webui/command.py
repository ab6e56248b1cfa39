"""Form values <-> run config, and the one command that runs it.

There is one way from the form to the trainer: the form becomes the run's complete config
(core.args.resolved_config, what the trainer itself records), the runner writes it into the run
folder as run.yaml, and launches `accelerate launch ... launch.py train RUN/run.yaml`; a resume
adds `--resume_from_checkpoint CHECKPOINT`. The preview shows the very list the runner passes to
Popen, after the environment variables the runner adds (the chosen GPUs), so what the user reads
is what runs; `dry_run` has the trainer check the config and print what it resolves, without
training.

A run on several machines is started here as machine 0 (the main one, whose address the others
connect to); each other machine runs the same command with its own `--machine_rank`, which
`other_machine_commands` spells out.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from core.args import check_options, known_option, option_spec, resolved_config
from core.errors import UserError
from core.rundir import RUN_YAML
from webui import form
from webui.paths import ROOT, display_path, resolve_path
from webui.runner import RunRequest, command_line

LAUNCH_PY = "launch.py"
# What accelerate 1.15's launcher assumes when run without a config file (and warns about, see
# _validate_launch_command): one machine, no mixed precision of its own (the trainer's
# --fp16/--bf16 decide, through TrainingArguments) and no torch.compile backend.
ONE_MACHINE = ("--num_machines", "1")
NO_PRECISION_NO_DYNAMO = ("--mixed_precision", "no", "--dynamo_backend", "no")
LAUNCH_DEFAULTS = (*ONE_MACHINE, *NO_PRECISION_NO_DYNAMO)
DEFAULT_PORT = 29500  # accelerate's (and torchrun's) default rendezvous port on the main machine
# nvidia-smi numbers GPUs in PCI bus order, CUDA by default fastest first: on a machine with
# different GPU models the same index names different GPUs. The GPU picker shows nvidia-smi's
# indices, so the run gets CUDA's order set to match them.
GPU_ORDER_ENV = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
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


def check_hub_model(config: dict[str, Any]) -> None:
    """Start's one online check, after check_config: a hub id that is not cached is asked about
    once, so a typo or a gated model is refused in the trainer's own line before the run folder
    exists. No network (or HF_HUB_OFFLINE) passes: the trainer then says why in its own line."""
    from core.model_source import check_hub_access

    model = str(config.get("model_name_or_path") or "")
    if _is_hub_id(model):
        check_hub_access(model)


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
    num_processes: int = 1  # on each machine; 1 with GPUs chosen: one per chosen GPU (processes_per_machine)
    accelerate_config: Optional[str] = None
    resume_from: Optional[str] = None  # a checkpoint folder
    extra_flags: tuple[str, ...] = ()  # a resumed CLI run whose run.yaml names another output_dir
    gpus: str = ""  # CUDA_VISIBLE_DEVICES of the run ("0,1", nvidia-smi's indices); "": every GPU the app sees
    num_machines: int = 1  # 1: the accelerate config file's, else one
    main_process_ip: str = ""  # machine 0's address ("": the accelerate config file's)
    main_process_port: Optional[int] = DEFAULT_PORT  # None: the accelerate config file's, else DEFAULT_PORT
    machine_rank: int = 0  # this machine is 0; other_machine_commands builds the others'

    @classmethod
    def of_config(cls, config: dict[str, Any], num_processes: int = 1, accelerate_config: Optional[str] = None,
                  **launcher: Any) -> "LaunchSpec":
        """A new run of `config`; `launcher`: gpus, num_machines, main_process_ip, main_process_port."""
        return cls(resolve_path(str(config["output_dir"])), config, num_processes, accelerate_config, **launcher)

    @property
    def run_yaml(self) -> str:
        return display_path(self.run_dir / RUN_YAML)

    @property
    def launcher(self) -> dict[str, Any]:
        """The launcher settings launch.json records, so that a resume launches the same way."""
        return {"num_processes": self.num_processes, "accelerate_config": self.accelerate_config, "gpus": self.gpus,
                "num_machines": self.num_machines, "main_process_ip": self.main_process_ip,
                "main_process_port": self.main_process_port}


def launcher_from_form(nproc: Any, accel: Any, gpus: Any = None, machines: Any = 1, main_ip: Any = "",
                       main_port: Any = DEFAULT_PORT) -> dict[str, Any]:
    """The Distributed group's values as LaunchSpec fields (a blank number: its default), or a
    UserError naming the field. Ranges are checked where the command is built (build_argv)."""
    accel = accel.strip() if isinstance(accel, str) else None
    return {
        "num_processes": whole_number(nproc, "number of processes", 1),
        "accelerate_config": None if accel in (None, "", form.NONE) else accel,
        "gpus": parse_gpus(gpus),
        "num_machines": whole_number(machines, "number of machines", 1),
        "main_process_ip": str(main_ip or "").strip(),
        "main_process_port": whole_number(main_port, "main machine port", None),
    }


def whole_number(value: Any, what: str, blank: Optional[int]) -> Any:
    """An int from a number field, or `blank` for an empty one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return blank
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a whole number, got '{value}'") from None
    if not number.is_integer():
        raise UserError(f"{what} must be a whole number, got {value}")
    return int(number)


def parse_gpus(value: Any) -> str:
    """The GPU picker's choice (a list of indices, or "0,1" typed) as CUDA_VISIBLE_DEVICES; order kept, repeats dropped."""
    items = value if isinstance(value, (list, tuple)) else [value]
    found: list[str] = []
    for item in (part.strip() for item in items for part in str(item or "").split(",")):
        if not item:
            continue
        if not item.isdigit():
            raise UserError(f"GPUs: '{item}' is not a GPU index (0, 1, ... as nvidia-smi lists them)")
        if str(int(item)) not in found:
            found.append(str(int(item)))
    return ",".join(found)


def accelerate_prefix() -> list[str]:
    """`accelerate` of this Python environment (so the run uses the app's packages)."""
    exe = Path(sys.executable).with_name("accelerate")
    if exe.exists():
        return [str(exe), "launch"]
    found = shutil.which("accelerate")
    if found:
        return [found, "launch"]
    return [sys.executable, "-m", "accelerate.commands.launch"]


def accelerate_file(path: Optional[str]) -> dict[str, Any]:
    """An accelerate config file's settings ({} for none): its machines and processes decide the
    command's, unless the form overrides them."""
    import yaml

    if not path:
        return {}
    target = resolve_path(path)
    if not target.is_file():
        raise UserError(f"accelerate config file {path} does not exist")
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UserError(f"accelerate config file {path} cannot be read: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"accelerate config file {path} is not a YAML mapping of accelerate settings")
    return data


def _file_int(data: dict[str, Any], key: str) -> int:
    try:
        return max(1, int(data.get(key) or 1))
    except (TypeError, ValueError):
        return 1


def processes_per_machine(num_processes: int, gpus: str, file: dict[str, Any]) -> int:
    """Processes each machine starts: the form's number when above 1; else one per chosen GPU;
    else the accelerate config file's share (its num_processes counts every machine); else 1."""
    if num_processes > 1:
        return num_processes
    if gpus:
        return len(gpus.split(","))
    if file:
        return max(1, _file_int(file, "num_processes") // _file_int(file, "num_machines"))
    return 1


def machine_count(spec: LaunchSpec, file: dict[str, Any]) -> int:
    """Machines of the run: the form's number when above 1, else the accelerate config file's, else 1."""
    return spec.num_machines if spec.num_machines > 1 else _file_int(file, "num_machines") if file else 1


def build_argv(spec: LaunchSpec) -> list[str]:
    """The exact argument list of `accelerate launch ... launch.py train RUN/run.yaml [--resume_from_checkpoint C]`.

    `--num_processes` is accelerate's total over every machine: processes per machine × machines.
    On a machine without GPUs, `--multi_gpu --num_processes N` runs N gloo ranks on the CPU;
    `--cpu` would start only one. N = 1 needs no `--multi_gpu`. Without a config file, accelerate
    fills in what it was not given and warns about each one in six lines at the top of every
    console: LAUNCH_DEFAULTS gives those values, the same ones it would pick. A config file
    decides the distributed type (DDP, FSDP, DeepSpeed), precision and processes; what the form
    sets beyond it (processes, GPUs, machines) goes on the command line, where accelerate lets a
    flag win over the file's value.
    """
    check_launcher(spec)
    file = accelerate_file(spec.accelerate_config)
    machines = machine_count(spec, file)
    total = processes_per_machine(spec.num_processes, spec.gpus, file) * machines
    argv = accelerate_prefix()
    if spec.accelerate_config:
        argv += ["--config_file", spec.accelerate_config]
        if spec.num_processes > 1 or spec.gpus or spec.num_machines > 1:
            argv += ["--num_processes", str(total)]
        if spec.gpus and str(file.get("gpu_ids") or "all") != "all":
            # The file's gpu_ids would be set as CUDA_VISIBLE_DEVICES of the ranks, over the chosen GPUs.
            argv += ["--gpu_ids", "all"]
    else:
        if total > 1:
            argv += ["--multi_gpu"]
        argv += ["--num_processes", str(total)]
    if machines > 1:
        argv += machine_flags(spec, file, machines)
    elif not spec.accelerate_config:
        argv += ONE_MACHINE
    if not spec.accelerate_config:
        argv += NO_PRECISION_NO_DYNAMO
    argv += [LAUNCH_PY, "train", spec.run_yaml]
    if spec.resume_from:
        argv += ["--resume_from_checkpoint", spec.resume_from]
    return argv + list(spec.extra_flags)


def check_launcher(spec: LaunchSpec) -> None:
    """The launcher settings' ranges, refused in one line each before anything starts."""
    if spec.num_processes < 1:
        raise UserError(f"number of processes must be 1 or more, got {spec.num_processes}")
    if spec.num_machines < 1:
        raise UserError(f"number of machines must be 1 or more, got {spec.num_machines}")


def machine_flags(spec: LaunchSpec, file: dict[str, Any], machines: int) -> list[str]:
    """accelerate's flags of a run on several machines: how many, which one this is, and where
    machine 0 listens. The form's address and port override the config file's."""
    ip = spec.main_process_ip or str(file.get("main_process_ip") or "").strip()
    if not ip:
        raise UserError(f"a run on {machines} machines needs the main machine's IP address "
                        "(this machine, rank 0, which the others connect to)")
    check_host(ip)
    port = spec.main_process_port
    if port is None:
        port = whole_number(file.get("main_process_port", DEFAULT_PORT), "main_process_port of the config file", None)
    if port is None or not 1 <= port <= 65535:
        raise UserError(f"main machine port must be from 1 to 65535, got {port if port is not None else 'nothing'}")
    flags = ["--num_machines", str(machines), "--machine_rank", str(spec.machine_rank),
             "--main_process_ip", ip, "--main_process_port", str(port)]
    deepspeed = file.get("deepspeed_config") if isinstance(file.get("deepspeed_config"), dict) else {}
    if file.get("distributed_type") == "DEEPSPEED" and not deepspeed.get("deepspeed_multinode_launcher"):
        # DeepSpeed's default (pdsh) starts every machine from this one over ssh with a hostfile;
        # "standard" is torchrun on each machine, the same command everywhere as for DDP and FSDP.
        flags += ["--deepspeed_multinode_launcher", "standard"]
    return flags


def check_host(text: str) -> None:
    """An IP address or a host name, nothing a shell or torchrun would read as more."""
    try:
        ipaddress.ip_address(text)
        return
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(text) or re.fullmatch(r"[\d.]+", text):
        raise UserError(f"main machine address '{text}' is not an IP address or host name")


def launch_env(spec: LaunchSpec) -> dict[str, str]:
    """The environment variables the run gets beyond the app's own: the chosen GPUs, if any."""
    return {**GPU_ORDER_ENV, "CUDA_VISIBLE_DEVICES": spec.gpus} if spec.gpus else {}


def preview(argv: list[str], env: Optional[dict[str, str]] = None) -> str:
    """The command line the runner starts: `VAR=value ... accelerate launch ...` (webui.runner.command_line)."""
    return command_line(argv, env)


def other_machine_commands(spec: LaunchSpec) -> list[str]:
    """For a run on several machines, the command for machines 1..N-1, in order: the same launch
    with that machine's --machine_rank, from a copy of this repository at the same path."""
    machines = machine_count(spec, accelerate_file(spec.accelerate_config))
    cd = f"cd {shlex.quote(str(ROOT))} && "
    return [cd + preview(build_argv(replace(spec, machine_rank=rank)), launch_env(spec)) for rank in range(1, machines)]


def run_request(spec: LaunchSpec, resume: bool = False) -> RunRequest:
    """What the runner starts for `spec`: its argv and environment, and the launcher settings (with
    the other machines' commands) that launch.json records."""
    launcher = dict(spec.launcher)
    others = other_machine_commands(spec)
    if others:
        launcher["other_machines"] = others
    return RunRequest(spec.run_dir, build_argv(spec), spec.config or {}, launcher, resume=resume, env=launch_env(spec))


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
