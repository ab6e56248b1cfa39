"""Loading the tokenizer and model, quantization, and the LoRA / freeze / full adapters.

The training stages, chat and export all load through here, so the quantization and adapter
logic exists once.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

from core.args import FinetuningArguments, ModelArguments
from core.errors import UserError
from core.model_source import ModelSource
from core.progress import print_phase


def resolve_source(name: Optional[str], progress: Optional[Callable[[float, str], None]] = None) -> ModelSource:
    """The model's local files: a folder, a .gguf file, or a hub id downloaded into the HF cache
    (`progress` hears how far the download is).

    Resolved once per process and name, so the tokenizer and the weights never download twice.
    """
    from core.model_source import resolve_model

    key = str(name or "")
    if key not in _RESOLVED:
        _RESOLVED[key] = resolve_model(name, progress=progress)
    return _RESOLVED[key]


_RESOLVED: dict[str, ModelSource] = {}

GGUF_QUANTIZATION_REFUSAL = (
    "--quantization_bit with the GGUF file '{name}': transformers dequantizes a GGUF and cannot quantize it "
    "again while loading; leave quantization_bit empty, or build a model folder from it first and quantize that"
)


def _from_pretrained_args(source: ModelSource) -> tuple[str, dict[str, Any]]:
    """(path, extra kwargs) for transformers' from_pretrained: a GGUF file is named separately."""
    assert source.folder is not None, source
    if source.gguf_file:
        return str(source.folder), {"gguf_file": source.gguf_file}
    return str(source.folder), {}


def compute_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def load_dtype(model_args: ModelArguments, training_args: Any = None, trained_in_full: bool = False) -> "Any":
    """The dtype of the loaded weights: half precision on a GPU; on a CPU, bf16 in a --bf16 run
    (core.args turns it on only where the CPU multiplies bf16 in hardware), else fp32.

    On a CPU, weights that are trained in full (full and freeze fine-tuning) load in fp32 even in
    a --bf16 run: rounding them to bf16 first would lose what the file holds, and autocast
    multiplies them in bf16 anyway. Frozen weights in bf16 take half the memory and no cast per step.
    """
    import torch

    if compute_device() == "cpu":
        return torch.bfloat16 if getattr(training_args, "bf16", False) and not trained_in_full else torch.float32
    if training_args is not None and getattr(training_args, "fp16", False):
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def load_tokenizer(model_args: ModelArguments):
    from transformers import AutoTokenizer

    source = resolve_source(model_args.model_name_or_path)
    path, extra = _from_pretrained_args(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=model_args.trust_remote_code, **extra)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load the tokenizer of '{source.name}': {str(err).splitlines()[0]}") from None
    if tokenizer.pad_token_id is None:
        # Padding positions are masked out of attention and loss, so any id works; eos is standard.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(model_args: ModelArguments, compute_dtype: Any):
    if model_args.quantization_bit is None:
        return None
    from transformers import BitsAndBytesConfig

    if model_args.quantization_bit == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=model_args.quantization_type,
        bnb_4bit_use_double_quant=model_args.double_quantization,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_quant_storage=compute_dtype,
    )


def load_base_model(model_args: ModelArguments, training_args: Any = None, model_class: Any = None,
                    trained_in_full: bool = False, **kwargs: Any):
    """The base model on the right device and dtype (load_dtype), quantized if asked."""
    import torch
    from transformers import AutoModelForCausalLM

    source = resolve_source(model_args.model_name_or_path)
    path, extra = _from_pretrained_args(source)
    dtype = load_dtype(model_args, training_args, trained_in_full)
    quant = quantization_config(model_args, dtype)
    if quant is not None and source.gguf_file:
        raise UserError(GGUF_QUANTIZATION_REFUSAL.format(name=source.name))
    load_kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": model_args.trust_remote_code, **extra}
    if quant is not None:
        load_kwargs["quantization_config"] = quant
        # A quantized model must be placed at load time; each rank takes its own device.
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        load_kwargs["device_map"] = {"": local_rank} if torch.cuda.is_available() else {"": "cpu"}
    cls = model_class or AutoModelForCausalLM
    try:
        model = cls.from_pretrained(path, **load_kwargs, **kwargs)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load the model '{source.name}': {str(err).splitlines()[0]}") from None
    if source.gguf_file:
        model = plain_copy(model)
    if quant is not None and model_args.quantization_bit == 4:
        _disable_cpu_packed_4bit(model)
    return model


