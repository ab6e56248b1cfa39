"""The tokenizing helper (core/data/prefetch.py): a head start that never changes the data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from core.args import DataArguments, ModelArguments, parse_data_args
from core.data import prefetch
from tests.conftest import PYTHON, ROOT, assert_one_line_refusal, run_cli

pytestmark = pytest.mark.slow


def big_dataset(dataset_dir: Path, min_bytes: int = prefetch.MIN_DATA_BYTES) -> str:
    """An alpaca file just over the size at which the trainer starts the helper."""
    rng = random.Random(7)
    words = "the model learns to answer short questions about numbers colours and places".split()
    records, size = [], 0
    while size <= min_bytes:
        text = lambda n: " ".join(rng.choice(words) for _ in range(n))  # noqa: E731
        record = {"instruction": text(12), "input": text(rng.randint(0, 20)), "output": text(rng.randint(10, 60))}
        records.append(record)
        size += len(json.dumps(record)) + 2
    (dataset_dir / "big.json").write_text(json.dumps(records), encoding="utf-8")
    info = json.loads((dataset_dir / "dataset_info.json").read_text(encoding="utf-8"))
    info["big"] = {"file_name": "big.json"}
    (dataset_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return "big"


def test_parse_data_args_reads_flags_and_config_and_skips_training_flags(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("dataset: a,b\ncutoff_len: 64\nlearning_rate: 0.1\nstage: rm\n", encoding="utf-8")
    model, data, finetuning = parse_data_args([str(config), "--model_name_or_path", "m", "--cutoff_len", "32",
                                               "--max_steps", "-1", "--do_train"])
    assert (model.model_name_or_path, data.dataset, data.cutoff_len, finetuning.stage) == ("m", "a,b", 32, "rm")
    assert isinstance(model, ModelArguments) and isinstance(data, DataArguments)


def test_the_helper_starts_only_for_large_local_datasets(dataset_dir):
    small = ["--dataset", "demo_sft", "--dataset_dir", str(dataset_dir)]
    assert 0 < prefetch.data_bytes(small) < prefetch.MIN_DATA_BYTES
    assert not prefetch.worth_starting(small)
    name = big_dataset(dataset_dir)
    big = ["--dataset", f"demo_sft,{name}", "--dataset_dir", str(dataset_dir)]
    assert prefetch.data_bytes(big) > prefetch.MIN_DATA_BYTES
    assert prefetch.worth_starting(big) == (prefetch.available_cores() >= 2)
    assert prefetch.data_bytes(["--dataset", "no_such", "--dataset_dir", str(dataset_dir)]) == 0


def test_a_run_reads_what_the_helper_tokenized_and_it_equals_tokenizing_in_process(demo_model, dataset_dir, tmp_path):
    if prefetch.available_cores() < 2:
        pytest.skip("the helper runs only with a spare core")
    name = big_dataset(dataset_dir)
    env = {"HF_DATASETS_CACHE": str(tmp_path / "cache")}
    argv = ["train", "--model_name_or_path", str(demo_model), "--dataset_dir", str(dataset_dir), "--dataset", name,
            "--template", "llama2", "--cutoff_len", "128", "--do_train", "--max_steps", "1",
            "--per_device_train_batch_size", "2"]
    first = run_cli([*argv, "--output_dir", str(tmp_path / "first")], env=env)
    assert first.returncode == 0, first.output[-3000:]
    assert "[tuneforge] tokenized by the helper process while the libraries loaded" in first.stdout
    assert "tokenized samples from the cache" not in first.stdout
    second = run_cli([*argv, "--output_dir", str(tmp_path / "second")], env=env)
    assert second.returncode == 0, second.output[-3000:]
    assert "[tuneforge] tokenized samples from the cache" in second.stdout

    # The helper ran without torch; the rows must be exactly what the trainer's own path makes.
    import datasets

    from core.data.preprocess import get_dataset
    from core.model import load_tokenizer

    cache_files = list((tmp_path / "cache" / "tuneforge").glob("*.arrow"))
    assert len(cache_files) == 1
    tokenizer = load_tokenizer(ModelArguments(model_name_or_path=str(demo_model)))
    fresh, _ = get_dataset(dataset_dir, name, "sft", tokenizer, "llama2", DataArguments(cutoff_len=128),
                           cache_dir=tmp_path / "fresh")
    assert datasets.Dataset.from_file(str(cache_files[0])).to_list() == fresh.to_list()


def test_a_refused_run_stops_the_helper_and_leaves_no_temp_file(demo_model, dataset_dir, tmp_path):
    name = big_dataset(dataset_dir)
    result = run_cli(["train", "--model_name_or_path", str(demo_model), "--dataset_dir", str(dataset_dir),
                      "--dataset", name, "--do_train", "--learning_rate", "fast", "--output_dir", str(tmp_path / "out")],
                     env={"HF_DATASETS_CACHE": str(tmp_path / "cache")})
    assert "learning_rate" in assert_one_line_refusal(result)
    assert not (tmp_path / "out").exists()
    leftovers = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.endswith(".arrow")]
    assert leftovers == [], leftovers


def test_the_helper_fails_quietly_and_the_trainer_reports(demo_model, dataset_dir, tmp_path):
    """A dataset the helper cannot read: it exits non-zero and silent; the trainer names the problem."""
    name = big_dataset(dataset_dir)
    path = dataset_dir / "big.json"
    path.write_text(path.read_text(encoding="utf-8")[:-10], encoding="utf-8")  # truncated JSON, still large
    import subprocess

    helper = subprocess.run([PYTHON, "-m", "core.data.prefetch", "--model_name_or_path", str(demo_model),
                             "--dataset_dir", str(dataset_dir), "--dataset", name], cwd=ROOT,
                            capture_output=True, text=True, env={"HF_DATASETS_CACHE": str(tmp_path / "cache"),
                                                                 "PATH": "/usr/bin:/bin"})
    assert helper.returncode == 1 and helper.stdout == ""
    result = run_cli(["train", "--model_name_or_path", str(demo_model), "--dataset_dir", str(dataset_dir),
                      "--dataset", name, "--do_train", "--output_dir", str(tmp_path / "out")],
                     env={"HF_DATASETS_CACHE": str(tmp_path / "cache")})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "big" in (result.stderr.strip().splitlines() or [""])[-1]
