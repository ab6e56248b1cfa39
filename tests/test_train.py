"""The trainer end to end on the demo model, on this CPU: real runs, real losses, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core import rundir
from tests.conftest import ACCELERATE, PYTHON, ROOT, TWO_PROCESS_LAUNCH, assert_one_line_refusal, example_argv, run_cli

pytestmark = pytest.mark.slow


def train_argv(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--model_name_or_path", str(model), "--dataset_dir", str(data), "--output_dir", str(out),
        "--do_train", "--template", "llama2", *extra,
    ]


def rows(run_dir: Path) -> list[dict]:
    return rundir.read_log_rows(run_dir)


def test_seed_command_verbatim_leaves_a_loadable_adapter(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "output"
    seed = (
        f"{ACCELERATE} launch launch.py train --stage sft --model_name_or_path {demo_model} --do_train "
        "--dataset alpaca_demo --finetuning_type lora --quantization_bit 4 --overwrite_cache "
        f"--output_dir {out} --per_device_train_batch_size 8 --gradient_accumulation_steps 4 "
        "--lr_scheduler_type cosine --logging_steps 10 --save_steps 1000 --learning_rate 5e-5 "
        "--num_train_epochs 2.0 --plot_loss --fp16 --template llama2 --lora_target q_proj,v_proj"
    ).split()
    result = run_cli([*seed, "--dataset_dir", str(dataset_dir), "--max_steps", "2", "--logging_steps", "1"])
    assert result.returncode == 0, result.output[-3000:]
    assert "--fp16 needs a GPU and none was found: training in fp32 instead." in result.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["error"] is None
    logged = rows(out)
    assert [r["step"] for r in logged] == [1, 2]
    assert set(rundir.LOG_FIELDS) <= set(logged[0])
    assert (out / "training_loss.html").stat().st_size > 10_000
    assert (out / "console.log").read_text().count("[step 2/2]") == 1

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(demo_model, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, out)
    assert sorted(model.peft_config["default"].target_modules) == ["q_proj", "v_proj"]


def test_lora_sft_lowers_the_loss_and_reproduces_a_training_answer(demo_model, demo_sft_run):
    out = demo_sft_run  # examples/train/sft_lora.yaml (tests/conftest.py)
    losses = [r["loss"] for r in rows(out) if r.get("loss") is not None]
    assert len(losses) >= 10
    assert losses[-1] < 0.25 * losses[0], losses

    from core.chat import generate_text, load_chat_model

    session = load_chat_model(str(demo_model), str(out), template="llama2")
    records = json.loads((ROOT / "data" / "demo_sft.json").read_text())
    identity = [r for r in records if r["instruction"] in ("Who are you?", "你是什么模型？") and not r.get("history")]
    assert len(identity) == 2
    for record in identity:
        messages = [{"role": "user", "content": record["instruction"]}]
        trained = generate_text(session, messages, do_sample=False, max_new_tokens=48)
        base = generate_text(session, messages, do_sample=False, max_new_tokens=48, use_adapter=False)
        assert trained.strip() == record["output"].strip()
        assert base.strip() != record["output"].strip()


def test_pretraining_on_text_blocks(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "pt"
    result = run_cli(example_argv("pt_lora.yaml", out, "--model_name_or_path", str(demo_model), "--cutoff_len", "64",
                                  "--max_steps", "3", "--logging_steps", "1", data=dataset_dir))
    assert result.returncode == 0, result.output[-3000:]
    assert len(rows(out)) == 3 and (out / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("finetuning", ["freeze", "full"])
def test_freeze_and_full_finetuning_train_and_save(demo_model, dataset_dir, tmp_path, finetuning):
    out = tmp_path / finetuning
    result = run_cli(train_argv(
        demo_model, dataset_dir, out, "--dataset", "alpaca_demo", "--finetuning_type", finetuning,
        "--max_steps", "2", "--logging_steps", "1", "--cutoff_len", "128",
    ))
    assert result.returncode == 0, result.output[-3000:]
    assert (out / "model.safetensors").exists()
    assert not (out / "adapter_config.json").exists()


def test_the_same_seed_trains_the_same_adapter(demo_model, dataset_dir, tmp_path):
    """LoRA's random init follows --seed: the same seed gives the same weights, another seed others."""
    from safetensors.torch import load_file

    def adapter(seed: str, name: str) -> dict:
        out = tmp_path / name
        result = run_cli(train_argv(demo_model, dataset_dir, out, "--dataset", "alpaca_demo", "--max_steps", "2",
                                    "--cutoff_len", "64", "--seed", seed))
        assert result.returncode == 0, result.output[-3000:]
        return load_file(str(out / "adapter_model.safetensors"))

    first, again, other = adapter("3", "a"), adapter("3", "b"), adapter("4", "c")
    assert first.keys() == again.keys() == other.keys()
    assert all((first[k] == again[k]).all() for k in first)
    assert any((first[k] != other[k]).any() for k in first)