def plain_copy(model):
    """The same weights in a model without transformers' GGUF quantizer.

    A model loaded from a GGUF file is dequantized but keeps a quantizer that refuses training
    and save_pretrained. The copy is built on the meta device and takes the loaded tensors
    over, so no weight is allocated twice.
    """
    import torch

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = type(model)._from_config(config, dtype=model.dtype)
    plain.load_state_dict(model.state_dict(), assign=True)
    # Buffers outside the state dict (rotary frequencies) are still on meta: take them over too.
    loaded = dict(model.named_buffers())
    for name, buffer in list(plain.named_buffers()):
        if buffer.is_meta:
            owner, _, leaf = name.rpartition(".")
            plain.get_submodule(owner).register_buffer(leaf, loaded[name], persistent=False)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    return plain


def _disable_cpu_packed_4bit(model) -> None:
    # bitsandbytes' packed AVX512-BF16 CPU path asserts on layers whose output size is not a
    # multiple of 32 when running without gradients (eval, generation): use the plain path.
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def is_sequence_classifier(model) -> bool:
    """A *ForSequenceClassification model (the reward model): its `score` head is trained in full."""
    return type(model).__name__.endswith("ForSequenceClassification")


def head_module_names(model) -> set[str]:
    """The output head (last name component): never a LoRA target; trained in full on a reward model."""
    if is_sequence_classifier(model):
        return {"score"}
    output = model.get_output_embeddings()
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if output is not None and module is output}


def linear_module_names(model) -> list[str]:
    """Names (last component) of the linear layers LoRA can target, without the output layer."""
    import torch

    names = set()
    heads = head_module_names(model)
    for full_name, module in model.named_modules():
        if full_name.rsplit(".", 1)[-1] in heads:
            continue
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt"):
            names.add(full_name.rsplit(".", 1)[-1])
    return sorted(names)


def _split(value: Optional[str]) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def lora_targets(model, finetuning_args: FinetuningArguments) -> list[str]:
    """The modules named by --lora_target, refused by name if the model has no such module."""
    available = linear_module_names(model)
    requested = _split(finetuning_args.lora_target)
    if requested in ([], ["all"]):
        return available
    all_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [name for name in requested if name not in all_names]
    if missing:
        raise UserError(
            f"--lora_target {','.join(missing)}: the model has no such module; "
            f"its linear layers are {','.join(available)} (or use 'all')"
        )
    return requested


def apply_adapter(model, model_args: ModelArguments, finetuning_args: FinetuningArguments, training_args: Any, is_trainable: bool = True):
    """Make the right weights trainable: LoRA through peft, the last N layers, or everything."""
    if finetuning_args.finetuning_type == "full":
        model.requires_grad_(is_trainable)
        return model
    if finetuning_args.finetuning_type == "freeze":
        return _freeze_all_but_last(model, finetuning_args.freeze_trainable_layers)
    return _apply_lora(model, model_args, finetuning_args, training_args, is_trainable)


def _freeze_all_but_last(model, n_layers: int):
    total = model.config.num_hidden_layers
    if n_layers > total:
        raise UserError(f"--freeze_trainable_layers {n_layers}: the model has only {total} layers")
    trainable = {str(i) for i in range(total - n_layers, total)}
    # A reward model's score head starts random: it must learn whatever else is frozen.
    heads = head_module_names(model) if is_sequence_classifier(model) else set()
    for name, param in model.named_parameters():
        parts = name.split(".")
        # Parameters of decoder layers are named ...layers.<i>...; everything else stays frozen.
        in_layer = "layers" in parts and parts[parts.index("layers") + 1] in trainable
        param.requires_grad_(in_layer or bool(heads & set(parts)))
    return model


