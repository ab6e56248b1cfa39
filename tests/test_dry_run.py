"""`launch.py train CONFIG --dry_run`: every check of a run, the config it would record, nothing
written. Every example config passes it (as torchtune's tests/recipes/test_configs.py checks its
recipes)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from core.model_source import is_hub_id
from tests.conftest import ROOT, Result, assert_one_line_refusal, run_cli

EXAMPLES = sorted((ROOT / "examples" / "train").glob("*.yaml"))


def runnable_here(config: Path) -> bool:
    model = str(yaml.safe_load(config.read_text(encoding="utf-8"))["model_name_or_path"])
    return is_hub_id(model) or (ROOT / model).exists()


@pytest.fixture(scope="module")
def example_dry_runs(demo_model, tmp_path_factory) -> dict[str, tuple[Path, Result]]:
    """Every example's dry run, two at a time: each is one process importing the libraries on one
    core, so the two cores run the twelve in half the time."""
    base = tmp_path_factory.mktemp("examples")

    def dry_run(config: Path) -> tuple[str, tuple[Path, Result]]:
        out = base / config.stem / "run"
        return config.name, (out, run_cli(["train", str(config), "--output_dir", str(out), "--dry_run"]))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(dry_run, [c for c in EXAMPLES if runnable_here(c)]))


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda path: path.name)
def test_every_example_config_passes_the_dry_run(config, example_dry_runs):
    if config.name not in example_dry_runs:
        pytest.skip(f"its model is not on this machine; the comment at the top of {config.name} says how to get it")
    example = yaml.safe_load(config.read_text(encoding="utf-8"))
    out, result = example_dry_runs[config.name]
    assert result.returncode == 0, result.output[-3000:]
    recorded = yaml.safe_load(result.stdout)
    for key, value in example.items():
        if key != "output_dir":
            assert recorded[key] == value, key  # the example's own settings, typed as it wrote them
    assert recorded["output_dir"] == str(out)
    assert not out.exists(), "a dry run writes nothing"


def test_the_dry_run_prints_the_config_the_run_records(demo_model, tmp_path):
    out = tmp_path / "run"
    flags = ["--model_name_or_path", str(demo_model), "--dataset", "demo_sft", "--template", "llama2", "--do_train",
             "--output_dir", str(out), "--max_steps", "1", "--logging_steps", "1", "--cutoff_len", "32"]
    dry = run_cli(["train", *flags, "--dry_run"])
    assert dry.returncode == 0, dry.output[-3000:]
    assert not out.exists()
    real = run_cli(["train", *flags])
    assert real.returncode == 0, real.output[-3000:]
    assert (out / "run.yaml").read_text(encoding="utf-8") == dry.stdout


def test_the_dry_run_refuses_what_the_run_would_in_one_line(demo_model, dataset_dir, tmp_path):
    (dataset_dir / "broken.json").write_text(json.dumps([{"instruction": "q", "output": "a"}, {"instruction": ["x"]}]))
    info = json.loads((dataset_dir / "dataset_info.json").read_text())
    info["broken"] = {"file_name": "broken.json"}
    (dataset_dir / "dataset_info.json").write_text(json.dumps(info))
    # A tokenizer without a chat template cannot serve template 'auto'.
    plain = tmp_path / "plain"
    plain.mkdir()
    for path in demo_model.iterdir():
        if path.is_file():
            (plain / path.name).write_bytes(path.read_bytes())
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "status.json").write_text('{"state": "finished"}')
    base = ["train", "--model_name_or_path", str(demo_model), "--dataset_dir", str(dataset_dir), "--do_train",
            "--dataset", "demo_sft", "--template", "llama2", "--output_dir", str(tmp_path / "out"), "--dry_run"]
    cases = [
        (["--dataset", "broken"], "record 2"),
        (["--dataset", "no_such_set"], "unknown dataset 'no_such_set'"),
        (["--model_name_or_path", str(tmp_path / "nowhere")], "does not exist"),
        (["--model_name_or_path", str(plain), "--template", "auto"], "template 'auto'"),
        (["--output_dir", str(finished)], "already holds a run"),
        (["--lora_rank", "0"], "--lora_rank must be greater than 0"),
    ]
    for extra, expected in cases:
        line = assert_one_line_refusal(run_cli([*base, *extra]))
        assert expected in line, (extra, line)
    assert not (tmp_path / "out").exists()
