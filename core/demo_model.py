"""Build the offline demo model: `python launch.py demo-model` -> data/models/demo.

A LLaMA of a few million parameters with a byte-level BPE tokenizer trained on the bundled
data (English and Chinese) and a llama2 chat template. A one-minute LoRA run on
data/demo_sft.json turns its babble into the dataset's answers in chat.

By default the weights stay at their seeded random initialisation: measured on 2 CPU cores, a
base pretrained for 30-60 steps on the bundled text learned the demo set more slowly under
LoRA (loss 4.4 -> 2.6, -43 %, answers degenerating into repeated tokens) than the random base
(7.8 -> 2.3, -71 %). `--pretrain_steps N` still pretrains, deterministically, for experiments.

Deterministic: the same seed and data give byte-identical files (fixed pretraining steps, one
seeded generator, a fixed thread count, deterministic torch algorithms). Idempotent: a complete
model in the target folder is kept unless `force`. Atomic: the model is written into a temporary
sibling folder and renamed, so an interrupted build never leaves a half model behind.
Imports of torch, tokenizers and transformers happen inside the functions (the UI imports this).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from core.errors import UserError

Progress = Callable[[float, str], None]

DEFAULT_OUT = "data/models/demo"
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")  # ids 0, 1, 2, 3
VOCAB_SIZE = 8000
MAX_LENGTH = 1024
THREADS = 2  # fixed, so the float sums (and so the weights) do not depend on the machine's cores
MODEL_CONFIG = dict(
    hidden_size=256,
    intermediate_size=704,  # a multiple of 32: bitsandbytes' 4-bit CPU generation needs it
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=8,
    max_position_embeddings=MAX_LENGTH,
    hidden_act="silu",
    rms_norm_eps=1e-6,
    initializer_range=0.02,
    tie_word_embeddings=False,
)
# The output layer starts 5x larger than the rest (std 0.1): with std 0.02 the logits of a LoRA
# run whose lm_head stays frozen cannot grow enough and the loss stays above ~4 (measured).
LM_HEAD_INIT_SCALE = 5.0
PRETRAIN_STEPS = 0  # see the module docstring: pretraining slowed the LoRA demo down
PRETRAIN_BATCH = 16
PRETRAIN_SEQ = 128
PRETRAIN_LR = 3e-3
MARKER = "demo_build.json"  # written last: its presence means the folder holds a complete model
REQUIRED_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", MARKER)

# Meta's llama2 chat format, as the `llama2` template renders it:
# <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system_message = messages[0]['content'] %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system_message = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}"
    "{% if loop.first and system_message %}"
    "{{ bos_token + '[INST] <<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)


# ---------------------------------------------------------------------------- data


# The files the demo tokenizer learns from, fixed: a user's own dataset in data/ (or a bundled
# set added later for other models, like identity.json) must not change the demo's vocabulary.
CORPUS_FILES = ("alpaca_demo.json", "alpaca_history_demo.json", "comparison_demo.json", "demo_pref.json",
                "demo_sft.json", "sharegpt_demo.json", "wiki_demo.txt")


def corpus_files(data_dir: str | Path) -> list[Path]:
    """The bundled text the demo tokenizer is trained on, in name order."""
    data_dir = Path(data_dir)
    files = [data_dir / name for name in CORPUS_FILES if (data_dir / name).is_file()]
    if not files:
        raise UserError(f"no .json or .txt data in {data_dir} to train the demo tokenizer on; pass --data_dir with the bundled data")
    return files


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def read_texts(files: list[Path]) -> list[str]:
    """Every string value of the JSON files and every line of the text files, in a fixed order.

    Each string is its own document: the base learns to write the bundled sentences, not which
    answer follows which question (that is left for the LoRA run to show).
    """
    texts: list[str] = []
    for path in files:
        try:
            raw = path.read_text(encoding="utf-8")
            texts.extend(_strings(json.loads(raw)) if path.suffix == ".json" else (ln for ln in raw.splitlines() if ln.strip()))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            print(f"[demo-model] skipping {path.name}: not readable ({str(err).splitlines()[0]})")
    return texts


# ---------------------------------------------------------------------------- tokenizer


def build_tokenizer(texts: list[str], out_dir: Path):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,  # the bundled data is small; rare words still get their own tokens
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The chat template's markers are part of every chat; let them become few tokens.
    markers = ["[INST] <<SYS>>\n", "\n<</SYS>>\n\n", " [/INST]"] * 50
    tok.train_from_iterator(texts + markers, trainer=trainer)
    # LLaMA behaviour: encoding with special tokens prepends <s>.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=MAX_LENGTH,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    fast.save_pretrained(out_dir)
    # Keep the chat template inside tokenizer_config.json (read by transformers 4.x and 5.x) and
    # name a class both know; 5.x would write its internal TokenizersBackend.
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg["chat_template"] = CHAT_TEMPLATE
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out_dir / "chat_template.jinja").unlink(missing_ok=True)
    for i, name in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(name) == i, (name, tok.token_to_id(name))
    return fast


# ---------------------------------------------------------------------------- model


def init_model(vocab_size: int, seed: int):
    """A LlamaForCausalLM with our own, transformers-version-independent initialisation."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=3, use_cache=True, **MODEL_CONFIG)
    model = LlamaForCausalLM(config).to(torch.float32)
    seeded_init(model, seed, MODEL_CONFIG["initializer_range"])
    with torch.no_grad():
        model.lm_head.weight.mul_(LM_HEAD_INIT_SCALE)
    return model


