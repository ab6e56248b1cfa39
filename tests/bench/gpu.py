"""LoRA (bf16) and QLoRA (4-bit) training throughput of a Llama-2-7B-shaped model on one GPU.

    python -m tests.bench.gpu [--modes lora,qlora] [--steps 20] [--batch 4] [--cutoff_len 1024]
    python -m tests.bench.gpu --small        the same code on the CPU with a tiny shape (tested)

The model has random weights built from a LlamaConfig directly on the device (no download, no
disk): the speed of a step does not depend on the values. The data is synthetic tokenized SFT
rows (lengths 25-100 % of cutoff_len, the first 30 % of each row a masked prompt), trained through
TuneForge's own path: the SFT collator, length-grouped batches, the supervised-logits Trainer.
Reports per mode: tokens/s (real tokens), peak device memory, and model FLOPs utilisation
against the device's dense bf16 peak (table below; unknown devices: pass --peak_tflops).

Model FLOPs per token (LoRA/QLoRA: frozen weights get no weight gradient): 4 x the matmul
parameters (forward 2N + input gradients 2N) + attention 6 x layers x hidden x mean length
(causal halves 12 x). The usual 6N convention for full training is reported beside it.
Budget: under 10 minutes on an H100/H200 (two 7B builds, 3 warm-up + --steps timed steps each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "tests" / "bench" / "results"

# Dense (no sparsity) bf16 tensor peaks, TFLOP/s, by a substring of torch.cuda.get_device_name().
BF16_PEAK_TFLOPS = (
    ("H200", 989.0), ("H100 SXM", 989.0), ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.0),
    ("GH200", 989.0), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0),
    ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0),
)

LLAMA2_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096)
SMALL = dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)


def peak_tflops(device_name: str) -> Optional[float]:
    for key, value in BF16_PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def synthetic_rows(n: int, cutoff_len: int, vocab: int, seed: int = 0) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = rng.randint(max(8, cutoff_len // 4), cutoff_len)
        ids = [rng.randrange(4, vocab) for _ in range(length)]
        prompt = int(length * 0.3)
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:], "length": length})
    return rows


def build_model(config_kwargs: dict[str, Any], device: str, dtype: Any, quantize: bool):
    """A LlamaForCausalLM with random weights made on the device; Linear4bit (nf4) layers if quantize."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**config_kwargs, attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.requires_grad_(False)
    if quantize:
        quantize_linear_layers(model, dtype)
    return model


