"""Refusals before the heavy imports: a bad flag, value, dataset or model path is refused from
this project's own dataclasses, before torch or transformers' Trainer is imported, so a typo
costs a second rather than the imports' several seconds."""

from __future__ import annotations

import pytest

from tests.conftest import PYTHON, ROOT, run_cli

SCRIPT = r'''
import sys
from core.train.run import run
code = run(sys.argv[1:])
print("EXIT", code, "TORCH", "torch" in sys.modules, "TRANSFORMERS_TRAINER", "transformers.trainer" in sys.modules)
'''


@pytest.mark.parametrize("flags, words", [
    (["--cutoff_len", "0"], "--cutoff_len must be greater than 0"),
    (["--learning_rat", "1"], "did you mean 'learning_rate'"),
    (["--stage", "xyz"], "--stage"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--model_name_or_path", "/nonexistent/model"], "does not exist"),
])
def test_a_bad_input_is_refused_before_torch_is_imported(demo_model, tmp_path, flags, words):
    argv = ["--model_name_or_path", str(demo_model), "--dataset", "demo_sft", "--do_train",
            "--output_dir", str(tmp_path / "run"), *flags]
    result = run_cli([PYTHON, "-c", SCRIPT, *argv], cwd=ROOT)
    assert "EXIT 2 TORCH False TRANSFORMERS_TRAINER False" in result.stdout, result.output[-2000:]
    assert words in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()
