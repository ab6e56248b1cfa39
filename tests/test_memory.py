"""The memory estimate (core/memory.py): shapes and parameter counts of the real models, the
verdict and its advice, and the estimate against the measured peak RSS of real training runs
(the demo model and SmolLM2-135M on the CPU), within ±30 %."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core.memory import (
    GB,
    MB,
    MemoryPool,
    RunPlan,
    check_fit,
    estimate,
    human,
    model_shape,
    trainable_params,
)
from tests.conftest import PYTHON, ROOT


def test_shapes_and_parameter_counts_are_the_models_own(demo_model, smollm2_model):
    demo, smol = model_shape(str(demo_model)), model_shape(str(smollm2_model))
    # What the trainer prints: "trainable parameters: 157,696 of 5,993,216" (LoRA r8 on every linear layer)
    assert demo.params == 5_993_216 - 157_696 and trainable_params(demo, RunPlan()) == 157_696
    assert smol.params == 136_957_248 - 2_442_240 and trainable_params(smol, RunPlan()) == 2_442_240
    assert (smol.layers, smol.hidden, smol.intermediate, smol.heads, smol.kv_heads, smol.vocab, smol.tied) == (
        30, 576, 1536, 9, 3, 49152, True)
    assert trainable_params(smol, RunPlan(finetuning_type="full")) == smol.params
    assert trainable_params(smol, RunPlan(finetuning_type="freeze", freeze_trainable_layers=2)) == 2 * smol.layer_params()


def test_a_hub_id_uses_its_cached_config_else_its_curated_size(tmp_path, monkeypatch, smollm2_model):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    guessed = model_shape("Qwen/Qwen2.5-7B-Instruct")
    assert not guessed.exact and 7e9 <= guessed.params <= 8e9
    snapshot = tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text((Path(smollm2_model) / "config.json").read_text())
    cached = model_shape("Qwen/Qwen2.5-7B-Instruct")
    assert cached.exact and cached.params == model_shape(str(smollm2_model)).params


def test_a_run_that_cannot_fit_is_flagged_with_changes_that_would(smollm2_model):
    ram = [MemoryPool("RAM", 16 * GB, 12 * GB, "ram")]
    shape = model_shape(str(smollm2_model))
    est = estimate(shape, RunPlan(finetuning_type="full", batch_size=64, cutoff_len=2048))
    verdict = check_fit(est, ram)
    assert not verdict.fits and verdict.needed > 12 * GB and verdict.pool == "RAM"
    fitting = [c for c in verdict.changes if c.fits]
    assert fitting and {c.code for c in fitting} >= {"batch", "cutoff"}
    assert all(c.needed <= 12 * GB for c in fitting) and all(c.needed < verdict.needed for c in verdict.changes)
    batch = next(c for c in fitting if c.code == "batch")
    assert batch.plan.batch_size < 64 and check_fit(estimate(shape, batch.plan), ram).fits
    # On GPUs each process needs its own GPU's memory: one too small GPU decides.
    gpus = [MemoryPool("GPU 0", 80 * GB, 79 * GB, "gpu"), MemoryPool("GPU 1", 24 * GB, 1 * GB, "gpu")]
    lora = estimate(shape, RunPlan(batch_size=4, cutoff_len=512, num_processes=2, device="cuda"))
    verdict = check_fit(lora, gpus)
    assert not verdict.fits and verdict.pool == "GPU 1" and verdict.needed == lora.per_process
    assert check_fit(estimate(shape, RunPlan(batch_size=4, cutoff_len=512, device="cuda")), gpus).fits


def test_checkpointing_is_read_under_both_names_as_transformers_reads_them():
    assert RunPlan.from_config({"activation_checkpointing": True}).checkpointing
    assert RunPlan.from_config({"gradient_checkpointing": True}).checkpointing
    assert not RunPlan.from_config({"activation_checkpointing": False, "gradient_checkpointing": True}).checkpointing
    assert not RunPlan.from_config({"gradient_checkpointing": False}).checkpointing
    assert RunPlan.from_config({}).checkpointing is None  # this tool's default: decided by the estimate


def test_each_gpu_is_read_from_nvidia_smi(monkeypatch):
    from core import memory

    out = "0, NVIDIA H200, 143771, 140000\n1, NVIDIA H200, 143771, 1000\n"
    monkeypatch.setattr(memory.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(memory.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, out, ""))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    pools = memory.available_memory()
    assert pools == [MemoryPool("GPU 1: NVIDIA H200", 143771 * MB, 1000 * MB, "gpu")]


# ---------------------------------------------------------------------------- against measured runs


def long_records_dataset(folder: Path) -> Path:
    """Records whose answers run past any cutoff used here, so that every batch is batch x cutoff
    tokens, as the estimate assumes (the longest batch a run can meet)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    words = ("the model learns a short answer from each prompt and the loss goes down over steps while memory stays "
             "flat river stone light window garden paper music number table").split()
    with open(folder / "long.jsonl", "w", encoding="utf-8") as fh:
        for i in range(32):
            fh.write(json.dumps({"instruction": f"Write text number {i}.",
                                 "output": " ".join(rng.choice(words) for _ in range(900))}) + "\n")
    (folder / "dataset_info.json").write_text(json.dumps({"long": {"file_name": "long.jsonl"}}))
    return folder