def seeded_init(model, seed: int, std: float) -> None:
    """Our own, transformers-version-independent init: N(0, std) for every matrix and embedding,
    ones for norms, drawn in sorted parameter-name order from one seeded generator (so the same
    seed gives byte-identical weights whatever transformers' own init does)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.ndim == 1:
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std)


def pack(texts: list[str], tokenizer) -> "torch.Tensor":
    """All documents as one stream `<s> text </s> <s> text </s> ...` cut into PRETRAIN_SEQ rows."""
    import torch

    ids: list[int] = []
    for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids += [tokenizer.bos_token_id, *enc, tokenizer.eos_token_id]
    rows = len(ids) // PRETRAIN_SEQ
    return torch.tensor(ids[: rows * PRETRAIN_SEQ]).view(rows, PRETRAIN_SEQ)


def pretrain(model, rows, steps: Optional[int], seconds: Optional[float], seed: int, report: Progress) -> int:
    """Plain next-token training on the packed rows; a fixed step count keeps it deterministic."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, betas=(0.9, 0.95), weight_decay=0.0)
    total = steps if steps is not None else 10**9
    warmup = 5
    order = torch.randperm(len(rows), generator=gen)
    start, pos, step = time.monotonic(), 0, 0
    model.train()
    while step < total:
        if seconds is not None and time.monotonic() - start >= seconds:
            break
        if pos + PRETRAIN_BATCH > len(order):
            order, pos = torch.randperm(len(rows), generator=gen), 0
        batch = rows[order[pos : pos + PRETRAIN_BATCH]]
        pos += PRETRAIN_BATCH
        frac = step / total if steps is not None else (time.monotonic() - start) / seconds
        lr = PRETRAIN_LR * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step == 1 or step % 10 == 0 or step == total:
            report(0.2 + 0.75 * min(frac, 1.0), f"pretraining step {step}/{steps or '?'}: loss {loss.item():.3f}")
    model.eval()
    return step


# ---------------------------------------------------------------------------- build


def is_complete(path: str | Path) -> bool:
    return all((Path(path) / name).is_file() for name in REQUIRED_FILES)


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def build_demo_model(
    out_dir: str = DEFAULT_OUT,
    data_dir: str = "data",
    seed: int = 0,
    pretrain_seconds: Optional[float] = None,
    force: bool = False,
    progress: Optional[Progress] = None,
    pretrain_steps: Optional[int] = None,
) -> Path:
    """Build the demo model into out_dir and return its path.

    pretrain_seconds: None = pretrain_steps steps (default PRETRAIN_STEPS, deterministic);
    0 = no pretraining; > 0 = pretrain for that long (not deterministic, for experiments).
    progress(fraction 0..1, message) is called along with every printed line.
    """
    steps = PRETRAIN_STEPS if pretrain_steps is None else pretrain_steps
    if pretrain_seconds == 0:
        steps = 0
    out = Path(out_dir)

    def report(frac: float, message: str) -> None:
        print(f"[demo-model] {message}", flush=True)
        if progress is not None:
            progress(frac, message)

    if is_complete(out) and not force:
        report(1.0, f"{out} already holds the demo model (pass --force to rebuild)")
        return out
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder; remove it or pass another --out")

    import torch

    started = time.monotonic()
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        files = corpus_files(data_dir)
        texts = read_texts(files)
        report(0.02, f"training a BPE tokenizer on {len(texts)} texts from {len(files)} files in {data_dir}")
        tokenizer = build_tokenizer(texts, tmp)
        report(0.1, f"tokenizer: {len(tokenizer)} tokens; initialising the model (seed {seed})")
        model = init_model(len(tokenizer), seed)
        n_params = sum(p.numel() for p in model.parameters())
        steps_done = 0
        if steps > 0 or (pretrain_seconds or 0) > 0:
            rows = pack(texts, tokenizer)
            report(0.2, f"pretraining {n_params / 1e6:.1f} M parameters on {rows.numel()} tokens")
            steps_done = pretrain(model, rows, None if pretrain_seconds else steps, pretrain_seconds or None, seed, report)
        model.generation_config.bos_token_id = tokenizer.bos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp, safe_serialization=True)
        info = {
            "seed": seed,
            "parameters": n_params,
            "vocab_size": len(tokenizer),
            "pretrain_steps": steps_done,
            "deterministic": not pretrain_seconds,
            "data": {p.name: _sha1(p) for p in files},
        }
        (tmp / MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out.exists():  # incomplete or forced: move it aside first so the rename cannot fail half way
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            shutil.rmtree(old)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)
    report(1.0, f"demo model ready in {out} ({n_params / 1e6:.1f} M parameters, {time.monotonic() - started:.0f} s)")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="launch.py demo-model", description="Build the offline demo model (tiny LLaMA + tokenizer).")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"target folder (default {DEFAULT_OUT})")
    parser.add_argument("--data_dir", default="data", help="bundled data the tokenizer and pretraining read (default data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder holds a complete model")
    parser.add_argument("--quick", action="store_true", help="skip pretraining, whatever --pretrain_steps says (for tests)")
    parser.add_argument("--pretrain_steps", type=int, default=PRETRAIN_STEPS,
                        help=f"next-token steps on the bundled text before saving (default {PRETRAIN_STEPS}; deterministic)")
    args = parser.parse_args(argv)
    try:
        build_demo_model(args.out, args.data_dir, args.seed, 0 if args.quick else None, args.force, pretrain_steps=args.pretrain_steps)
    except UserError as err:
        print(f"[demo-model] error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
