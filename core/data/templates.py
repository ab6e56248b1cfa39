"""Chat templates: how a conversation becomes token ids, for training and for chat alike.

A template is a handful of format strings. `{bos}` and `{eos}` in them stand for the tokenizer's
bos/eos ids (added as ids, never encoded as text), so "<s>"/"</s>" mean the real special tokens
whatever the vocabulary. Every piece is encoded with `add_special_tokens=False` on its own, and
`encode_prompt` reuses the exact pieces `encode_multiturn` trains on, so a chat prompt is
token-for-token the prefix the model saw in training.

`auto` renders with the tokenizer's own chat template (transformers' apply_chat_template) and
cuts prompt and response apart by rendering successive prefixes of the conversation.

No torch/transformers import here: the web UI imports this module (propose_template) at start.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from core.errors import UserError

Messages = list[dict[str, str]]

# Tokens that end an assistant turn in common chat vocabularies; stop_token_ids adds those the
# tokenizer has as single tokens, so generation stops at a turn's end, not only at eos.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")

# Private-use characters stand for bos/eos while a turn is rendered as text, so a user writing
# "{bos}" in a message gets that text, not a special token.
BOS, EOS = "\ue000", "\ue001"
_SPECIAL = re.compile(f"({BOS}|{EOS})")


@dataclass(frozen=True)
class Template:
    """String formats of one prompt style; `{query}`, `{response}`, `{system}` are filled in."""

    name: str
    format_user: str = "{query}"
    format_assistant: str = "{response}{eos}"
    format_system: str = "{system}"
    system_in_first_user: bool = False  # llama2 folds the system text into the first [INST]
    format_separator: str = ""  # goes before every user turn but the first
    default_system: str = ""
    bos_at_start: bool = True  # add bos before the conversation when the tokenizer adds one itself
    stop_words: tuple[str, ...] = ()
    use_chat_template: bool = False  # "auto": the tokenizer's own chat template

    # ------------------------------------------------------------------ public

    def encode_multiturn(self, tokenizer: Any, messages: Messages, system: Optional[str] = None) -> list[tuple[list[int], list[int]]]:
        """(prompt_ids, response_ids) for each user/assistant pair of a conversation ending with the assistant."""
        return self.encode_many(tokenizer, [(messages, system)])[0]

    def encode_many(self, tokenizer: Any, conversations: list[tuple[Messages, Optional[str]]]) -> list[list[tuple[list[int], list[int]]]]:
        """encode_multiturn for many (messages, system) conversations, with one tokenizer call for
        all their text: the tokenizer's batch path is ~1.5x faster than text by text."""
        for messages, _ in conversations:
            _check_messages(messages, last="assistant")
        if self.use_chat_template:
            return [_auto_pairs(tokenizer, messages, system) for messages, system in conversations]
        return self._pairs(tokenizer, conversations)

    def encode_prompt(self, tokenizer: Any, messages: Messages, system: Optional[str] = None) -> list[int]:
        """Ids of a conversation ending with a user turn, ready for generation of the answer.

        Exactly the concatenation the training encoding gives for the same prefix.
        """
        _check_messages(messages, last="user")
        if self.use_chat_template:
            pairs = _auto_pairs(tokenizer, messages, system)
        else:
            pairs = self._pairs(tokenizer, [(messages, system)])[0]
        ids: list[int] = []
        for prompt_ids, response_ids in pairs:
            ids += prompt_ids + response_ids
        return ids

    def stop_token_ids(self, tokenizer: Any) -> list[int]:
        """eos plus the end-of-turn tokens this template or tokenizer uses, as single ids."""
        ids = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
        words = self.stop_words + (END_OF_TURN_TOKENS if self.use_chat_template else ())
        for word in words:
            token_id = _single_token_id(tokenizer, word)
            if token_id is not None and token_id not in ids:
                ids.append(token_id)
        return ids

    # ------------------------------------------------------------------ string templates

    def _pairs(self, tokenizer: Any, conversations: list[tuple[Messages, Optional[str]]]) -> list[list[tuple[list[int], list[int]]]]:
        """Encoded pairs of each conversation (ending with the assistant or, for a prompt, the user)."""
        bos = BOS if self.bos_at_start and adds_bos(tokenizer) else ""
        rendered = [self._render(messages, system, bos) for messages, system in conversations]
        ids = iter(_encode_many(tokenizer, [text for pairs in rendered for pair in pairs for text in pair]))
        return [[(next(ids), next(ids)) for _ in pairs] for pairs in rendered]

    def _render(self, messages: Messages, system: Optional[str], bos: str) -> list[tuple[str, str]]:
        """(prompt, response) texts of each turn, with BOS/EOS markers where the special ids go."""
        system_text = self.default_system if system is None else system
        rendered_system = self.format_system.format(system=system_text) if system_text else ""
        pairs = []
        for i in range(0, len(messages), 2):
            query = messages[i]["content"]
            prefix = ""
            if i == 0:
                prefix = bos
                if self.system_in_first_user:
                    query = rendered_system + query
                else:
                    prefix += rendered_system
            else:
                prefix = self.format_separator
            prompt = prefix + self.format_user.format(query=query, bos=BOS, eos=EOS)
            response = ""
            if i + 1 < len(messages):
                response = self.format_assistant.format(response=messages[i + 1]["content"], bos=BOS, eos=EOS)
            pairs.append((prompt, response))
        return pairs