def _apply_lora(model, model_args, finetuning_args, training_args, is_trainable: bool):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if model_args.quantization_bit is not None and is_trainable:
        use_ckpt = bool(getattr(training_args, "gradient_checkpointing", False))
        with _peft_reading_old_checkpointing_name():
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=use_ckpt)
    if model_args.adapter_name_or_path:
        return load_adapter(model, model_args.adapter_name_or_path, is_trainable=is_trainable)
    config = LoraConfig(
        task_type=finetuning_args_task_type(model),
        r=finetuning_args.lora_rank,
        lora_alpha=finetuning_args.lora_alpha or 2 * finetuning_args.lora_rank,
        lora_dropout=finetuning_args.lora_dropout,
        target_modules=lora_targets(model, finetuning_args),
        modules_to_save=_split(finetuning_args.additional_target) or None,
    )
    extra = set(config.modules_to_save or [])
    known = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if extra - known:
        raise UserError(f"--additional_target {','.join(sorted(extra - known))}: the model has no such module")
    with _peft_reading_old_checkpointing_name():
        return get_peft_model(model, config)


# transformers 5 renamed `model.is_gradient_checkpointing` and `gradient_checkpointing_enable()` to
# `is_activation_checkpointing` and `activation_checkpointing_enable()`, and warns on every use of
# the old names (a FutureWarning, until v6). peft 0.21 still uses them: PeftModel.__init__ reads
# `getattr(model, "is_gradient_checkpointing", True)`, so every LoRA run and adapter load printed
# it, and prepare_model_for_kbit_training calls the old enable. They do the right thing under the
# old names; only those two warnings are silenced, only while peft works on the model.
OLD_CHECKPOINTING_NAME_WARNING = r"`(is_gradient_checkpointing|gradient_checkpointing_enable)` is deprecated"


@contextmanager
def _peft_reading_old_checkpointing_name():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=OLD_CHECKPOINTING_NAME_WARNING, category=FutureWarning)
        yield


def finetuning_args_task_type(model) -> str:
    # peft's SEQ_CLS adds the `score` head to modules_to_save: trained in full, saved with the adapter.
    return "SEQ_CLS" if is_sequence_classifier(model) else "CAUSAL_LM"


def load_adapter(model, adapter_path: str, is_trainable: bool = False):
    """Put a saved LoRA adapter on a loaded base model, refusing a mismatch in one line."""
    from peft import PeftModel

    folder = Path(adapter_path)
    if not (folder / "adapter_config.json").is_file():
        raise UserError(
            f"adapter '{adapter_path}' has no adapter_config.json; pass a LoRA run folder or one of its checkpoint-N folders"
        )
    try:
        with _peft_reading_old_checkpointing_name():
            return PeftModel.from_pretrained(model, str(folder), is_trainable=is_trainable)
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"adapter '{adapter_path}' does not fit the base model ({first[:200]}); it was probably trained on another base model"
        ) from None


def count_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _upcast_trainable(model) -> None:
    """Trained weights in fp32 on a bf16 base (a reward model's score head, a modules_to_save copy;
    peft keeps LoRA's own in fp32): AdamW's small steps vanish in bf16's 8-bit mantissa, and
    autocast multiplies them in bf16 anyway."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()


def load_model_for_training(model_args: ModelArguments, finetuning_args: FinetuningArguments, training_args: Any, model_class: Any = None, **kwargs: Any):
    from transformers import set_seed

    # Seeded before anything random is built (LoRA's A matrices, a reward head): the Trainer
    # seeds only when it starts, after the model exists, so the same --seed gave other weights.
    set_seed(training_args.seed)
    print_phase(f"loading the model weights of {model_args.model_name_or_path}")
    in_full = finetuning_args.finetuning_type != "lora"
    model = load_base_model(model_args, training_args, model_class=model_class, trained_in_full=in_full, **kwargs)
    if training_args.gradient_checkpointing:
        # transformers 5's name; gradient_checkpointing_enable is its deprecated alias (a FutureWarning).
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    model = apply_adapter(model, model_args, finetuning_args, training_args, is_trainable=True)
    if compute_device() == "cpu":
        _upcast_trainable(model)
    trainable, total = count_parameters(model)
    print(f"[tuneforge] trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f} %)", flush=True)
    return model
