"""`launch.py train CONFIG --dry_run`: every check of a run, the config it would record, nothing
written. Every example config passes it (as torchtune's tests/recipes/test_configs.py checks its
recipes)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, Result, assert_one_line_refusal, run_cli
from tests.conftest import HUB_REPO as REPO
from tests.test_model_source import file_gets

EXAMPLES = sorted((ROOT / "examples" / "train").glob("*.yaml"))


# grpo_lora.yaml starts from the adapter sft_lora.yaml writes to saves/demo-sft-lora. Its dry run is given
# the suite's shared run of that example (tests/conftest.py's demo_sft_run) instead of writing into the
# repo's saves/.
SFT_ADAPTER = "saves/demo-sft-lora"


def given_over(example: dict, out: Path, sft_adapter: Path) -> dict[str, str]:
    """The options a test's dry run sets over the example's own values."""
    given = {"output_dir": str(out)}
    if example.get("adapter_name_or_path") == SFT_ADAPTER:
        given["adapter_name_or_path"] = str(sft_adapter)
    return given


@pytest.fixture(scope="module")
def example_dry_runs(demo_model, smollm2_model, demo_sft_run, tmp_path_factory) -> dict[str, tuple[dict, Result]]:
    """Every example's dry run, two at a time: each is one process importing the libraries on one
    core, so the two cores run them in half the time. The fixtures build the models (the demo model,
    SmolLM2-135M-Instruct) and the adapter the examples name, so none is skipped for want of them."""
    base = tmp_path_factory.mktemp("examples")

    def dry_run(config: Path) -> tuple[str, tuple[dict, Result]]:
        example = yaml.safe_load(config.read_text(encoding="utf-8"))
        given = given_over(example, base / config.stem / "run", demo_sft_run)
        flags = [arg for key, value in given.items() for arg in (f"--{key}", value)]
        return config.name, (given, run_cli(["train", str(config), *flags, "--dry_run"]))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(dry_run, EXAMPLES))


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda path: path.name)
def test_every_example_config_passes_the_dry_run(config, example_dry_runs):
    example = yaml.safe_load(config.read_text(encoding="utf-8"))
    given, result = example_dry_runs[config.name]
    assert result.returncode == 0, result.output[-3000:]
    recorded = yaml.safe_load(result.stdout)
    for key, value in {**example, **given}.items():
        assert recorded[key] == value, key  # the example's own settings, typed as it wrote them
    assert not Path(given["output_dir"]).exists(), "a dry run writes nothing"


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


def hub_config(tmp_path: Path, model: str) -> Path:
    """A YAML config whose model is a hub id, as a user writes one."""
    config = tmp_path / f"{model.replace('/', '-')}.yaml"
    config.write_text(yaml.safe_dump({"model_name_or_path": model, "stage": "sft", "do_train": True, "dataset": "demo_sft",
                                      "template": "llama2", "output_dir": str(tmp_path / "run")}), encoding="utf-8")
    return config


def test_a_config_naming_a_hub_id_passes_the_dry_run_and_a_typo_in_it_is_one_line(hub, hf_home, tmp_path):
    """The hub id is checked with the hub (tests/hub_server.py here) as the run would, without downloading the model."""
    result = run_cli(["train", str(hub_config(tmp_path, REPO)), "--dry_run"])
    assert result.returncode == 0, result.output[-3000:]
    recorded = yaml.safe_load(result.stdout)
    assert recorded["model_name_or_path"] == REPO and recorded["template"] == "llama2"
    assert not file_gets(hub), "a dry run downloads no model file"
    typo = REPO + "o"
    line = assert_one_line_refusal(run_cli(["train", str(hub_config(tmp_path, typo)), "--dry_run"]))
    assert typo in line and "was not found on the hub" in line, line  # the words of the run's own refusal
    assert not (tmp_path / "run").exists()