def quantize_linear_layers(model: Any, compute_dtype: Any) -> None:
    """Replace every decoder Linear by bitsandbytes' Linear4bit (nf4, double quantization), as QLoRA loads."""
    import bitsandbytes as bnb
    import torch

    for name, module in list(model.model.layers.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is not torch.nn.Linear:
                continue
            q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=False, compute_dtype=compute_dtype,
                                  quant_type="nf4", compress_statistics=True, quant_storage=compute_dtype,
                                  device="meta")
            weight = child.weight.data
            q.weight = bnb.nn.Params4bit(weight.to("cpu") if weight.device.type == "cpu" else weight,
                                         requires_grad=False, quant_type="nf4", compress_statistics=True,
                                         quant_storage=compute_dtype).to(weight.device)
            if hasattr(q, "support_avx512bf16_for_cpu"):
                q.support_avx512bf16_for_cpu = False  # see core.model._disable_cpu_packed_4bit
            setattr(module, child_name, q)
            del child, weight
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def matmul_params(config_kwargs: dict[str, Any]) -> int:
    h, i, n = config_kwargs["hidden_size"], config_kwargs["intermediate_size"], config_kwargs["num_hidden_layers"]
    kv = h * config_kwargs["num_key_value_heads"] // config_kwargs["num_attention_heads"]
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i
    return n * per_layer + config_kwargs["vocab_size"] * h  # + the output layer


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import TrainerCallback, TrainingArguments

    from core.data.collator import SFTCollator
    from core.train.logits import supervised_logits_trainer

    cuda = torch.cuda.is_available() and not args.small
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    shape = SMALL if args.small else LLAMA2_7B
    t0 = time.perf_counter()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = build_model(shape, device, dtype, quantize=(mode == "qlora"))
    model = get_peft_model(model, LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, lora_dropout=0.0,
                                             target_modules=args.lora_target.split(","), task_type="CAUSAL_LM"))
    build_s = time.perf_counter() - t0
    quantized = sum(type(m).__name__ == "Linear4bit" for m in model.modules())
    steps = args.warmup + args.steps
    rows = synthetic_rows(steps * args.batch, args.cutoff_len, shape["vocab_size"])
    train_set = datasets.Dataset.from_list(rows)
    out_dir = RESULTS / "work" / f"gpu-{mode}"
    training = TrainingArguments(
        output_dir=str(out_dir), per_device_train_batch_size=args.batch, max_steps=steps, learning_rate=1e-4,
        logging_steps=max(1, steps), save_strategy="no", report_to="none", bf16=cuda, use_cpu=not cuda,
        train_sampling_strategy="group_by_length", remove_unused_columns=False, disable_tqdm=True,
        include_num_input_tokens_seen="non_padding", gradient_checkpointing=args.gradient_checkpointing,
        optim="adamw_torch", seed=42, dataloader_num_workers=0,
    )
    times: list[float] = []
    tokens: list[int] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            self.t = time.perf_counter()
            self.seen = state.num_input_tokens_seen

        def on_step_end(self, a, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)
            tokens.append(state.num_input_tokens_seen - self.seen)

    trainer = supervised_logits_trainer()(model=model, args=training, train_dataset=train_set,
                                          data_collator=SFTCollator(0, pad_to_multiple_of=8), callbacks=[StepTimer()])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    timed_t, timed_tok = times[args.warmup:], tokens[args.warmup:]
    tok_per_s = sum(timed_tok) / sum(timed_t)
    mean_len = sum(timed_tok) / (len(timed_tok) * args.batch)
    n = matmul_params(shape)
    layers, hidden = shape["num_hidden_layers"], shape["hidden_size"]
    flops_tok = 4 * n + 6 * layers * hidden * mean_len
    flops_tok_6n = 6 * n + 6 * layers * hidden * mean_len
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = args.peak_tflops or (peak_tflops(name) if cuda else None)
    report = {
        "mode": mode, "device": name, "dtype": str(dtype).replace("torch.", ""), "shape": "small" if args.small else "llama2-7b",
        "batch": args.batch, "cutoff_len": args.cutoff_len, "lora_target": args.lora_target, "lora_rank": args.lora_rank,
        "gradient_checkpointing": args.gradient_checkpointing, "timed_steps": len(timed_t), "linear4bit_layers": quantized,
        "build_s": round(build_s, 2), "step_s_median": statistics.median(timed_t), "tokens_per_s": tok_per_s,
        "mean_tokens_per_row": mean_len, "model_flops_per_token": flops_tok,
        "achieved_tflops": tok_per_s * flops_tok / 1e12,
        "peak_tflops_bf16": peak,
        "mfu": tok_per_s * flops_tok / (peak * 1e12) if peak else None,
        "mfu_6n": tok_per_s * flops_tok_6n / (peak * 1e12) if peak else None,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "peak_memory_reserved_gb": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
        "peak_rss_mb": _peak_rss_mb(),
        "loss": trainer.state.log_history[-1].get("train_loss") if trainer.state.log_history else None,
    }
    del trainer, model
    if cuda:
        torch.cuda.empty_cache()
    return report


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="lora,qlora", help="comma separated: lora (bf16), qlora (4-bit nf4)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps per mode")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--cutoff_len", type=int, default=1024)
    parser.add_argument("--lora_rank", type=int, default=8)
    parser.add_argument("--lora_target", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--peak_tflops", type=float, default=None, help="the device's dense bf16 peak, if not in the table")
    parser.add_argument("--small", action="store_true", help="tiny shape on the CPU (checks the code path)")
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default tests/bench/results/gpu-<time>.json)")
    args = parser.parse_args(argv)
    if args.small:
        args.cutoff_len = min(args.cutoff_len, 128)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(REPO))
    import torch

    if not args.small and not torch.cuda.is_available():
        print("error: no CUDA device; use --small to run the same code on the CPU", file=sys.stderr)
        return 2
    reports = [run_mode(mode.strip(), args) for mode in args.modes.split(",") if mode.strip()]
    print(f"{'mode':8}{'device':28}{'tokens/s':>12}{'step s':>9}{'peak mem GB':>13}{'TFLOP/s':>9}{'MFU':>8}{'MFU 6N':>8}")
    for r in reports:
        mem = f"{r['peak_memory_gb']:.1f}" if r["peak_memory_gb"] is not None else "–"
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "–"
        mfu6 = f"{100 * r['mfu_6n']:.1f}%" if r["mfu_6n"] is not None else "–"
        print(f"{r['mode']:8}{r['device'][:27]:28}{r['tokens_per_s']:>12,.0f}{r['step_s_median']:>9.3f}{mem:>13}"
              f"{r['achieved_tflops']:>9.1f}{mfu:>8}{mfu6:>8}")
    out = args.out or RESULTS / f"gpu-{'small-' if args.small else ''}{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"created": time.strftime("%Y-%m-%d %H:%M:%S"), "reports": reports}, indent=1), encoding="utf-8")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
