"""Per-stage tokenization of unified records, cached through datasets' cache files.

  pt:     documents + eos, concatenated and cut into cutoff_len blocks; labels = input_ids
  sft:    every turn encoded by the template; prompt labels -100, every answer trained
  rm/dpo: prompt_input_ids, chosen_input_ids, rejected_input_ids (answers end with eos)
  kto:    prompt_input_ids, completion_input_ids (ends with eos), kto_tag
  grpo:   prompt_input_ids (the last cutoff_len tokens: generation continues from its end), the
          reference answer's text and token count, and the prompt's messages and system (a reward
          model encodes them with its own template)

Every row carries `length` for length-grouped batches. The tokenized dataset is written to
HF_DATASETS_CACHE/tuneforge/<fingerprint>.arrow; the fingerprint covers the records, template,
tokenizer, cutoff and stage settings, so a second run on the same inputs loads that file
instead of tokenizing again (--overwrite_cache forces a rebuild).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from core.data.collator import IGNORE_INDEX
from core.data.registry import check_stage, get_spec, load_records
from core.data.templates import Template, adds_bos, get_template
from core.errors import UserError

if TYPE_CHECKING:
    import datasets

    from core.args import DataArguments

# Bump when the tokenization below changes, so old cache files are not reused.
CODE_VERSION = "1"


def get_dataset(
    dataset_dir: str | Path,
    names: str,
    stage: str,
    tokenizer: Any,
    template: Template | str | None,  # a Template, a name, or None (see get_template); unused for pt
    data_args: "DataArguments",
    seed: int = 42,
    cache_dir: Optional[str | Path] = None,
    prefetched: bool = False,  # the tokenizing helper (core/data/prefetch.py) has just written the cache
) -> tuple["datasets.Dataset", Optional["datasets.Dataset"]]:
    """(train, eval) tokenized datasets for a stage from comma-separated dataset names."""
    dataset, cache_file = tokenize(dataset_dir, names, stage, tokenizer, template, data_args, cache_dir)
    if cache_file is not None and prefetched:
        print(f"[tuneforge] tokenized by the helper process while the libraries loaded: {cache_file}", flush=True)
    elif cache_file is not None:
        print(f"[tuneforge] tokenized samples from the cache: {cache_file}", flush=True)
    if len(dataset) == 0:
        raise UserError(f"dataset {names}: no {stage} samples left after tokenization; raise --cutoff_len or add data")
    return _split(dataset, data_args.val_size, seed)


def tokenize(
    dataset_dir: str | Path,
    names: str,
    stage: str,
    tokenizer: Any,
    template: Template | str | None,
    data_args: "DataArguments",
    cache_dir: Optional[str | Path] = None,
) -> tuple["datasets.Dataset", Optional[Path]]:
    """The tokenized records of every named dataset, and the cache file they were read from
    (None when tokenized now)."""
    import datasets

    if stage != "pt" and not isinstance(template, Template):  # pt text needs no chat template
        template = get_template(template, tokenizer)
    records = _load_all(dataset_dir, names, stage, data_args.max_samples)
    fingerprint = _fingerprint(records, stage, tokenizer, template, data_args)
    cache_dir = Path(cache_dir) if cache_dir else Path(datasets.config.HF_DATASETS_CACHE) / "tuneforge"
    cache_dir.mkdir(parents=True, exist_ok=True)
    workers = data_args.preprocessing_num_workers
    cache_file = cache_dir / f"{fingerprint}.arrow"
    from_cache = cache_file.exists() and not data_args.overwrite_cache
    dataset = datasets.Dataset.from_list(records).map(
        _tokenize_fn(stage, tokenizer, template, data_args),
        batched=True,
        remove_columns=list(records[0].keys()),
        cache_file_name=str(cache_file),
        load_from_cache_file=not data_args.overwrite_cache,
        new_fingerprint=fingerprint,
        num_proc=workers if workers and workers > 1 and len(records) >= 2 * workers else None,
        desc=f"Tokenizing ({stage})",
    )
    return dataset, cache_file if from_cache else None


def _load_all(dataset_dir: str | Path, names: str, stage: str, max_samples: Optional[int]) -> list[dict]:
    records: list[dict] = []
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise UserError("--dataset is empty; name one or more datasets from dataset_info.json (see `python launch.py data list`)")
    for name in wanted:
        check_stage(get_spec(dataset_dir, name), stage)
    for name in wanted:
        records += load_records(dataset_dir, name, max_samples=max_samples)
    # Arrow needs one schema: an sft dataset without system texts still has the column.
    return [{**r, "system": r.get("system")} if stage != "pt" else r for r in records]


def _split(dataset: "datasets.Dataset", val_size: float, seed: int) -> tuple["datasets.Dataset", Optional["datasets.Dataset"]]:
    if not val_size:
        return dataset, None
    test_size: float | int = int(val_size) if val_size >= 1 else val_size
    if isinstance(test_size, int) and test_size >= len(dataset):
        raise UserError(f"--val_size {test_size} leaves no training samples out of {len(dataset)}; use a share below 1 or a smaller count")
    if isinstance(test_size, float) and int(test_size * len(dataset)) < 1:
        raise UserError(f"--val_size {val_size} of {len(dataset)} samples is less than one sample; raise it or pass a count >= 1")
    split = dataset.train_test_split(test_size=test_size, seed=seed)
    return split["train"], split["test"]


# ---------------------------------------------------------------------------- cache key


def _fingerprint(records: list[dict], stage: str, tokenizer: Any, template: Optional[Template], data_args: "DataArguments") -> str:
    digest = hashlib.sha256()
    for part in (
        CODE_VERSION,
        stage,
        repr(template),
        _tokenizer_hash(tokenizer),
        data_args.cutoff_len,
        data_args.train_on_prompt,
        data_args.max_samples,
        data_args.system,
    ):
        digest.update(repr(part).encode() + b"\0")
    digest.update(json.dumps(records, ensure_ascii=False, sort_keys=True).encode())
    return "tuneforge-" + digest.hexdigest()[:32]


def _tokenizer_hash(tokenizer: Any) -> str:
    """A hash of everything about the tokenizer that changes the ids it produces."""
    digest = hashlib.sha256()
    for part in (
        getattr(tokenizer, "name_or_path", ""),
        len(tokenizer),
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        getattr(tokenizer, "chat_template", None),
        tokenizer.encode("a", add_special_tokens=True),
    ):
        digest.update(repr(part).encode() + b"\0")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # fast tokenizers: their whole definition, in memory or from disk
        digest.update(backend.to_str().encode())
    else:
        folder = Path(str(getattr(tokenizer, "name_or_path", "")))
        for name in ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"):
            if (folder / name).is_file():
                digest.update((folder / name).read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- tokenization


def _tokenize_fn(stage: str, tokenizer: Any, template: Optional[Template], data_args: "DataArguments"):
    if stage == "pt":
        return lambda batch: tokenize_pt(batch, tokenizer, data_args.cutoff_len)
    if stage == "sft":
        return lambda batch: tokenize_sft(batch, tokenizer, template, data_args.cutoff_len, data_args.train_on_prompt, data_args.system)
    if stage in ("rm", "dpo"):
        return lambda batch: tokenize_pairwise(batch, tokenizer, template, data_args.cutoff_len, data_args.system)
    if stage == "kto":
        return lambda batch: tokenize_unpaired(batch, tokenizer, template, data_args.cutoff_len, data_args.system)
    if stage == "grpo":
        return lambda batch: tokenize_prompts(batch, tokenizer, template, data_args.cutoff_len, data_args.system)
    raise UserError(f"unknown stage '{stage}'; choose one of pt, sft, rm, dpo, kto, grpo")


def tokenize_pt(batch: dict[str, list], tokenizer: Any, cutoff_len: int) -> dict[str, list]:
    """Concatenate the batch's documents (each + eos) and cut them into cutoff_len blocks.

    The short remainder is dropped unless it is the only block, as in LLaMA-Factory: a
    partial block would be mostly padding.
    """
    bos = [tokenizer.bos_token_id] if adds_bos(tokenizer) else []
    stream: list[int] = []
    for text in batch["text"]:
        stream += bos + tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
    blocks = [stream[i : i + cutoff_len] for i in range(0, len(stream), cutoff_len)]
    if len(blocks) > 1 and len(blocks[-1]) < cutoff_len:
        blocks.pop()
    return {"input_ids": blocks, "labels": [list(b) for b in blocks], "length": [len(b) for b in blocks]}


def tokenize_sft(
    batch: dict[str, list], tokenizer: Any, template: Template, cutoff_len: int, train_on_prompt: bool, system: Optional[str]
) -> dict[str, list]:
    out: dict[str, list] = {"input_ids": [], "labels": [], "length": []}
    conversations = [(messages, record_system or system) for messages, record_system in zip(batch["messages"], batch["system"])]
    for pairs in template.encode_many(tokenizer, conversations):
        input_ids, labels = [], []
        for source, target in truncate_turns(pairs, cutoff_len):
            input_ids += source + target
            labels += (source if train_on_prompt else [IGNORE_INDEX] * len(source)) + target
        out["input_ids"].append(input_ids)
        out["labels"].append(labels)
        out["length"].append(len(input_ids))
    return out


def tokenize_pairwise(batch: dict[str, list], tokenizer: Any, template: Template, cutoff_len: int, system: Optional[str]) -> dict[str, list]:
    out: dict[str, list] = {"prompt_input_ids": [], "chosen_input_ids": [], "rejected_input_ids": [], "length": []}
    conversations = []  # each record twice: its messages + the chosen answer, then + the rejected one
    for messages, record_system, chosen, rejected in zip(batch["messages"], batch["system"], batch["chosen"], batch["rejected"]):
        for answer in (chosen, rejected):
            conversations.append((messages + [{"role": "assistant", "content": answer}], record_system or system))
    encoded = template.encode_many(tokenizer, conversations)
    for chosen_pairs, rejected_pairs in zip(encoded[0::2], encoded[1::2]):
        prompt_ids, chosen_ids = _prompt_and_answer(chosen_pairs)
        _, rejected_ids = _prompt_and_answer(rejected_pairs)
        source_len, target_len = infer_seqlen(len(prompt_ids), max(len(chosen_ids), len(rejected_ids)), cutoff_len)
        prompt_ids, chosen_ids, rejected_ids = prompt_ids[:source_len], chosen_ids[:target_len], rejected_ids[:target_len]
        out["prompt_input_ids"].append(prompt_ids)
        out["chosen_input_ids"].append(chosen_ids)
        out["rejected_input_ids"].append(rejected_ids)
        out["length"].append(len(prompt_ids) + max(len(chosen_ids), len(rejected_ids)))
    return out


def tokenize_unpaired(batch: dict[str, list], tokenizer: Any, template: Template, cutoff_len: int, system: Optional[str]) -> dict[str, list]:
    """kto: each record's prompt and its one answer, cut to cutoff_len like a pair, and the answer's tag."""
    out: dict[str, list] = {"prompt_input_ids": [], "completion_input_ids": [], "kto_tag": [], "length": []}
    conversations = [(messages, record_system or system) for messages, record_system in zip(batch["messages"], batch["system"])]
    for pairs, tag in zip(template.encode_many(tokenizer, conversations), batch["kto_tag"]):
        prompt_ids, answer_ids = _prompt_and_answer(pairs)
        source_len, target_len = infer_seqlen(len(prompt_ids), len(answer_ids), cutoff_len)
        out["prompt_input_ids"].append(prompt_ids[:source_len])
        out["completion_input_ids"].append(answer_ids[:target_len])
        out["kto_tag"].append(bool(tag))
        out["length"].append(source_len + target_len)
    return out


def tokenize_prompts(batch: dict[str, list], tokenizer: Any, template: Template, cutoff_len: int, system: Optional[str]) -> dict[str, list]:
    """grpo: the prompt to sample answers from and what the rewards compare them with.

    A long prompt keeps its last cutoff_len tokens (the assistant's header is where generation
    starts); the reference answer is the record's last answer, its length counted with its eos.
    """
    out: dict[str, list] = {"prompt_input_ids": [], "answer": [], "answer_length": [], "prompt_messages": [],
                            "prompt_system": [], "length": []}
    conversations = [(messages, record_system or system) for messages, record_system in zip(batch["messages"], batch["system"])]
    for (messages, record_system), pairs in zip(conversations, template.encode_many(tokenizer, conversations)):
        prompt_ids, answer_ids = _prompt_and_answer(pairs)
        out["prompt_input_ids"].append(prompt_ids[-cutoff_len:])
        out["answer"].append(messages[-1]["content"])
        out["answer_length"].append(len(answer_ids))
        out["prompt_messages"].append(messages[:-1])
        out["prompt_system"].append(record_system)
        out["length"].append(min(len(prompt_ids), cutoff_len))
    return out


def _prompt_and_answer(pairs: list[tuple[list[int], list[int]]]) -> tuple[list[int], list[int]]:
    """(every turn before the last answer, the last answer) of an encoded conversation."""
    prompt: list[int] = []
    for source, target in pairs[:-1]:
        prompt += source + target
    return prompt + pairs[-1][0], pairs[-1][1]


def truncate_turns(pairs: list[tuple[list[int], list[int]]], cutoff_len: int) -> list[tuple[list[int], list[int]]]:
    """Fit turns into cutoff_len: each turn gets its share of what is left, its answer never empty.

    A later turn that cannot keep at least one answer token after its prompt is dropped, with
    every turn after it (a truncated prompt followed by nothing to learn is useless).
    """
    kept = []
    budget = cutoff_len
    for i, (source, target) in enumerate(pairs):
        if budget <= 0 or (i > 0 and budget < 2):
            break
        source_len, target_len = infer_seqlen(len(source), len(target), budget)
        if i > 0 and target_len == 0:
            break
        kept.append((source[:source_len], target[:target_len]))
        budget -= source_len + target_len
    return kept


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """Split cutoff_len between prompt and answer, like LLaMA-Factory, keeping >= 1 answer token.

    A short answer is kept whole and the prompt cut; a short prompt is kept whole and the
    answer cut; when both are long the budget is shared in proportion to their lengths.
    """
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    if target_len > 0 and cutoff_len > 0:
        new_target_len = max(new_target_len, 1)
    new_source_len = min(max(cutoff_len - new_target_len, 0), source_len)
    return new_source_len, new_target_len

