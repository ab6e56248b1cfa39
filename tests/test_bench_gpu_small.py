"""tests/bench/gpu.py runs its LoRA and QLoRA code path on the CPU with a tiny shape and reports every figure."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import PYTHON, ROOT


def test_gpu_bench_small_reports_throughput_memory_and_mfu_fields(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [PYTHON, "-m", "tests.bench.gpu", "--small", "--steps", "2", "--warmup", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = {r["mode"]: r for r in json.loads(out.read_text(encoding="utf-8"))["reports"]}
    assert set(reports) == {"lora", "qlora"}
    for mode, r in reports.items():
        assert r["timed_steps"] == 2 and r["shape"] == "small" and r["device"] == "cpu"
        assert r["tokens_per_s"] > 0 and r["model_flops_per_token"] > 0 and r["achieved_tflops"] > 0
        assert r["loss"] is not None and 5.0 < r["loss"] < 8.0  # ln(1000) = 6.9 for random weights
        for key in ("mfu", "mfu_6n", "peak_memory_gb", "peak_tflops_bf16", "peak_rss_mb", "step_s_median"):
            assert key in r
    assert reports["lora"]["linear4bit_layers"] == 0
    assert reports["qlora"]["linear4bit_layers"] == 2 * 7  # every decoder Linear of the two layers
    assert "MFU" in proc.stdout


def test_bf16_peak_table_knows_the_usual_training_gpus():
    from tests.bench.gpu import peak_tflops

    assert peak_tflops("NVIDIA H100 80GB HBM3 SXM") == 989.0
    assert peak_tflops("NVIDIA H200") == 989.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops("Some Unknown Accelerator") is None
