"""The benchmarks stand alone: tests/bench builds its own assets and carries its own tools; the
LLaMA-Factory comparison is optional and set up from the README."""

from __future__ import annotations

import json

from tests.conftest import ROOT


def test_the_benchmark_builds_its_own_assets(tmp_path):
    from tests.bench.assets import build

    manifest = build(tmp_path / "assets")
    assert (manifest["records"], manifest["records_with_history"], manifest["records_chinese"]) == (2000, 500, 200)
    assert manifest["vocab_size"] == 8000 and manifest["model_parameters"] == 7_260_416
    assert json.loads((tmp_path / "assets" / "MANIFEST.json").read_text()) == manifest
    info = json.loads((tmp_path / "assets" / "data" / "dataset_info.json").read_text())
    assert info["sft_bench"]["file_name"] == "sft_bench.json"
    assert (tmp_path / "assets" / "tiny-llama" / "model.safetensors").is_file()


def test_nothing_points_outside_the_repository():
    """A clone has no ../shared: neither the benchmark code nor the README may need it."""
    files = [*(ROOT / "tests" / "bench").rglob("*.py"), *(ROOT / "tests" / "bench").rglob("*.sh"), ROOT / "README.md"]
    offenders = [str(path.relative_to(ROOT)) for path in files if "shared/bench" in path.read_text(encoding="utf-8")]
    assert not offenders, offenders
