"""Export: the merged model answers exactly like base + adapter, shards as asked, never writes into a
non-empty folder unasked, and merges an adapter of a 4-bit run in full precision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import UserError
from core.export import export_merged
from tests.conftest import assert_one_line_refusal, run_cli
from tests.conftest import HUB_REPO as REPO

PROMPTS = ("Who are you?", "What is the colour of a carrot?", "Write one word.")


@pytest.fixture(scope="module")
def adapter(demo_model, tmp_path_factory) -> Path:
    """A LoRA adapter with random (non-zero) weights on every linear layer and a trained lm_head copy.

    Random B matrices change the outputs far more than a short training run would, so a merge
    that dropped or mis-scaled any part would show in the logits.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(demo_model), dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                        init_lora_weights=False, modules_to_save=["lm_head"])
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.mul_(0.5)
            elif "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.01)
    out = tmp_path_factory.mktemp("export") / "adapter"
    model.save_pretrained(out)
    (out / "run.yaml").write_text("stage: sft\ntemplate: llama2\nquantization_bit: 4\n", encoding="utf-8")
    return out


def _inputs(tokenizer, text: str):
    import torch

    from core.data.templates import get_template

    ids = get_template("llama2", tokenizer).encode_prompt(tokenizer, [{"role": "user", "content": text}])
    return torch.tensor([ids])


@pytest.mark.slow
def test_merged_model_matches_base_plus_adapter_in_logits_and_greedy_answers(demo_model, adapter, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = tmp_path / "merged"
    messages = []
    export_merged(str(demo_model), str(adapter), str(target), max_shard_size="10MB",
                  progress=lambda fraction, message: messages.append((fraction, message)))
    assert messages[-1][0] == 1.0
    assert any("4-bit base" in m and "full-precision" in m for _, m in messages), messages
    assert len(list(target.glob("model-*.safetensors"))) >= 2 and (target / "model.safetensors.index.json").is_file()
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "export.json"):
        assert (target / name).is_file(), name
    assert "quantization_config" not in json.loads((target / "config.json").read_text())

    tokenizer = AutoTokenizer.from_pretrained(str(target))
    merged = AutoModelForCausalLM.from_pretrained(str(target), dtype=torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(str(demo_model), dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, str(adapter)).eval()
    with torch.inference_mode():
        for text in PROMPTS:
            ids = _inputs(tokenizer, text)
            a, b = merged(ids).logits, with_adapter(ids).logits
            assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()
            with with_adapter.disable_adapter():
                assert (with_adapter(ids).logits - a).abs().max() > 1e-2, "the adapter must change the outputs"
            greedy = dict(max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            assert merged.generate(ids, **greedy).tolist() == with_adapter.generate(input_ids=ids, **greedy).tolist()


@pytest.mark.slow
def test_cli_export_refuses_a_non_empty_folder_unless_overwrite(demo_model, adapter, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine", encoding="utf-8")
    (target / "model-00001-of-00009.safetensors").write_bytes(b"stale shard of an earlier export")
    argv = ["export", "--model_name_or_path", str(demo_model), "--adapter_name_or_path", str(adapter),
            "--export_dir", str(target), "--export_size", "10MB"]
    line = assert_one_line_refusal(run_cli(argv))
    assert "not empty" in line and "--overwrite" in line
    assert sorted(p.name for p in target.iterdir()) == ["model-00001-of-00009.safetensors", "notes.txt"]

    result = run_cli([*argv, "--overwrite"])
    assert result.returncode == 0, result.output[-3000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("[tuneforge-progress]")]
    assert len(progress) >= 5 and progress[-1].startswith("[tuneforge-progress] 1.000")
    assert (target / "notes.txt").read_text() == "mine", "files that are not the model's are kept"
    assert not (target / "model-00001-of-00009.safetensors").exists(), "a stale shard is removed"
    index = json.loads((target / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {p.name for p in target.glob("model-*.safetensors")}


def test_export_refuses_its_own_sources_and_a_quantized_base(demo_model, adapter, tmp_path):
    with pytest.raises(UserError, match="is the base model folder"):
        export_merged(str(demo_model), str(adapter), str(demo_model))
    quantized = tmp_path / "q"
    quantized.mkdir()
    config = json.loads((Path(demo_model) / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (quantized / "config.json").write_text(json.dumps(config))
    (quantized / "model.safetensors").symlink_to(Path(demo_model) / "model.safetensors")  # a model folder has weights
    with pytest.raises(UserError, match="stored quantized"):
        export_merged(str(quantized), str(adapter), str(tmp_path / "out"))
    with pytest.raises(UserError, match="export_size"):
        export_merged(str(demo_model), str(adapter), str(tmp_path / "out"), max_shard_size="big")


def test_cli_export_without_an_adapter_is_one_line(demo_model, tmp_path):
    line = assert_one_line_refusal(run_cli(["export", "--model_name_or_path", str(demo_model), "--export_dir", str(tmp_path / "o")]))
    assert "--adapter_name_or_path" in line


# ----------------------------------------------------------------------------- a hub id, downloaded while exporting


@pytest.mark.slow
def test_export_from_a_hub_id_shows_the_download_in_the_export_tabs_progress(hub, hf_home, adapter, tmp_path):
    """The Export tab runs `launch.py export` on a hub id that is not in the cache: its progress
    bar (read from the subprocess's progress lines) climbs through the download to 1."""
    from webui.tabs.export.handlers import ExportJob, export_argv

    target = tmp_path / "merged"
    updates = list(ExportJob().run(export_argv(REPO, str(adapter), str(target), "2GB", False)))
    fractions, messages, log, code = [u[0] for u in updates], [u[1] for u in updates], updates[-1][2], updates[-1][3]
    assert code == 0, log
    assert fractions == sorted(fractions) and fractions[-1] == 1.0, fractions
    downloading = [(f, m) for f, m in zip(fractions, messages) if m.startswith(f"downloading {REPO}")]
    assert downloading[0][0] == 0.0, downloading  # the bar starts with the download ...
    assert len({f for f, _ in downloading}) >= 3, downloading  # ... and moves as the bytes arrive
    assert all(f <= 0.5 for f, _ in downloading) and " MB" in downloading[-1][1], downloading
    assert (target / "export.json").is_file() and json.loads((target / "export.json").read_text())["base_model"] == REPO