def test_val_size_gives_an_eval_loss_curve(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "eval"
    result = run_cli(train_argv(
        demo_model, dataset_dir, out, "--dataset", "demo_sft", "--val_size", "0.1", "--max_steps", "4",
        "--logging_steps", "2", "--cutoff_len", "128", "--plot_loss",
    ))
    assert result.returncode == 0, result.output[-3000:]
    evals = [r for r in rows(out) if r.get("eval_loss") is not None]
    assert len(evals) == 2
    html = (out / "training_loss.html").read_text()
    assert "eval_loss" in html or "eval loss" in html


def test_two_processes_share_one_log_and_end_with_equal_weights(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "ddp"
    argv = [*TWO_PROCESS_LAUNCH, "launch.py", *train_argv(
        demo_model, dataset_dir, out, "--dataset", "alpaca_demo", "--max_steps", "3", "--logging_steps", "1",
        "--cutoff_len", "128", "--per_device_train_batch_size", "2",
    )]
    result = run_cli(argv)
    assert result.returncode == 0, result.output[-3000:]
    assert [r["step"] for r in rows(out)] == [1, 2, 3]  # written once, by rank 0
    status = json.loads((out / "status.json").read_text())
    checksums = status["rank_weight_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert json.loads((out / "launch.json").read_text())["world_size"] == 2


def test_two_launchers_on_one_host_form_a_two_machine_run(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "multi"
    port = str(29600 + os.getpid() % 200)
    procs = []
    for rank in (0, 1):
        argv = [ACCELERATE, "launch", "--multi_gpu", "--num_machines", "2", "--machine_rank", str(rank),
                "--main_process_ip", "127.0.0.1", "--main_process_port", port, "--num_processes", "2",
                "launch.py", *train_argv(demo_model, dataset_dir, out, "--dataset", "alpaca_demo", "--max_steps", "2",
                                         "--logging_steps", "1", "--cutoff_len", "128", "--per_device_train_batch_size", "2")]
        procs.append(subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outputs)
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished"
    assert len(status["rank_weight_checksums"]) == 2 and len(set(status["rank_weight_checksums"])) == 1


def test_sigterm_saves_a_checkpoint_and_resume_continues(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "abort"
    argv = [PYTHON, "launch.py", *train_argv(
        demo_model, dataset_dir, out, "--dataset", "demo_sft", "--max_steps", "400", "--logging_steps", "1",
        "--cutoff_len", "128", "--save_steps", "1000",
    )]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and len(rows(out)) < 3:
        time.sleep(0.2)
    assert len(rows(out)) >= 3, proc.communicate(timeout=5)[0][-3000:] if proc.poll() is not None else "no log rows"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=120)
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "aborted"
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, "SIGTERM must leave a checkpoint"
    saved_step = int(checkpoints[-1].name.split("-")[1])
    assert saved_step >= 3

    result = run_cli(train_argv(
        demo_model, dataset_dir, out, "--dataset", "demo_sft", "--max_steps", str(saved_step + 2),
        "--logging_steps", "1", "--cutoff_len", "128", "--resume_from_checkpoint", str(checkpoints[-1]),
    ))
    assert result.returncode == 0, result.output[-3000:]
    steps = [r["step"] for r in rows(out)]
    assert steps[-2:] == [saved_step + 1, saved_step + 2]
    assert steps == sorted(set(steps)), "the resumed log continues the step count without duplicates"
    assert json.loads((out / "status.json").read_text())["state"] == "finished"


def test_a_finished_run_is_not_overwritten_by_accident(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "once"
    args = train_argv(demo_model, dataset_dir, out, "--dataset", "alpaca_demo", "--max_steps", "1", "--logging_steps", "1", "--cutoff_len", "64")
    assert run_cli(args).returncode == 0
    before = (out / "trainer_log.jsonl").read_bytes()
    line = assert_one_line_refusal(run_cli(args))
    assert "already holds a run" in line and "--overwrite_output_dir" in line
    assert (out / "trainer_log.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--dataset", "comparison_demo"], "'comparison_demo' is a ranking"),
        (["--dataset", "no_such_set"], "no_such_set"),
        (["--stage", "rm", "--dataset", "alpaca_demo"], "alpaca_demo"),
    ],
)
def test_wrong_datasets_are_refused_before_the_run_starts(demo_model, dataset_dir, tmp_path, extra, expected):
    registry = (dataset_dir / "dataset_info.json").read_bytes()
    out = tmp_path / "bad"
    line = assert_one_line_refusal(run_cli(train_argv(demo_model, dataset_dir, out, *extra, "--max_steps", "1")))
    assert expected in line
    assert not out.exists(), "a refused run writes nothing"
    assert (dataset_dir / "dataset_info.json").read_bytes() == registry


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--lora_target", "w_nonexistent"], "--lora_target w_nonexistent: the model has no such module"),
        (["--finetuning_type", "freeze", "--freeze_trainable_layers", "99"], "--freeze_trainable_layers 99"),
    ],
)
def test_model_mismatches_fail_the_run_in_one_line(demo_model, dataset_dir, tmp_path, extra, expected):
    out = tmp_path / "bad"
    result = run_cli(train_argv(demo_model, dataset_dir, out, "--dataset", "alpaca_demo", *extra, "--max_steps", "1"))
    assert result.returncode != 0 and "Traceback" not in result.output
    assert expected in result.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and expected in status["error"]


def test_missing_model_folder_is_refused_before_anything_is_written(dataset_dir, tmp_path):
    out = tmp_path / "nomodel"
    line = assert_one_line_refusal(run_cli(train_argv(tmp_path / "nope", dataset_dir, out, "--dataset", "alpaca_demo")))
    assert "does not exist" in line