# The trainer is started by this small Python process, which reports the trainer's ru_maxrss.
# Why not wait4 on the trainer directly: Linux carries the parent's high-water RSS over exec into
# the child's ru_maxrss (fork and vfork alike), so a child of a pytest process that has grown to
# 1.25 GB "peaks" at 1.25 GB whatever it does. Spawned from this wrapper, it inherits ~10 MB.
MAXRSS_WRAPPER = """
import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(f"\\nMAXRSS_KB {usage.ru_maxrss}", flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss(argv: list[str]) -> tuple[int, str]:
    """(peak resident bytes of the trainer, its output), measured by MAXRSS_WRAPPER."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([PYTHON, "-c", MAXRSS_WRAPPER, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env)
    output = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, output[-3000:]
    kilobytes = int(output.rsplit("MAXRSS_KB ", 1)[1].split()[0])
    return kilobytes * 1024, output


# (model fixture, settings): LoRA, full training with checkpointing, LoRA without it, and a 4-bit base.
MEASURED = [
    ("demo_model", {"finetuning_type": "lora", "per_device_train_batch_size": 8, "cutoff_len": 256}),
    ("demo_model", {"finetuning_type": "full", "per_device_train_batch_size": 8, "cutoff_len": 256,
                    "activation_checkpointing": True}),
    ("smollm2_model", {"finetuning_type": "lora", "per_device_train_batch_size": 2, "cutoff_len": 128,
                       "activation_checkpointing": False}),
    ("smollm2_model", {"finetuning_type": "lora", "per_device_train_batch_size": 2, "cutoff_len": 128,
                       "quantization_bit": 4}),
]


@pytest.mark.slow
@pytest.mark.parametrize("model_fixture, settings", MEASURED,
                         ids=["demo-lora-8x256", "demo-full-ckpt-8x256", "smollm2-lora-nockpt-2x128", "smollm2-qlora4-2x128"])
def test_the_estimate_is_within_30_percent_of_a_real_runs_peak(request, tmp_path, model_fixture, settings):
    model = request.getfixturevalue(model_fixture)
    data = long_records_dataset(tmp_path / "data")
    flags = [f"--{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in settings.items()]
    argv = [PYTHON, str(ROOT / "launch.py"), "train", "--do_train", "--model_name_or_path", str(model),
            "--dataset_dir", str(data), "--dataset", "long", "--template", "llama2", "--max_steps", "2",
            "--logging_steps", "1", "--save_steps", "1000", "--output_dir", str(tmp_path / "run"), *flags]
    measured, output = peak_rss(argv)
    assert "[step 2/2]" in output, output[-2000:]
    est = estimate(model_shape(str(model)), RunPlan.from_config(settings))
    error = (est.per_process - measured) / measured
    parts = ", ".join(f"{key} {human(value)}" for key, value in est.parts.items())
    print(f"\n{request.node.callspec.id}: measured peak RSS {human(measured)}, estimate {human(est.per_process)} "
          f"({100 * error:+.1f} %): {parts}", file=sys.stderr)
    assert abs(error) <= 0.30, (human(measured), human(est.per_process), parts)


def test_checkpointing_left_unset_is_decided_by_what_a_batch_would_keep(smollm2_model, demo_model):
    smol, demo = model_shape(str(smollm2_model)), model_shape(str(demo_model))
    # ~5.2 GB of activations without it in fp32, ~2.6 GB in bf16 (a CPU with bf16 instructions)
    for bf16, least in ((False, 4 * GB), (True, 2 * GB)):
        big = estimate(smol, RunPlan(batch_size=8, cutoff_len=512, bf16=bf16))
        assert big.plan.checkpointing is True
        without = estimate(smol, replace(big.plan, checkpointing=False)).parts["activations"]
        assert without > least and big.parts["activations"] < without / 2
    assert estimate(smol, RunPlan(batch_size=2, cutoff_len=128)).plan.checkpointing is False
    assert estimate(demo, RunPlan(batch_size=8, cutoff_len=512)).plan.checkpointing is False


def test_the_web_uis_estimate_of_an_unset_bf16_imports_no_torch_and_takes_fp32(demo_model):
    """The trainer decides bf16 before it estimates; the web UI, which never imports torch, estimates
    an unset bf16 as fp32, the larger of the two."""
    code = ("import sys; from core.memory import RunPlan, estimate, model_shape; "
            f"shape = model_shape({str(demo_model)!r}); "
            "unset, fp32 = (estimate(shape, RunPlan(batch_size=8, cutoff_len=256, bf16=b)).per_process for b in (None, False)); "
            "print(unset == fp32, 'torch' in sys.modules)")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]
    bf16 = estimate(model_shape(str(demo_model)), RunPlan(batch_size=8, cutoff_len=256, bf16=True)).per_process
    fp32 = estimate(model_shape(str(demo_model)), RunPlan(batch_size=8, cutoff_len=256, bf16=False)).per_process
    assert bf16 < fp32
