"""The peak memory of a training run, estimated before it starts, and the memory there is to hold it.

From the model's shape (its config.json: layers, hidden, intermediate, heads, kv heads, vocab,
tied embeddings) and the run's settings (full / freeze N layers / LoRA rank r on its targets /
QLoRA 4-bit / 8-bit, batch size, cutoff_len, activation checkpointing, processes), the peak of one
training process in five parts:

- framework: the libraries and runtime (torch, transformers, peft, datasets; on a GPU the CUDA
  context instead);
- weights: the base model as this project loads it (bf16 on a GPU; on a CPU fp32, or bf16 for a
  LoRA base where the CPU has bf16 instructions; 4-bit or 8-bit linear layers when quantized);
- trainable: the trained parameters' gradients and AdamW's two states (plus LoRA's own weights);
- activations: what autograd keeps for the backward pass, per token and decoder layer, for a
  batch of per_device_train_batch_size x cutoff_len tokens (the longest batch a run can meet);
- logits: what core/train/logits.py holds: logits only at supervised positions, 1,024 rows at a
  time when the output layer is a plain Linear (not the (batch, length, vocab) tensor).

Every count follows what the code does (peft, transformers' LLaMA-family decoder layer, torch's
SDPA attention, AdamW); the few factors that are the machine's (how much of what autograd frees
the CPU's allocator keeps) were measured on the demo model and SmolLM2-135M and are said where
they are used. tests/test_memory.py trains both and compares with the measured peak RSS.

Light on purpose (no torch, no transformers): the web UI imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from core.allocator import trainer_uses_tcmalloc
from core.errors import UserError

MB = 1 << 20
GB = 1 << 30

# The linear layers of a LLaMA-family decoder layer, what --lora_target all adapts (core.model.
# linear_module_names: every Linear but the output layer).
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


# ---------------------------------------------------------------------------- the model's shape


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a model (a LLaMA-family decoder: Llama, Qwen, Mistral, SmolLM...)."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    file_bytes: Optional[int] = None  # the weight files' size on disk, when known
    file_dtype_bytes: int = 4  # bytes per weight in the files (config.json's dtype)
    exact: bool = True  # False: guessed from a parameter count (a hub model not downloaded yet)
    source: str = ""  # where the shape came from, for the UI

    @classmethod
    def from_config(cls, config: dict, **kw: Any) -> "ModelShape":
        text = config.get("text_config") or config  # multimodal configs nest the language model's
        try:
            hidden = int(text["hidden_size"])
            heads = int(text["num_attention_heads"])
            shape = cls(
                layers=int(text["num_hidden_layers"]), hidden=hidden, intermediate=int(text["intermediate_size"]),
                heads=heads, kv_heads=int(text.get("num_key_value_heads") or heads),
                head_dim=int(text.get("head_dim") or hidden // heads), vocab=int(text["vocab_size"]),
                tied=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
                file_dtype_bytes=DTYPE_BYTES.get(str(config.get("dtype") or config.get("torch_dtype") or "float32"), 4),
                **kw)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"its config.json lacks what the estimate needs ({err}); "
                            "a LLaMA-family model has hidden_size, num_hidden_layers, intermediate_size, "
                            "num_attention_heads and vocab_size") from None
        return shape

    def layer_params(self) -> int:
        q_out, kv_out = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return (self.hidden * q_out + 2 * self.hidden * kv_out + q_out * self.hidden
                + 3 * self.hidden * self.intermediate + 2 * self.hidden)

    def linear_params(self) -> int:
        return self.layers * (self.layer_params() - 2 * self.hidden)

    @property
    def embed_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def params(self) -> int:
        head = 0 if self.tied else self.embed_params
        return self.layers * self.layer_params() + self.embed_params + head + self.hidden

    def module_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer of a decoder layer."""
        q_out, kv_out = self.heads * self.head_dim, self.kv_heads * self.head_dim
        h, i = self.hidden, self.intermediate
        return {"q_proj": (h, q_out), "k_proj": (h, kv_out), "v_proj": (h, kv_out), "o_proj": (q_out, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def model_shape(model: str, root: Optional[Path] = None) -> ModelShape:
    """The shape of a model folder, or of a hub id from its cached config.json, else from its
    curated size in core/model_zoo.py (a guess, marked not exact). UserError when none is known."""
    from core.model_zoo import known_model

    text = (model or "").strip()
    if not text:
        raise UserError("choose a model first")
    path = Path(text).expanduser()
    if not path.is_absolute() and root is not None:
        path = root / path
    if path.suffix.lower() == ".gguf":
        raise UserError("no estimate for a .gguf file: its shape is inside the file; build a model folder from it "
                        "(launch.py get-model) to see one")
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise UserError(f"{text} has no config.json")
        return ModelShape.from_config(_read_json(config), file_bytes=_weights_size(path), source=str(config))
    cached = _cached_hub_config(text)
    if cached is not None:
        return ModelShape.from_config(_read_json(cached), file_bytes=_weights_size(cached.parent),
                                      source=f"{text} (cached config.json)")
    known = known_model(text)
    if known is not None:
        return guessed_shape(parse_params(known.params), source=f"{text} ({known.params}, shape guessed from its size)")
    raise UserError(f"no shape known for '{text}': not a model folder, and no config.json of it in the Hugging Face cache")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path}: {err}") from None


def _weights_size(folder: Path) -> Optional[int]:
    files = [p for p in folder.glob("*.safetensors")] or [p for p in folder.glob("*.bin") if "model" in p.name]
    try:
        return sum(p.stat().st_size for p in files) or None
    except OSError:
        return None


def _cached_hub_config(hub_id: str) -> Optional[Path]:
    """config.json of a hub model in huggingface_hub's cache (HF_HUB_CACHE, HF_HOME), newest snapshot."""
    if hub_id.count("/") != 1:
        return None
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    snapshots = Path(cache) / ("models--" + hub_id.replace("/", "--")) / "snapshots"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    return found[-1] if found else None


def parse_params(text: str) -> int:
    """"135M" -> 135e6, "7B" -> 7e9."""
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    text = text.strip().upper()
    return int(float(text[:-1]) * scale[text[-1]]) if text and text[-1] in scale else int(float(text))


def guessed_shape(params: int, source: str = "") -> ModelShape:
    """A LLaMA-like shape of about `params` parameters, for a hub model whose config is not at hand:
    the usual proportions of the family (intermediate ~2.7 x hidden, ~128 hidden units per layer,
    grouped-query attention with 8 kv heads, a 128k vocabulary); weights and optimizer states are
    right to the parameter count, activations and logits only roughly."""
    vocab = 128_256
    hidden = 256
    for candidate in range(256, 16_385, 128):  # the smallest hidden size whose model reaches `params`
        layers = max(2, round(candidate / 128))
        shape = ModelShape(layers, candidate, int(2.7 * candidate), candidate // 64, 8 if candidate >= 1024 else candidate // 64,
                           64, vocab, candidate < 2048, exact=False, source=source)
        hidden = candidate
        if shape.params >= params:
            return shape
    return ModelShape(hidden // 128, hidden, int(2.7 * hidden), hidden // 128, 8, 128, vocab, False, exact=False, source=source)


# ---------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class RunPlan:
    """The settings of a run that decide its memory."""

    finetuning_type: str = "lora"
    lora_rank: int = 8
    lora_target: str = "all"
    additional_target: Optional[str] = None
    freeze_trainable_layers: int = 2
    quantization_bit: Optional[int] = None
    double_quantization: bool = True
    batch_size: int = 1
    cutoff_len: int = 1024
    checkpointing: Optional[bool] = None  # None: this tool's default, see checkpointing_by_default
    num_processes: int = 1
    device: str = "cpu"  # "cpu" or "cuda": where the weights live (core.model.load_dtype)
    bf16: Optional[bool] = None  # None: this tool's default, on where the hardware has bf16 (core.args)
    tcmalloc: bool = field(default_factory=trainer_uses_tcmalloc)  # the CPU trainer's allocator

    @classmethod
    def from_config(cls, config: dict, num_processes: int = 1, device: str = "cpu") -> "RunPlan":
        def number(key: str, default: Any) -> Any:
            value = config.get(key)
            return default if value in (None, "") else value

        bits = config.get("quantization_bit")
        return cls(
            finetuning_type=str(config.get("finetuning_type") or "lora"),
            lora_rank=int(number("lora_rank", 8)),
            lora_target=str(config.get("lora_target") or "all"),
            additional_target=config.get("additional_target") or None,
            freeze_trainable_layers=int(number("freeze_trainable_layers", 2)),
            quantization_bit=int(bits) if bits not in (None, "", "none") else None,
            double_quantization=config.get("double_quantization", True) is not False,
            batch_size=max(1, int(number("per_device_train_batch_size", 1))),
            cutoff_len=max(1, int(number("cutoff_len", 1024))),
            # transformers 5: gradient_checkpointing is the deprecated alias, read only when the new name is unset
            checkpointing=_checkpointing(config),
            num_processes=max(1, int(num_processes or 1)),
            device=device,
            bf16=config.get("bf16"),
        )

    @property
    def tokens(self) -> int:
        return self.batch_size * self.cutoff_len


def _checkpointing(config: dict) -> Optional[bool]:
    """As the trainer reads it (core.args): activation_checkpointing, else its deprecated alias
    gradient_checkpointing, else None (this tool's default, decided by the estimate)."""
    for key in ("activation_checkpointing", "gradient_checkpointing"):
        if config.get(key) not in (None, ""):
            return str(config[key]).strip().lower() not in ("false", "0", "no")
    return None


def _names(value: Optional[str]) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


# ---------------------------------------------------------------------------- the estimate

# Measured, `launch.py train` on 2 CPU cores (torch 2.13, transformers 5.24, peft 0.21): resident
# memory before the model's weights are touched (python, torch, transformers, peft, datasets,
# accelerate, the tokenizer and the tokenized set) was 455-490 MB for both models. A quantized run
# imports bitsandbytes too (~60 MB more, measured on the demo model).
CPU_FRAMEWORK = 470 * MB
CPU_BITSANDBYTES = 60 * MB
# On a GPU, device memory the process holds besides tensors: the CUDA context and cuBLAS' workspace
# (typically 0.4-0.6 GB; not measured by this project).
GPU_FRAMEWORK = 512 * MB
# The trainer's own tensors at the first step whatever the batch (the batch's ids and masks, the
# optimizer's bookkeeping, thread pools): measured as the peak of a 1 x 64 token run (demo) minus
# its activations, ~25 MB.
STEP_OVERHEAD = 25 * MB

# How much resident memory autograd's saved tensors take on the CPU, per byte they hold: the
# allocator keeps some of what the forward pass frees between the kept tensors (the temporaries
# of each layer), so RSS grows faster than the saved tensors. Measured as the first forward
# pass's RSS growth over the saved tensors' bytes (torch.autograd.graph.saved_tensors_hooks), at
# 1-16 x 128-512 tokens. glibc (core/allocator.py): full and freeze 1.19-1.20 on both models;
# LoRA 2.11 (demo) and 1.83 (SmolLM2), whose every adapted Linear leaves three more temporaries
# of its output's size (base output, lora_B output, scaled). tcmalloc reuses those blocks: 1.03-1.09
# full, 1.05-1.18 LoRA. On a GPU the caching allocator does too: 1.1 there, as a margin (not measured).
CPU_RSS_FACTOR = {"full": 1.2, "freeze": 1.2, "lora": 1.95}  # glibc
TCMALLOC_RSS_FACTOR = 1.1
GPU_ALLOC_FACTOR = 1.1
# With activation checkpointing each layer keeps only its input, yet on the CPU the layers'
# recomputation frees and reallocates the same sizes and the allocator keeps a share of it: the
# forward pass's RSS growth beyond the kept inputs was 0.43 (demo) and 0.33 (SmolLM2) of what the
# layers keep without checkpointing on glibc, 0.41 and 0.36 on tcmalloc; the backward pass adds
# one layer's activations.
CPU_CHECKPOINT_RETAINED = 0.38
LOGITS_CHUNK = 1024  # rows per chunk of core/train/logits.py's _LinearCrossEntropy


def activation_elements(shape: ModelShape, plan: RunPlan) -> int:
    """Elements autograd keeps per token in one trained decoder layer.

    Counted by shape with torch.autograd.graph.saved_tensors_hooks on transformers 5's
    LlamaDecoderLayer with SDPA attention (the same counts on the demo model and SmolLM2-135M):
    - every layer: four intermediate-sized tensors (the MLP's gate, up and act(gate) outputs and
      the down_proj input); four (batch, heads, length, head_dim) ones, k and v repeated to every
      head (q, k, v and the attention output); one row of the attention mask (cutoff_len);
    - LoRA: four hidden-sized tensors more (what the adapted projections read), and each adapter's
      rank-r intermediate;
    - full training, or a trained layer of freeze: six hidden-sized tensors more (the RMSNorms'
      inputs and outputs too, whose weights now need gradients).
    A frozen layer under the trained ones keeps nothing: its inputs need no gradient.
    """
    h, i, s = shape.hidden, shape.intermediate, plan.cutoff_len
    if plan.finetuning_type == "lora":
        targets = _lora_targets(plan)
        return 4 * i + 8 * h + s + plan.lora_rank * len(targets)
    return 4 * i + 10 * h + s


def _lora_targets(plan: RunPlan) -> list[str]:
    named = _names(plan.lora_target)
    if not named or named == ["all"]:
        return list(LINEAR_MODULES)
    return [n for n in named if n in LINEAR_MODULES]


def trained_layers(shape: ModelShape, plan: RunPlan) -> int:
    if plan.finetuning_type == "freeze":
        return min(plan.freeze_trainable_layers, shape.layers)
    return shape.layers


def trainable_params(shape: ModelShape, plan: RunPlan) -> int:
    if plan.finetuning_type == "full":
        return shape.params
    if plan.finetuning_type == "freeze":
        return trained_layers(shape, plan) * shape.layer_params()
    dims = shape.module_dims()
    lora = shape.layers * sum(plan.lora_rank * (dims[name][0] + dims[name][1]) for name in _lora_targets(plan))
    saved = sum(shape.embed_params for name in _names(plan.additional_target) if name in ("lm_head", "embed_tokens"))
    return lora + saved


@dataclass
class Estimate:
    """The estimated peak of one training process, by part (bytes)."""

    parts: dict[str, int]
    plan: RunPlan
    shape: ModelShape

    @property
    def per_process(self) -> int:
        return sum(self.parts.values())

    @property
    def total(self) -> int:
        """All processes together: what a CPU run needs of the RAM (a GPU run needs per_process of each GPU)."""
        return self.per_process * self.plan.num_processes


# Activation checkpointing, where a run leaves it unset, is on when one batch's activations would
# take more than this without it: SmolLM2-135M at 8 x 512 tokens keeps 5.2 GB there and 0.4 GB
# with it (peak 6.05 GB against 1.99 GB), while the demo and toy models' batches stay far below,
# where recomputing every layer would cost 15-40 % of their speed for nothing.
CHECKPOINTING_ABOVE = 1 * GB


def checkpointing_by_default(shape: ModelShape, plan: RunPlan) -> bool:
    """Whether a run that leaves activation checkpointing unset gets it (core.args applies this)."""
    return estimate(shape, replace(plan, checkpointing=False)).parts["activations"] > CHECKPOINTING_ABOVE


def checkpointing_line(on: bool) -> str:
    """What a run's console says of it, set or decided by checkpointing_by_default (run.yaml keeps what was asked)."""
    if on:
        return "activation checkpointing: on (layers recompute their activations in the backward pass; " \
               "activation_checkpointing: false for speed)"
    return "activation checkpointing: off (activation_checkpointing: true keeps less memory for ~15 % of the speed)"


def _cpu_bf16(plan: RunPlan) -> bool:
    """Whether a CPU run trains in bf16: as set, else as core.args decides from this CPU's
    instructions, which takes torch's CPU probe. The web UI does not import torch for it: there an
    unset bf16 is estimated as fp32, the larger of the two (the trainer decides before it estimates)."""
    if plan.bf16 is not None:
        return bool(plan.bf16)
    if "torch" not in sys.modules:
        return False
    from core.args import native_cpu_bf16

    return native_cpu_bf16()


def precision_line(training_args: Any) -> str:
    """What a run's console says of its arithmetic, set or decided by core.args._default_precision."""
    if training_args.bf16:
        return "precision: bf16 mixed (matrix products in bf16, trained weights and the loss in fp32; bf16: false for fp32)"
    if training_args.fp16:
        return "precision: fp16 mixed (matrix products in fp16, trained weights and the loss in fp32)"
    return "precision: fp32 (bf16: true where the hardware has bf16: a recent GPU, or a CPU with AVX512-BF16 or AMX)"


def estimate(shape: ModelShape, plan: RunPlan) -> Estimate:
    """The peak memory of one training process (on its GPU, or in RAM for a CPU run)."""
    if plan.checkpointing is None:
        plan = replace(plan, checkpointing=checkpointing_by_default(shape, plan))
    gpu = plan.device != "cpu"
    # core.model.load_dtype: bf16/fp16 on a GPU; on a CPU, bf16 for a LoRA base in a bf16 run, else fp32.
    weight_bytes = 2 if gpu or (plan.finetuning_type == "lora" and _cpu_bf16(plan)) else 4

    # weights
    linear, other = shape.linear_params(), shape.params - shape.linear_params()
    if plan.quantization_bit == 4:
        # nf4: half a byte per weight, plus a 4-byte absmax per 64 weights (double quantization
        # stores those in 8 bits with a 4-byte constant per 256 blocks).
        per_weight = 0.5 + (1 / 64 + 4 / (64 * 256) if plan.double_quantization else 4 / 64)
        weights = int(linear * per_weight) + other * weight_bytes
    elif plan.quantization_bit == 8:
        weights = linear * 1 + shape.layers * 7 * 4 * shape.hidden + other * weight_bytes  # int8 + a scale per row
    else:
        weights = shape.params * weight_bytes
    if not gpu and (plan.quantization_bit or shape.file_dtype_bytes != 4):
        # The CPU run reads the weight files through a memory map: converted or quantized weights
        # are copies, and the file's pages it read stay counted in the process's memory.
        weights += shape.file_bytes or shape.params * shape.file_dtype_bytes
    if plan.finetuning_type == "lora" and plan.additional_target:  # modules_to_save: a trained copy
        weights += sum(shape.embed_params for n in _names(plan.additional_target) if n in ("lm_head", "embed_tokens")) * weight_bytes

    # trainable parameters: AdamW's exp_avg and exp_avg_sq, and the gradient, in the parameter's
    # dtype; LoRA's own weights (peft keeps adapters in fp32 even on a bf16 base) besides.
    n_trainable = trainable_params(shape, plan)
    if plan.finetuning_type == "lora":
        trainable = n_trainable * 4 * 4  # weight, gradient, two states, all fp32
    else:
        trainable = n_trainable * weight_bytes * 3  # the weight itself is counted with the weights
    if gpu and plan.num_processes > 1:
        trainable += n_trainable * (4 if plan.finetuning_type == "lora" else weight_bytes)  # DDP's gradient buckets

    # activations
    tokens = plan.tokens
    per_layer = activation_elements(shape, plan)
    layers = trained_layers(shape, plan)
    act_bytes = weight_bytes
    if gpu and plan.finetuning_type == "lora":
        # peft casts each adapter's input to the adapter's fp32 (6 x hidden + intermediate per layer more).
        extra_fp32 = 6 * shape.hidden + shape.intermediate
    else:
        extra_fp32 = 0
    layer_bytes = per_layer * act_bytes + extra_fp32 * 4
    if gpu:
        factor = GPU_ALLOC_FACTOR
    else:
        factor = TCMALLOC_RSS_FACTOR if plan.tcmalloc else CPU_RSS_FACTOR.get(plan.finetuning_type, 1.2)
    kept = layers * layer_bytes  # freeze: the frozen layers under the trained ones keep nothing
    if plan.checkpointing:
        retained = 0 if gpu else CPU_CHECKPOINT_RETAINED * kept
        kept = shape.layers * shape.hidden * act_bytes + retained + layer_bytes  # inputs + recomputed layer
    activations = int(tokens * (kept * factor + 3 * shape.hidden * act_bytes))  # + embeddings, final norm

    # logits at the supervised positions (at most every position of the batch)
    supervised = tokens
    head_trained = plan.finetuning_type == "full" or "lm_head" in _names(plan.additional_target) + _names(plan.lora_target)
    if head_trained and plan.finetuning_type != "full":
        # A LoRA or modules_to_save output layer is no plain Linear: transformers computes all the
        # supervised logits at once, and the loss keeps their log-softmax and its gradient too.
        logits = supervised * shape.vocab * 4 * 3
    else:
        rows = min(supervised, LOGITS_CHUNK)
        logits = rows * shape.vocab * (4 + 4 + (2 if gpu else 0))  # the chunk's logits and probabilities
        logits += 2 * supervised * shape.hidden * 4  # the supervised hidden states and their gradient
    framework = (GPU_FRAMEWORK if gpu else CPU_FRAMEWORK + (CPU_BITSANDBYTES if plan.quantization_bit else 0))
    parts = {"framework": framework + STEP_OVERHEAD, "weights": int(weights), "trainable": int(trainable),
             "activations": activations, "logits": int(logits)}
    return Estimate(parts, plan, shape)


# ---------------------------------------------------------------------------- memory there is


@dataclass(frozen=True)
class MemoryPool:
    """A GPU's memory or the machine's RAM."""

    name: str
    total: int
    free: int
    kind: str  # "gpu" | "ram"


def available_memory() -> list[MemoryPool]:
    """Every GPU nvidia-smi lists (memory total and free), else the machine's RAM (psutil)."""
    gpus = _nvidia_smi()
    if gpus:
        return gpus
    import psutil

    vm = psutil.virtual_memory()
    return [MemoryPool("RAM", int(vm.total), int(vm.available), "ram")]


def _nvidia_smi() -> list[MemoryPool]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    wanted = None if visible is None else [v.strip() for v in visible.split(",") if v.strip()]
    pools = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        index, name, total, free = parts
        if wanted is not None and index not in wanted:
            continue
        try:
            pools.append(MemoryPool(f"GPU {index}: {name}", int(float(total)) * MB, int(float(free)) * MB, "gpu"))
        except ValueError:
            continue
    return pools


# ---------------------------------------------------------------------------- will it fit


@dataclass(frozen=True)
class Change:
    """A change of the run that lowers its memory, with what the run then needs."""

    code: str  # batch | cutoff | checkpointing | lora | qlora4 | one_process | all
    plan: RunPlan
    needed: int
    fits: bool


@dataclass
class Verdict:
    fits: bool
    needed: int  # of the memory that decides: one GPU, or the RAM for every process and the launcher
    available: int
    pool: str
    changes: list[Change]  # when it does not fit: those that make it fit first, then the closest


# The `accelerate launch` process that starts the trainer holds torch too: 250 MB resident,
# measured (the web UI always launches through it; on GPUs it lives in RAM, not on a GPU).
CPU_LAUNCHER = 250 * MB


def check_fit(est: Estimate, pools: list[MemoryPool]) -> Verdict:
    """Whether the run fits: on GPUs, one process per GPU against the tightest of the GPUs it
    uses; on the CPU, every process and the launcher together against the free RAM. When it does
    not, the changes that would make it fit (or come closest), each with its need."""
    needed, available, pool = need(est, pools)
    fits = needed <= available
    return Verdict(fits, needed, available, pool, [] if fits else changes(est, pools, available))


def need(est: Estimate, pools: list[MemoryPool]) -> tuple[int, int, str]:
    """(bytes needed, bytes free, the name of the memory that decides)."""
    gpus = [p for p in pools if p.kind == "gpu"]
    if gpus:
        tightest = min(gpus[: est.plan.num_processes], key=lambda p: p.free)
        return est.per_process, tightest.free, tightest.name
    ram = next((p for p in pools if p.kind == "ram"), None)
    return est.total + CPU_LAUNCHER, (ram.free if ram else 0), "RAM"


def changes(est: Estimate, pools: list[MemoryPool], available: int) -> list[Change]:
    plan = est.plan

    def largest_that_fits(field_name: str, values: list[int]) -> Optional[RunPlan]:
        """The first of `values` (largest first) with which the run fits, else the last."""
        plans = [replace(plan, **{field_name: v}) for v in values]
        return next((p for p in plans if need(estimate(est.shape, p), pools)[0] <= available), plans[-1]) if plans else None

    options: list[tuple[str, RunPlan]] = []
    batches = [plan.batch_size // 2 ** k for k in range(1, 12) if plan.batch_size // 2 ** k >= 1]
    cutoffs = [plan.cutoff_len // 2 ** k for k in range(1, 12) if plan.cutoff_len // 2 ** k >= 64]
    for code, field_name, values in (("batch", "batch_size", batches), ("cutoff", "cutoff_len", cutoffs)):
        smaller = largest_that_fits(field_name, values)
        if smaller is not None:
            options.append((code, smaller))
    if not plan.checkpointing:
        options.append(("checkpointing", replace(plan, checkpointing=True)))
    if plan.finetuning_type != "lora":
        options.append(("lora", replace(plan, finetuning_type="lora", quantization_bit=None)))
    if plan.quantization_bit != 4:
        options.append(("qlora4", replace(plan, finetuning_type="lora", quantization_bit=4)))
    if plan.num_processes > 1 and not any(p.kind == "gpu" for p in pools):
        options.append(("one_process", replace(plan, num_processes=1)))
    current = need(est, pools)[0]
    out = [Change(code, changed, need(estimate(est.shape, changed), pools)[0], False) for code, changed in options]
    out = [c for c in out if c.needed < current]  # on the CPU, LoRA keeps more per token than full: not offered
    if len(out) > 1:
        together = plan
        for c in out:
            together = replace(together, **{f: getattr(c.plan, f) for f in plan.__dataclass_fields__
                                             if getattr(c.plan, f) != getattr(plan, f)})
        out.append(Change("all", together, need(estimate(est.shape, together), pools)[0], False))
    out = [replace(c, fits=c.needed <= available) for c in out]
    return sorted((c for c in out if c.fits), key=lambda c: -c.needed) + sorted((c for c in out if not c.fits),
                                                                             key=lambda c: c.needed)


def human(n: float) -> str:
    """Bytes as the UI shows them: 512 MB, 1.25 GB."""
    return f"{n / GB:.2f} GB" if n >= GB else f"{n / MB:.0f} MB"
