"""Chat templates: how a conversation becomes token ids, for training and for chat alike.

A template is a handful of format strings. `{bos}` and `{eos}` in them stand for the tokenizer's
bos/eos ids (added as ids, never encoded as text), so "<s>"/"</s>" mean the real special tokens
whatever the vocabulary. Every piece is encoded with `add_special_tokens=False` on its own, and
`encode_prompt` reuses the exact pieces `encode_multiturn` trains on, so a chat prompt is
token-for-token the prefix the model saw in training.

`auto` renders with the tokenizer's own chat template (transformers' apply_chat_template) and
cuts prompt and response apart by rendering successive prefixes of the conversation.

The family templates (llama3, qwen, qwen3, mistral, gemma, phi, phi4) render a plain system + user/
assistant conversation byte for byte as that family's official Jinja chat template does
(tests/test_templates_families.py renders both). Where the official template cannot be followed,
the choice is ours and written down at the template: gemma folds the system into the first user
turn (as gemma-3's template does; gemma-2's refuses a system), mistral puts it before the last
instruction (as v0.3's does for a prompt; for a finished conversation v0.3 drops it, we keep it
there), qwen3 renders the non-thinking mode, and llama3 is the Llama 3 turn format without the
dated system preamble the 3.1+ templates add. An answer piece is the answer plus the family's
end-of-turn token, so the loss covers what the model must write and where it must stop.

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
    # Where the rendered system goes: "start" (before the first turn), "first_user" (folded into the
    # first user text: llama2, gemma) or "last_user" (before the last instruction: mistral v0.3).
    system_position: str = "start"
    format_separator: str = ""  # goes before every user turn but the first
    format_prefix: str = ""  # opens every conversation: "{bos}" where the official template writes bos_token
    last_answer_prefix: str = ""  # ends the last prompt only (qwen3's empty think block; past turns lack it)
    format_suffix: str = ""  # closes a conversation that ends with an answer (the official text after the last turn)
    default_system: str = ""
    system_always: bool = False  # "" means the default too: qwen2.5's template writes its system whenever none is given
    trim: tuple[str, ...] = ()  # roles whose text the official template trims (Jinja's `| trim`)
    end_of_turn: str = ""  # the token that closes an answer; a stop word
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

    def render_text(
        self, messages: Messages, system: Optional[str] = None, bos_token: str = "", eos_token: str = "", add_bos: bool = False
    ) -> str:
        """The conversation as text, exactly what the ids encode: bos/eos become the given token
        strings. A conversation ending with a user turn ends with the prompt for the answer.

        add_bos: the tokenizer starts sequences with bos itself (see adds_bos), for the templates
        that then add one (bos_at_start).
        """
        _check_messages(messages, last=None)
        if self.use_chat_template:
            raise UserError("template 'auto' renders with the tokenizer's chat template; use tokenizer.apply_chat_template")
        pairs = self._render(messages, system, BOS if add_bos and self.bos_at_start else "")
        text = "".join(prompt + response for prompt, response in pairs)
        return text.replace(BOS, bos_token).replace(EOS, eos_token)

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
        """(prompt, response) texts of each turn, with BOS/EOS markers where the special ids go.

        The id path (_pairs) and the text path (render_text) both come through here.
        """
        rendered_system = self._rendered_system(system)
        last = (len(messages) - 1) // 2 * 2  # index of the last user message
        system_at = {"first_user": 0, "last_user": last}.get(self.system_position)
        pairs = []
        for i in range(0, len(messages), 2):
            query = self._content(messages[i]["content"], "user")
            if i == system_at:
                query = rendered_system + query
            if i == 0:
                prefix = bos + self.format_prefix.format(bos=BOS, eos=EOS)
                prefix += rendered_system if system_at is None else ""
            else:
                prefix = self.format_separator
            prompt = prefix + self.format_user.format(query=query, bos=BOS, eos=EOS)
            if i == last:
                prompt += self.last_answer_prefix
            response = ""
            if i + 1 < len(messages):
                response = self.format_assistant.format(response=self._content(messages[i + 1]["content"], "assistant"), bos=BOS, eos=EOS)
                if i == last:
                    response += self.format_suffix.format(bos=BOS, eos=EOS)
            pairs.append((prompt, response))
        return pairs

    def _rendered_system(self, system: Optional[str]) -> str:
        """The system as the template writes it; None takes the default, "" means none (but see system_always)."""
        text = self.default_system if system is None or (self.system_always and not system) else system
        text = self._content(text, "system")
        return self.format_system.format(system=text) if text else ""

    def _content(self, text: str, role: str) -> str:
        return text.strip() if role in self.trim else text


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


def _check_messages(messages: Messages, last: Optional[str]) -> None:
    """Turns alternate user, assistant; `last` is the role the conversation must end with (None: either)."""
    if not messages:
        raise UserError("a conversation needs at least one user message")
    for i, message in enumerate(messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.get("role") != expected:
            raise UserError(f"message {i + 1} has role {message.get('role')!r}, expected '{expected}'; turns alternate user, assistant")
    if last is not None and messages[-1]["role"] != last:
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
            f"so prompt and answer cannot be separated; pass --template {_string_template_names()}"
        )
    return text[len(prefix):]


def _string_template_names() -> str:
    """The templates that need no chat template of the tokenizer, for messages: "default|alpaca|..."."""
    from core.args import TEMPLATE_NAMES

    return "|".join(name for name in TEMPLATE_NAMES if name != "auto")


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
        system_position="first_user",
        bos_at_start=False,
    ),
    "chatml": Template(
        name="chatml",
        format_user="<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n",
        # <|im_end|> closes the turn for chatml models; eos after it ends the answer for any vocabulary.
        format_assistant="{response}<|im_end|>{eos}",
        format_system="<|im_start|>system\n{system}<|im_end|>\n",
        format_separator="\n",
        end_of_turn="<|im_end|>",
        stop_words=("<|im_end|>",),
    ),
    # ------------------------------------------------------------------ model families
    # Each renders like the family's official chat template (fixtures in tests/fixtures/chat_templates).
    # An answer piece is the answer and the family's end-of-turn token (mistral's is eos itself), so
    # the loss covers what the model writes up to where it must stop; the newline the official
    # template writes after the token opens the next prompt. Only after the last answer does the
    # official closing text (format_suffix: that newline, phi's eos) join the answer piece, as there
    # is no next prompt. No eos follows the end-of-turn token: the official templates write none,
    # and the token is a stop word.
    "llama3": Template(
        # Meta-Llama-3-8B-Instruct. The 3.1+ templates also write a system turn that starts with
        # "Cutting Knowledge Date: December 2023\nToday Date: <date>\n\n" (3.2: the day of rendering);
        # give that text in front of the system prompt to reproduce them.
        name="llama3",
        format_prefix="{bos}",
        format_system="<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>",
        format_user="<|start_header_id|>user<|end_header_id|>\n\n{query}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        format_assistant="{response}<|eot_id|>",
        trim=("system", "user", "assistant"),
        end_of_turn="<|eot_id|>",
        bos_at_start=False,
        stop_words=("<|eot_id|>",),
    ),
    "qwen": Template(
        # Qwen2.5 Instruct: its default system is written whenever none is given.
        name="qwen",
        format_system="<|im_start|>system\n{system}<|im_end|>\n",
        format_user="<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n",
        format_assistant="{response}<|im_end|>",
        format_separator="\n",
        format_suffix="\n",
        default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        system_always=True,
        end_of_turn="<|im_end|>",
        bos_at_start=False,
        stop_words=("<|im_end|>",),
    ),
    "qwen3": Template(
        # Qwen3 in non-thinking mode (enable_thinking=False). The official template opens only the
        # answer being written with an empty think block and renders the answers before the last
        # user turn without one, so the empty block goes into the last prompt only. Answers are
        # written as given: the official template would also move a <think>...</think> inside an
        # answer, which a non-thinking dataset does not have.
        name="qwen3",
        format_system="<|im_start|>system\n{system}<|im_end|>\n",
        format_user="<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n",
        format_assistant="{response}<|im_end|>",
        format_separator="\n",
        last_answer_prefix="<think>\n\n</think>\n\n",
        format_suffix="\n",
        end_of_turn="<|im_end|>",
        bos_at_start=False,
        stop_words=("<|im_end|>",),
    ),
    "mistral": Template(
        # Mistral-7B-Instruct-v0.3. Its template puts the system before the last instruction, and
        # only when the conversation ends with that instruction; we put it there for a finished
        # conversation too, so training sees the system where chat will have it.
        name="mistral",
        format_prefix="{bos}",
        format_system="{system}\n\n",
        system_position="last_user",
        format_user="[INST] {query}[/INST]",
        format_assistant=" {response}{eos}",
        trim=("assistant",),
        end_of_turn="</s>",
        bos_at_start=False,
        stop_words=("</s>",),
    ),
    "gemma": Template(
        # Gemma 2 and 3 instruction-tuned. Gemma 2's template refuses a system message; gemma 3's
        # folds it into the first user turn, and so do we for both.
        name="gemma",
        format_prefix="{bos}",
        format_system="{system}\n\n",
        system_position="first_user",
        format_user="<start_of_turn>user\n{query}<end_of_turn>\n<start_of_turn>model\n",
        format_assistant="{response}<end_of_turn>",
        format_separator="\n",
        format_suffix="\n",
        trim=("user", "assistant"),
        end_of_turn="<end_of_turn>",
        bos_at_start=False,
        stop_words=("<end_of_turn>",),
    ),
    "phi": Template(
        # Phi-3 and Phi-3.5 mini instruct: eos follows the last turn of a finished conversation.
        name="phi",
        format_system="<|system|>\n{system}<|end|>\n",
        format_user="<|user|>\n{query}<|end|>\n<|assistant|>\n",
        format_assistant="{response}<|end|>",
        format_separator="\n",
        format_suffix="\n{eos}",
        end_of_turn="<|end|>",
        bos_at_start=False,
        stop_words=("<|end|>",),
    ),
    "phi4": Template(
        # Phi-4 (14B): chatml turns with <|im_sep|> and no newlines.
        name="phi4",
        format_system="<|im_start|>system<|im_sep|>{system}<|im_end|>",
        format_user="<|im_start|>user<|im_sep|>{query}<|im_end|><|im_start|>assistant<|im_sep|>",
        format_assistant="{response}<|im_end|>",
        end_of_turn="<|im_end|>",
        bos_at_start=False,
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
    template = _end_of_turn_once(TEMPLATES[name], tokenizer)
    if template.use_chat_template and not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"template 'auto' needs a tokenizer with a chat template and {getattr(tokenizer, 'name_or_path', 'this one') or 'this one'} "
            f"has none; pass --template {_string_template_names()}"
        )
    return template


def _end_of_turn_once(template: Template, tokenizer: Any) -> Template:
    """A template that writes its end-of-turn token and then eos writes it once when the tokenizer's
    eos IS that token (chatml on Qwen-style vocabularies, where eos is <|im_end|>)."""
    if not template.end_of_turn or tokenizer.eos_token_id is None:
        return template
    if _single_token_id(tokenizer, template.end_of_turn) != tokenizer.eos_token_id:
        return template
    twice = template.end_of_turn + "{eos}"
    return dataclasses.replace(
        template,
        format_assistant=template.format_assistant.replace(twice, "{eos}"),
        format_suffix=template.format_suffix.replace(twice, "{eos}"),
    )


def propose_template(model_dir: str | Path) -> str:
    """The template to preselect for a model folder, from its tokenizer files only (no imports)."""
    return _template_for_chat_template(_chat_template_text(Path(model_dir)))


def _template_for_chat_template(text: str) -> str:
    """The named template whose format a chat template's text shows, by the family's markers."""
    if not text:
        return "default"
    if "<|start_header_id|>" in text:
        return "llama3"
    if "<start_of_turn>" in text:
        return "gemma"
    if "<|im_start|>" in text:
        if "<|im_sep|>" in text:
            return "phi4"
        if "<think>" in text:
            return "qwen3"
        if "You are Qwen" in text:
            return "qwen"
        return "chatml"
    if "<|user|>" in text and "<|end|>" in text:
        return "phi"
    if "[INST]" in text:
        if "<<SYS>>" in text:
            return "llama2"
        # Our mistral is v0.3's "[INST] q[/INST]"; v0.1/v0.2 write " [/INST]" and keep their own template.
        return "auto" if " [/INST]" in text else "mistral"
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
