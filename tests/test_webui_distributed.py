"""The Train tab's Distributed group: the GPUs a run uses (CUDA_VISIBLE_DEVICES in its environment
and in the preview), several machines (accelerate's machine flags, and the exact command for each
other machine), an accelerate config file beside them, one-line refusals, and a resume that
launches the same way."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace

import pytest

from core import rundir
from core.errors import UserError
from core.memory import MemoryPool
from webui import choices, command
from webui.context import AppContext
from webui.paths import ROOT
from webui.runner import Runner
from webui.tabs.runs import handlers as runs
from webui.tabs.train import handlers as train
from webui.tabs.train import memory
from tests.test_webui_command import run_to_end

CONFIG = {"stage": "sft", "model_name_or_path": "data/models/demo", "output_dir": "saves/x"}
GB = 1024 ** 3


def spec(*args, **launcher) -> command.LaunchSpec:
    return command.LaunchSpec.of_config(CONFIG, *args, **launcher)


def value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def accelerate_reads(argv: list[str]):
    """What accelerate 1.15 makes of our launch flags (parsed and validated as `accelerate launch`
    does, then the torchrun settings of its multi-GPU launcher), without starting anything."""
    from unittest import mock

    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv[argv.index("launch") + 1:]))
    with mock.patch("accelerate.utils.launch.is_port_in_use", return_value=False):  # whatever this host listens on
        env = prepare_multi_gpu_env(args)
    return args, env


# ---------------------------------------------------------------------------- GPUs


def test_chosen_gpus_are_the_runs_cuda_visible_devices_and_the_preview_shows_them():
    chosen = spec(gpus="0,1")
    argv, env = command.build_argv(chosen), command.launch_env(chosen)
    assert env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,1"}
    shown = command.preview(argv, env)
    assert shown.startswith("CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0,1 ")
    assert shlex.split(shown) == [f"{k}={v}" for k, v in env.items()] + argv
    # Left at 1 process, several GPUs: one process per chosen GPU.
    assert "--multi_gpu" in argv and value(argv, "--num_processes") == "2"
    # No GPU chosen: the app's own environment, nothing added.
    assert command.launch_env(spec()) == {} and not command.preview(command.build_argv(spec()), {}).startswith("CUDA")


def test_processes_per_machine_follow_the_chosen_gpus_unless_a_number_is_set():
    assert value(command.build_argv(spec(gpus="3")), "--num_processes") == "1"
    assert "--multi_gpu" not in command.build_argv(spec(gpus="3"))
    assert value(command.build_argv(spec(gpus="0,1,2,3")), "--num_processes") == "4"
    assert value(command.build_argv(spec(2, gpus="0,1,2,3")), "--num_processes") == "2"  # the number set wins


def test_the_gpu_picker_reads_nvidia_smis_indices_and_the_form_keeps_them_in_order():
    launcher = command.launcher_from_form(1, "none", ["2", "0", "2"], 1, "", 29500)
    assert launcher["gpus"] == "2,0"  # CUDA numbers the chosen GPUs in this order; a repeat is dropped
    assert command.launcher_from_form(1, "none", "1, 3", 1, "", 29500)["gpus"] == "1,3"  # typed
    with pytest.raises(UserError, match="'x' is not a GPU index"):
        command.launcher_from_form(1, "none", ["0", "x"])


def test_a_machine_without_gpus_offers_none(monkeypatch):
    monkeypatch.setattr("core.memory._nvidia_smi", lambda: [])
    assert choices.gpus() == []
    pools = [MemoryPool("GPU 0: NVIDIA H200", 140 * GB, 139 * GB, "gpu"), MemoryPool("GPU 1: NVIDIA H200", 140 * GB, 2 * GB, "gpu")]
    monkeypatch.setattr("core.memory._nvidia_smi", lambda: pools)
    assert [index for _, index in choices.gpus()] == ["0", "1"]


def test_the_memory_estimate_counts_the_chosen_gpus_only():
    pools = [MemoryPool("GPU 0: A", 80 * GB, 79 * GB, "gpu"), MemoryPool("GPU 1: B", 24 * GB, 2 * GB, "gpu"),
             MemoryPool("GPU 2: C", 80 * GB, 70 * GB, "gpu")]
    assert memory.chosen_pools(pools, ["2", "0"]) == [pools[2], pools[0]]
    assert memory.chosen_pools(pools, []) == pools
    assert memory.processes(1, "none", ["0", "2"]) == 2  # one process per chosen GPU, as the command starts
    assert memory.processes(1, "examples/accelerate/multi_node.yaml") == 2  # its 4 processes are over 2 machines


def test_the_run_gets_the_gpus_in_its_environment_and_launch_json_the_previewed_line(tmp_path):
    request = command.run_request(command.LaunchSpec(tmp_path / "saves" / "r", {}, gpus="1,0"))
    previewed = command.preview(request.argv, request.env)
    # A stand-in for accelerate that prints the GPUs it was given.
    probe = [sys.executable, "-c", "import os; print('visible=' + os.environ['CUDA_VISIBLE_DEVICES'])"]
    runner = Runner(tmp_path / "saves", tmp_path, env={"CUDA_VISIBLE_DEVICES": "7", "PATH": "/usr/bin:/bin"}, poll_s=0.1)
    run_to_end(runner, replace(request, argv=probe))
    console = (request.run_dir / "console.log").read_text()
    assert console.startswith("$ CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1,0 ")
    assert "visible=1,0" in console  # the chosen GPUs win over the app's own
    launch = json.loads((request.run_dir / "launch.json").read_text())
    assert launch["env"] == request.env and launch["gpus"] == "1,0"
    assert launch["command"] == command.preview(probe, request.env)
    assert previewed.endswith(shlex.join(request.argv))


# ---------------------------------------------------------------------------- several machines


def test_two_machines_add_accelerates_machine_flags_and_count_processes_over_both():
    two = spec(2, num_machines=2, main_process_ip="10.0.0.5", main_process_port=29555)
    argv = command.build_argv(two)
    assert "--multi_gpu" in argv and value(argv, "--num_processes") == "4"  # accelerate's total: 2 per machine
    assert [value(argv, f) for f in ("--num_machines", "--machine_rank", "--main_process_ip", "--main_process_port")] \
        == ["2", "0", "10.0.0.5", "29555"]
    assert argv.count("--num_machines") == 1
    args, env = accelerate_reads(argv)
    assert (args.nproc_per_node, args.nnodes, args.node_rank) == ("2", "2", 0)
    assert args.rdzv_endpoint == "10.0.0.5:29555"
    # One process per machine: still --multi_gpu (two ranks in all).
    one_each = command.build_argv(spec(num_machines=2, main_process_ip="10.0.0.5"))
    assert "--multi_gpu" in one_each and value(one_each, "--num_processes") == "2"


def test_each_other_machine_gets_the_same_command_with_its_rank_from_this_folder():
    three = spec(gpus="0,1", num_machines=3, main_process_ip="node0", main_process_port=29600)
    here = command.build_argv(three)
    others = command.other_machine_commands(three)
    assert len(others) == 2
    for rank, line in enumerate(others, start=1):
        cd, _, rest = line.partition(" && ")
        assert shlex.split(cd) == ["cd", str(ROOT)]  # run.yaml, launch.py and the paths in it are relative to it
        words = shlex.split(rest)
        assert words[:2] == ["CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=0,1"]
        theirs = words[2:]
        assert value(theirs, "--machine_rank") == str(rank)
        assert theirs == here[:here.index("--machine_rank") + 1] + [str(rank)] + here[here.index("--machine_rank") + 2:]
        args, _ = accelerate_reads(theirs)
        assert (args.nproc_per_node, args.nnodes, args.node_rank) == ("2", "3", rank)
    assert command.other_machine_commands(spec(gpus="0,1")) == []  # one machine: nothing to run elsewhere


@pytest.mark.parametrize("launcher, says", [
    (dict(num_machines=0), "number of machines must be 1 or more, got 0"),
    (dict(num_machines=2), "needs the main machine's IP address"),
    (dict(num_machines=2, main_process_ip="10.0.0.5", main_process_port=70000), "port must be from 1 to 65535, got 70000"),
    (dict(num_machines=2, main_process_ip="10.0.0.5", main_process_port=0), "port must be from 1 to 65535, got 0"),
    (dict(num_machines=2, main_process_ip="10.0.0.5; rm -rf /"), "is not an IP address or host name"),
    (dict(num_machines=2, main_process_ip="10.0.0.300"), "is not an IP address or host name"),
    (dict(accelerate_config="examples/accelerate/missing.yaml"), "does not exist"),
])
def test_settings_that_cannot_run_are_refused_in_one_line(launcher, says):
    with pytest.raises(UserError) as err:
        command.build_argv(spec(**launcher))
    assert says in str(err.value) and "\n" not in str(err.value)


def test_form_values_that_are_not_whole_numbers_are_refused_by_name():
    with pytest.raises(UserError, match="number of machines must be a whole number, got 1.5"):
        command.launcher_from_form(1, "none", None, 1.5)
    assert command.launcher_from_form(None, "none", None, None, " 10.0.0.5 ", "29501") == {
        "num_processes": 1, "accelerate_config": None, "gpus": "", "num_machines": 1,
        "main_process_ip": "10.0.0.5", "main_process_port": 29501}


# ---------------------------------------------------------------------------- with an accelerate config file


def test_a_config_file_decides_alone_and_what_the_form_sets_beyond_it_overrides_it_on_the_command_line():
    ddp = "examples/accelerate/ddp.yaml"  # 2 processes on 1 machine
    alone = command.build_argv(spec(accelerate_config=ddp))
    assert "--num_processes" not in alone and "--num_machines" not in alone and "--multi_gpu" not in alone
    two = command.build_argv(spec(accelerate_config=ddp, num_machines=2, main_process_ip="10.0.0.5"))
    assert "--multi_gpu" not in two  # the file's distributed type stands (--multi_gpu would turn FSDP into DDP)
    assert value(two, "--num_processes") == "4" and value(two, "--num_machines") == "2"
    args, _ = accelerate_reads(two)
    assert (args.nproc_per_node, args.nnodes, args.node_rank) == ("2", "2", 0)  # the flags won over the file
    fsdp = command.build_argv(spec(accelerate_config="examples/accelerate/fsdp.yaml", gpus="0,1,2"))
    args, _ = accelerate_reads(fsdp)
    assert args.use_fsdp and args.nproc_per_node == "3"


def test_a_multi_machine_config_file_shows_the_other_machines_command_with_its_own_address():
    multi = spec(accelerate_config="examples/accelerate/multi_node.yaml")  # 2 machines, 4 processes, 192.0.2.10
    argv = command.build_argv(multi)
    assert value(argv, "--machine_rank") == "0" and value(argv, "--main_process_ip") == "192.0.2.10"
    [other] = command.other_machine_commands(multi)
    args, _ = accelerate_reads(shlex.split(other.partition(" && ")[2]))
    assert (args.nproc_per_node, args.nnodes, args.node_rank) == ("2", "2", 1)
    # The form's address overrides the file's.
    moved = command.build_argv(replace(multi, main_process_ip="10.9.8.7"))
    assert value(moved, "--main_process_ip") == "10.9.8.7"


def test_deepspeed_on_several_machines_runs_the_same_command_on_each():
    argv = command.build_argv(spec(accelerate_config="examples/accelerate/deepspeed_zero2.yaml", num_machines=2,
                                   main_process_ip="10.0.0.5"))
    assert value(argv, "--deepspeed_multinode_launcher") == "standard"  # not pdsh over ssh from this machine
    assert "--deepspeed_multinode_launcher" not in command.build_argv(
        spec(accelerate_config="examples/accelerate/deepspeed_zero2.yaml"))


def test_chosen_gpus_win_over_a_config_files_gpu_ids(tmp_path):
    own = tmp_path / "ids.yaml"
    own.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_machines: 1\n"
                   "num_processes: 2\ngpu_ids: 0,1\nmixed_precision: 'no'\nuse_cpu: false\n")
    argv = command.build_argv(spec(accelerate_config=str(own), gpus="2,3"))
    assert value(argv, "--gpu_ids") == "all"
    _, env = accelerate_reads(argv)
    assert "CUDA_VISIBLE_DEVICES" not in env  # the ranks keep the run's CUDA_VISIBLE_DEVICES=2,3
    assert "--gpu_ids" not in command.build_argv(spec(accelerate_config="examples/accelerate/ddp.yaml", gpus="2,3"))


# ---------------------------------------------------------------------------- resume


def test_a_resume_launches_with_the_same_gpus_and_machines(tmp_path):
    run = tmp_path / "r"
    first = command.LaunchSpec(run, {}, 2, None, gpus="0,1", num_machines=2, main_process_ip="10.0.0.5",
                               main_process_port=29555)
    request = command.run_request(first)
    run.mkdir()
    (run / "run.yaml").write_text(f"stage: sft\nmodel_name_or_path: data/models/demo\noutput_dir: {run}\n")
    rundir.write_status(run, "aborted")
    rundir.update_launch(run, argv=request.argv, env=request.env, **request.launcher)  # as the runner records it
    assert len(request.launcher["other_machines"]) == 1
    ckpt = run / "checkpoint-4"
    resumed = runs.resume_spec(run, ckpt)
    assert command.build_argv(resumed) == request.argv + ["--resume_from_checkpoint", str(ckpt)]
    assert command.launch_env(resumed) == request.env
    [other] = command.other_machine_commands(resumed)
    assert other == request.launcher["other_machines"][0] + f" --resume_from_checkpoint {ckpt}"


def test_a_run_recorded_before_these_settings_resumes_on_one_machine_with_every_gpu(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "run.yaml").write_text(f"stage: sft\noutput_dir: {run}\n")
    rundir.write_status(run, "aborted")
    rundir.update_launch(run, num_processes=2, accelerate_config=None)
    resumed = runs.resume_spec(run, run / "checkpoint-1")
    assert command.launch_env(resumed) == {} and value(command.build_argv(resumed), "--num_machines") == "1"


# ---------------------------------------------------------------------------- the Train tab's handlers


def _form_values():
    from webui import form

    values = {name: form.to_ui(name, form.default_value(name)) for name in form.FORM_FIELDS}
    values.update(model_name_or_path="data/models/demo", output_dir="saves/x")
    return tuple(values[name] for name in form.FORM_FIELDS)


def test_the_tab_shows_the_command_here_and_each_other_machines_or_one_line_why_not(tmp_path):
    ctx = AppContext(tmp_path / "saves", ROOT / "data", tmp_path / "m", runner=None, demo=None)
    here, others = train.follow_launcher(ctx, "en", "", 1, "none", [], 2, "10.0.0.5", 29555, *_form_values())
    assert "--num_machines 2 --machine_rank 0 --main_process_ip 10.0.0.5 --main_process_port 29555" in here
    assert "A run on 2 machines" in others and "Machine 1" in others and "saves/x/run.yaml" in others
    assert "--machine_rank 1 --main_process_ip 10.0.0.5" in others
    here, why = train.follow_launcher(ctx, "en", "", 1, "none", [], 2, "10.0.0.5", 70000, *_form_values())
    assert here == "" and why == "Cannot launch: main machine port must be from 1 to 65535, got 70000"
    here, others = train.follow_launcher(ctx, "zh", "", 1, "none", [], 1, "", 29500, *_form_values())
    assert "launch.py train saves/x/run.yaml" in here and others == ""