def _encode_many(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Encode rendered texts whose BOS/EOS markers become the tokenizer's special ids; the plain
    pieces of every text go to the tokenizer in one call."""
    pieces = [_SPECIAL.split(text) for text in texts]
    plain = [part for parts in pieces for part in parts if part and part not in (BOS, EOS)]
    encoded = iter(tokenizer(plain, add_special_tokens=False)["input_ids"] if plain else [])
    out = []
    for parts in pieces:
        ids: list[int] = []
        for part in parts:
            if part == BOS:
                if tokenizer.bos_token_id is not None:
                    ids.append(tokenizer.bos_token_id)
            elif part == EOS:
                ids.append(_eos_id(tokenizer))
            elif part:
                ids += next(encoded)
        out.append(ids)
    return out


def _eos_id(tokenizer: Any) -> int:
    if tokenizer.eos_token_id is None:
        raise UserError("the tokenizer has no eos token, so answers cannot be ended; set eos_token in the model's tokenizer_config.json")
    return tokenizer.eos_token_id


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer itself starts sequences with bos (LLaMA does, GPT-2 does not)."""
    if tokenizer.bos_token_id is None:
        return False
    ids = tokenizer.encode("a", add_special_tokens=True)
    return bool(ids) and ids[0] == tokenizer.bos_token_id


def _single_token_id(tokenizer: Any, word: str) -> Optional[int]:
    ids = tokenizer.encode(word, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _check_messages(messages: Messages, last: str) -> None:
    if not messages:
        raise UserError("a conversation needs at least one user message")
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.get("role") != expected:
            raise UserError(f"message {i + 1} has role {message.get('role')!r}, expected '{expected}'; turns alternate user, assistant")
    if messages[-1]["role"] != last:
        raise UserError(f"the conversation must end with a {last} message here")


# ---------------------------------------------------------------------------- auto (chat_template)


def _auto_pairs(tokenizer: Any, messages: Messages, system: Optional[str]) -> list[tuple[list[int], list[int]]]:
    """Cut the chat template's rendering into (prompt, response) pieces by rendering prefixes."""
    head = [{"role": "system", "content": system}] if system else []

    def render(upto: int, generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(head + messages[:upto], tokenize=False, add_generation_prompt=generation_prompt)

    pairs = []
    done = ""  # the system text belongs to the first prompt; some templates cannot render it alone
    for i in range(0, len(messages), 2):
        prompt_text = render(i + 1, True)
        response_ids: list[int] = []
        next_done = prompt_text
        if i + 1 < len(messages):
            next_done = render(i + 2, False)
            response_ids = tokenizer.encode(_after(next_done, prompt_text), add_special_tokens=False)
        pairs.append((tokenizer.encode(_after(prompt_text, done), add_special_tokens=False), response_ids))
        done = next_done
    return pairs


def _after(text: str, prefix: str) -> str:
    if not text.startswith(prefix):
        raise UserError(
            "the tokenizer's chat template renders a conversation differently from its beginning, "
            "so prompt and answer cannot be separated; pass --template default|alpaca|vicuna|llama2|chatml"
        )
    return text[len(prefix):]


# ---------------------------------------------------------------------------- the templates

TEMPLATES: dict[str, Template] = {
    "default": Template(
        name="default",
        format_user="Human: {query}\nAssistant:",
        format_assistant=" {response}{eos}",
        format_system="{system}\n",
        format_separator="\n",
        default_system="A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    ),
    "alpaca": Template(
        name="alpaca",
        format_user="### Instruction:\n{query}\n\n### Response:\n",
        format_assistant="{response}{eos}",
        format_system="{system}\n\n",
        format_separator="\n\n",
        default_system="Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.",
    ),
    "vicuna": Template(
        name="vicuna",
        format_user="USER: {query} ASSISTANT:",
        format_assistant=" {response}{eos}",
        format_system="{system} ",
        default_system="A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    ),
    "llama2": Template(
        name="llama2",
        # Every turn opens with <s>, as Meta's reference encodes each exchange with bos and eos.
        format_user="{bos}[INST] {query} [/INST]",
        format_assistant=" {response} {eos}",
        format_system="<<SYS>>\n{system}\n<</SYS>>\n\n",
        system_in_first_user=True,
        bos_at_start=False,
    ),
    "chatml": Template(
        name="chatml",
        format_user="<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n",
        # <|im_end|> closes the turn for chatml models; eos after it ends the answer for any vocabulary.
        format_assistant="{response}<|im_end|>{eos}",
        format_system="<|im_start|>system\n{system}<|im_end|>\n",
        format_separator="\n",
        stop_words=("<|im_end|>",),
    ),
    "auto": Template(name="auto", use_chat_template=True),
}


def get_template(name: Optional[str], tokenizer: Any) -> Template:
    """The named template; None means 'auto' when the tokenizer has a chat template, else 'default'."""
    from core.args import TEMPLATE_NAMES

    if name is None:
        name = "auto" if getattr(tokenizer, "chat_template", None) else "default"
    if name not in TEMPLATE_NAMES:
        raise UserError(f"unknown template '{name}'; choose one of {', '.join(TEMPLATE_NAMES)}")
    template = TEMPLATES[name]
    if template.name == "chatml" and _single_token_id(tokenizer, "<|im_end|>") == tokenizer.eos_token_id:
        # The tokenizer's eos IS <|im_end|> (Qwen-style): write it once, not twice.
        template = dataclasses.replace(template, format_assistant="{response}{eos}")
    if template.use_chat_template and not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"template 'auto' needs a tokenizer with a chat template and {getattr(tokenizer, 'name_or_path', 'this one') or 'this one'} "
            "has none; pass --template default|alpaca|vicuna|llama2|chatml"
        )
    return template


def propose_template(model_dir: str | Path) -> str:
    """The template to preselect for a model folder, from its tokenizer files only (no imports)."""
    text = _chat_template_text(Path(model_dir))
    if not text:
        return "default"
    if "[INST]" in text:
        return "llama2"
    if "<|im_start|>" in text:
        return "chatml"
    return "auto"


def _chat_template_text(model_dir: Path) -> str:
    parts = []
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        parts.append(jinja.read_text(encoding="utf-8", errors="replace"))
    for name in ("tokenizer_config.json", "chat_template.json"):
        path = model_dir / name
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text(encoding="utf-8", errors="replace")).get("chat_template")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):  # named templates: [{"name": "default", "template": "..."}]
            parts += [t.get("template", "") for t in value if isinstance(t, dict)]
    return "\n".join(p for p in parts if p)
