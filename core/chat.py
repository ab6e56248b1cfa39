"""Chat with a base model and its LoRA adapter: load once, stream answers built with the training template.

`load_chat_model` loads the base model (quantized if asked) and the adapter through core.model,
so chat, export and training share one copy of the loading logic. `stream_reply` builds the
prompt with the same `Template.encode_prompt` the training data was encoded with, then runs
`model.generate` in a thread feeding a TextIteratorStreamer; it stops on the template's stop ids,
on `max_new_tokens`, or as soon as `stop_event` is set. With `use_adapter=False` the answer comes
from the base model with the adapter switched off (`model.disable_adapter()`), from the same
weights in memory: side by side costs no second copy.

`python launch.py chat ...` is the terminal version (`main`). torch/transformers/peft are imported
inside the functions only.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from core.args import TEMPLATE_NAMES, AdapterTemplateArguments, GeneratingArguments, ModelArguments
from core.data.templates import Template
from core.errors import UserError
from core.progress import part_of

Messages = list[dict[str, str]]

GENERATION_FIELDS = tuple(f.name for f in dataclasses.fields(GeneratingArguments))
# Seconds the consumer waits for the next token before deciding generation is stuck.
TOKEN_TIMEOUT_S = 300.0
# Seconds a new answer waits for the one still running on the same model (it was told to stop).
LOCK_WAIT_S = 60.0


@dataclass
class ChatSession:
    """A loaded model ready to chat: one copy of the weights, adapter on or off per answer."""

    model: Any
    tokenizer: Any
    template: Template
    model_path: str
    adapter_path: Optional[str] = None
    quantization_bit: Optional[int] = None
    system: Optional[str] = None  # the system prompt the run trained with (run.yaml), if any
    notes: list[str] = field(default_factory=list)  # one-line remarks made while loading
    # One generation at a time: switching the adapter off changes the shared modules.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def has_adapter(self) -> bool:
        return self.adapter_path is not None

    def describe(self) -> str:
        parts = [f"model {self.model_path}"]
        if self.adapter_path:
            parts.append(f"adapter {self.adapter_path}")
        parts.append(f"template {self.template.name}")
        if self.quantization_bit:
            parts.append(f"{self.quantization_bit}-bit")
        return ", ".join(parts)

    def close(self) -> None:
        """Drop the weights and give their memory back (a second Load must not hold two models)."""
        self.model = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


# ---------------------------------------------------------------------------- loading


def run_config(adapter_path: Optional[str]) -> dict[str, Any]:
    """run.yaml of the run an adapter comes from (the run folder or one of its checkpoint-N)."""
    if not adapter_path:
        return {}
    from core.rundir import RUN_YAML, _read_yaml

    folder = Path(adapter_path)
    for candidate in (folder, folder.parent):
        if (candidate / RUN_YAML).is_file():
            config = _read_yaml(candidate / RUN_YAML)
            return {} if "_error" in config else config
    return {}


def check_adapter_dir(adapter_path: str) -> Path:
    """A LoRA adapter folder, checked before the (slow) base model is loaded."""
    folder = Path(adapter_path).expanduser()
    if not folder.is_dir():
        raise UserError(f"adapter folder '{adapter_path}' does not exist; pass a finished LoRA run folder (e.g. saves/NAME) or one of its checkpoint-N folders")
    if not (folder / "adapter_config.json").is_file():
        hint = " (it holds a whole model: pass it as --model_name_or_path instead)" if (folder / "config.json").is_file() else ""
        raise UserError(f"'{adapter_path}' is not a LoRA adapter (no adapter_config.json){hint}; pass a LoRA run folder or one of its checkpoint-N folders")
    return folder


def _memory_error(err: BaseException) -> bool:
    import torch

    return isinstance(err, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(err).lower()


def load_chat_model(
    model_name_or_path: str,
    adapter_name_or_path: Optional[str] = None,
    template: Optional[str] = None,
    quantization_bit: Optional[int] = None,
    trust_remote_code: bool = False,
    progress: Optional[Callable[[float, str], None]] = None,
) -> ChatSession:
    """Load the base model (+ adapter) for chat; any problem is one UserError line.

    The template defaults to the one the adapter's run trained with (its run.yaml), else the
    tokenizer's own (as training does when --template is empty).
    """
    from core.data.templates import get_template
    from core.model import load_adapter, load_base_model, load_tokenizer, resolve_source
    from core.model_source import check_model_source

    if quantization_bit not in (None, 4, 8):
        raise UserError(f"quantization_bit must be 4, 8 or empty, got {quantization_bit}")
    check_model_source(model_name_or_path)  # refuse a bad name before anything is loaded
    if adapter_name_or_path:
        check_adapter_dir(adapter_name_or_path)
    if template is not None and template not in TEMPLATE_NAMES:
        raise UserError(f"unknown template '{template}'; choose one of {', '.join(TEMPLATE_NAMES)}")
    if quantization_bit is not None:
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError(f"quantization_bit {quantization_bit} needs the bitsandbytes package: pip install bitsandbytes")
    report = progress or (lambda fraction, message: None)
    config = run_config(adapter_name_or_path)
    notes = []
    template = template or config.get("template")
    model_args = ModelArguments(
        model_name_or_path=model_name_or_path,
        quantization_bit=quantization_bit,
        trust_remote_code=trust_remote_code,
    )
    # A hub id downloads first: the first half of the bar is the download's.
    resolve_source(model_name_or_path, progress=part_of(report, 0.0, 0.5))
    report(0.50, "loading the tokenizer")
    tokenizer = load_tokenizer(model_args)
    chat_template = get_template(template, tokenizer)
    trained_base = config.get("model_name_or_path")
    if trained_base and _same_folder(trained_base, model_name_or_path) is False:
        notes.append(f"the adapter was trained on {trained_base}, not {model_name_or_path}")
    model = None
    try:
        bits = f" in {quantization_bit} bits" if quantization_bit else ""
        report(0.60, f"loading the model weights{bits}")
        model = load_base_model(model_args)
        if adapter_name_or_path:
            report(0.90, "loading the adapter")
            model = load_adapter(model, adapter_name_or_path, is_trainable=False)
        model.eval()
        report(1.0, "ready")
    except Exception as err:
        model = None
        gc.collect()
        if _memory_error(err):
            raise UserError(f"out of memory while loading {model_name_or_path}; unload the current model, try quantization_bit 4 or a smaller model") from None
        raise
    return ChatSession(
        model=model, tokenizer=tokenizer, template=chat_template, model_path=model_name_or_path,
        adapter_path=adapter_name_or_path or None, quantization_bit=quantization_bit,
        system=config.get("system"), notes=notes,
    )


def _same_folder(a: str, b: str) -> Optional[bool]:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if not (pa.is_dir() and pb.is_dir()):
        return None  # a hub id or a folder of another machine: cannot tell
    return pa.resolve() == pb.resolve()


# ---------------------------------------------------------------------------- generation


def generation_settings(**generation: Any) -> dict[str, Any]:
    """GeneratingArguments defaults overridden by the given values (+ `seed`), checked."""
    unknown = set(generation) - set(GENERATION_FIELDS) - {"seed"}
    if unknown:
        raise TypeError(f"unknown generation settings: {', '.join(sorted(unknown))}")
    defaults = dataclasses.asdict(GeneratingArguments())
    settings = {**defaults, **{k: v for k, v in generation.items() if v is not None and k != "seed"}}
    if settings["max_new_tokens"] < 1:
        raise UserError(f"max_new_tokens must be at least 1, got {settings['max_new_tokens']}")
    if settings["do_sample"]:
        if settings["temperature"] <= 0:
            raise UserError(f"temperature must be greater than 0 when sampling, got {settings['temperature']} (turn sampling off for greedy answers)")
        if not 0 < settings["top_p"] <= 1:
            raise UserError(f"top_p must be in (0, 1], got {settings['top_p']}")
    else:  # greedy: sampling knobs would only produce warnings
        for name in ("temperature", "top_p", "top_k"):
            settings.pop(name)
    if settings["repetition_penalty"] <= 0:
        raise UserError(f"repetition_penalty must be greater than 0, got {settings['repetition_penalty']}")
    settings["seed"] = generation.get("seed")
    return settings


def build_prompt(session: ChatSession, messages: Messages, system: Optional[str] = None) -> list[int]:
    """The prompt ids: the training template's encoding of the conversation so far."""
    return session.template.encode_prompt(session.tokenizer, messages, session.system if system is None else system)


def _fit_context(session: ChatSession, messages: Messages, system: Optional[str], max_new_tokens: int) -> list[int]:
    """Prompt ids that leave room for the answer, dropping the oldest exchanges if needed."""
    limit = getattr(session.model.config, "max_position_embeddings", None) or 10**9
    messages = list(messages)
    while True:
        ids = build_prompt(session, messages, system)
        if len(ids) + max_new_tokens <= limit or len(messages) <= 1:
            break
        messages = messages[2:]
    if len(ids) + max_new_tokens > limit:
        raise UserError(f"the message is {len(ids)} tokens and the model reads at most {limit}; shorten it or lower max_new_tokens")
    return ids


def stream_reply(
    session: ChatSession,
    messages: Messages,
    system: Optional[str] = None,
    use_adapter: bool = True,
    stop_event: Optional[threading.Event] = None,
    **generation: Any,
) -> Iterator[str]:
    """Yield the answer so far, token by token, until a stop id, max_new_tokens or stop_event.

    Closing the iterator early (a new message, a cancelled request) stops the generation too.
    """
    settings = generation_settings(**generation)
    seed = settings.pop("seed")
    stop_event = stop_event or threading.Event()
    with _model_turn(session):
        ids = _fit_context(session, messages, system, settings["max_new_tokens"])
        yield from _stream(session, ids, use_adapter, stop_event, seed, settings)


@contextmanager
def _model_turn(session: ChatSession) -> Iterator[None]:
    """One answer at a time on a session's model (switching the adapter off changes shared
    modules); refuses when another answer holds it too long or the model was unloaded meanwhile."""
    if not session.lock.acquire(timeout=LOCK_WAIT_S):
        raise UserError("another answer is still being generated on this model; press Stop or wait for it")
    try:
        if session.model is None:  # unloaded (or replaced) while this answer waited for its turn
            raise UserError("no model is loaded; load one first")
        yield
    finally:
        session.lock.release()


def _stream(session: ChatSession, ids: list[int], use_adapter: bool, stop_event: threading.Event,
            seed: Optional[int], settings: dict[str, Any]) -> Iterator[str]:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer, set_seed

    abandoned = threading.Event()  # the consumer stopped listening

    class StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = stop_event.is_set() or abandoned.is_set()
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    model, tokenizer = session.model, session.tokenizer
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, timeout=TOKEN_TIMEOUT_S, skip_special_tokens=True)
    device = next(model.parameters()).device
    inputs = torch.tensor([ids], dtype=torch.long, device=device)
    kwargs = dict(
        input_ids=inputs, attention_mask=torch.ones_like(inputs), streamer=streamer,
        eos_token_id=session.template.stop_token_ids(tokenizer), pad_token_id=tokenizer.pad_token_id,
        stopping_criteria=StoppingCriteriaList([StopOnEvent()]), **settings,
    )
    switch_off = hasattr(model, "disable_adapter") and not use_adapter
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.inference_mode(), (model.disable_adapter() if switch_off else nullcontext()):
                if seed is not None:
                    set_seed(int(seed))
                model.generate(**kwargs)
        except BaseException as err:  # handed to the consumer below, which re-raises it
            failure.append(err)
            streamer.end()

    thread = threading.Thread(target=work, name="chat-generate", daemon=True)
    thread.start()
    text = ""
    try:
        for piece in streamer:
            if piece:
                text += piece
                yield text
    finally:
        # A consumer that stopped listening (new message, closed page) ends the generation.
        abandoned.set()
        thread.join()
    if failure:
        err = failure[0]
        if _memory_error(err):
            raise UserError("out of memory while generating; lower max_new_tokens, Clear the history or load the model in 4 bits") from None
        raise err


def stream_side_by_side(
    session: ChatSession,
    messages: Messages,
    system: Optional[str] = None,
    stop_event: Optional[threading.Event] = None,
    **generation: Any,
) -> Iterator[tuple[str, str]]:
    """Yield (base answer so far, adapter answer so far): both grow together, one token each in turn.

    One copy of the weights holds both models, and switching the adapter off changes the shared
    modules, so two generate() calls cannot run at once. Instead one loop decodes both answers
    with a KV cache each, switching the adapter off around the base model's step only. Token by
    token rather than in short chunks: a chunk of k tokens would make one column wait for the
    other's k, and re-entering generate() per chunk would re-read the prompt each time.
    Greedy answers are token for token those of stream_reply.
    """
    settings = generation_settings(**generation)
    seed = settings.pop("seed")
    stop_event = stop_event or threading.Event()
    with _model_turn(session):
        if not hasattr(session.model, "disable_adapter"):
            raise UserError("side by side needs an adapter; load one")
        ids = _fit_context(session, messages, system, settings["max_new_tokens"])
        yield from _interleave(session, ids, stop_event, seed, settings)


def _next_token(logits: Any, seen: list[int], settings: dict[str, Any]) -> int:
    """The next token from the last position's logits, as generate() picks it with these settings
    (repetition penalty over prompt and answer, then temperature, top-k, top-p)."""
    import torch

    logits = logits.float().clone()
    penalty = settings.get("repetition_penalty", 1.0)
    if penalty != 1.0 and seen:
        idx = torch.tensor(sorted(set(seen)), device=logits.device)
        values = logits[idx]
        logits[idx] = torch.where(values < 0, values * penalty, values / penalty)
    if not settings.get("do_sample"):
        return int(logits.argmax())
    logits = logits / settings["temperature"]
    top_k = int(settings.get("top_k") or 0)
    if 0 < top_k < logits.numel():
        logits[logits < torch.topk(logits, top_k).values[-1]] = float("-inf")
    top_p = settings.get("top_p", 1.0)
    if top_p < 1.0:
        ordered, order = logits.sort(descending=True)
        probs = ordered.softmax(-1)
        ordered[(probs.cumsum(-1) - probs) > top_p] = float("-inf")  # keeps the first token always
        logits = torch.full_like(logits, float("-inf")).scatter(0, order, ordered)
    return int(torch.multinomial(logits.softmax(-1), 1))


def _interleave(session: ChatSession, ids: list[int], stop_event: threading.Event, seed: Optional[int],
                settings: dict[str, Any]) -> Iterator[tuple[str, str]]:
    import torch

    model, tokenizer = session.model, session.tokenizer
    stops = set(session.template.stop_token_ids(tokenizer))
    device = next(model.parameters()).device
    if seed is not None:
        torch.manual_seed(int(seed))
    # Per side: every id so far (for the repetition penalty), the answer's ids, the ids to feed next, its cache.
    sides = {use: {"seen": list(ids), "answer": [], "feed": list(ids), "cache": None, "done": False}
             for use in (False, True)}
    texts = ["", ""]
    with torch.inference_mode():
        for _ in range(settings["max_new_tokens"]):
            if stop_event.is_set() or all(side["done"] for side in sides.values()):
                break
            for n, use_adapter in enumerate((False, True)):
                side = sides[use_adapter]
                if side["done"]:
                    continue
                with nullcontext() if use_adapter else model.disable_adapter():
                    out = model(input_ids=torch.tensor([side["feed"]], device=device),
                                past_key_values=side["cache"], use_cache=True)
                side["cache"] = out.past_key_values
                token = _next_token(out.logits[0, -1], side["seen"], settings)
                if token in stops:
                    side["done"] = True
                    continue
                side["seen"].append(token)
                side["answer"].append(token)
                side["feed"] = [token]
                texts[n] = tokenizer.decode(side["answer"], skip_special_tokens=True)
            yield texts[0], texts[1]


def generate_text(session: ChatSession, messages: Messages, system: Optional[str] = None, use_adapter: bool = True, **generation: Any) -> str:
    """The whole answer at once (e.g. `do_sample=False, max_new_tokens=48` for a greedy check)."""
    text = ""
    for text in stream_reply(session, messages, system=system, use_adapter=use_adapter, **generation):
        pass
    return text


# ---------------------------------------------------------------------------- terminal chat


@dataclass
class ChatArguments:
    """The terminal chat's own option (the others are the training run's dataclasses)."""

    seed: Optional[int] = field(default=None, metadata={"help": "Random seed for sampling (same seed, same answer)."})


CHAT_DESCRIPTION = ("Chat in the terminal with a base model and a LoRA adapter; an empty --template is the one the "
                    "adapter's run used. Type `clear` to start a new conversation, `exit` to quit.")


def parse_chat_args(argv: list[str]) -> tuple[ModelArguments, AdapterTemplateArguments, GeneratingArguments, ChatArguments]:
    from core.args import parse_cli

    return parse_cli(argv, (ModelArguments, AdapterTemplateArguments, GeneratingArguments, ChatArguments),
                     prog="launch.py chat", description=CHAT_DESCRIPTION)


def main(argv: list[str]) -> int:
    try:
        model_args, template_args, generating_args, chat_args = parse_chat_args(argv)
        if not model_args.model_name_or_path:
            raise UserError("--model_name_or_path is required: the folder of the base model (e.g. data/models/demo)")
        adapter = model_args.adapter_name_or_path
        print(f"Loading {model_args.model_name_or_path}" + (f" with adapter {adapter}" if adapter else "") + " ...",
              file=sys.stderr, flush=True)
        session = load_chat_model(model_args.model_name_or_path, adapter, template_args.template,
                                  model_args.quantization_bit, model_args.trust_remote_code)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in session.notes:
        print(f"note: {note}", file=sys.stderr)
    generation = dataclasses.asdict(generating_args)
    print(f"Ready ({session.describe()}). Type `clear` to start over, `exit` to quit.", flush=True)
    messages: Messages = []
    while True:
        try:
            query = input("\nUser: ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        command = query.strip().lower()
        if command == "exit":
            return 0
        if command == "clear":
            messages = []
            print("History cleared.", flush=True)
            continue
        if not query.strip():
            continue
        messages.append({"role": "user", "content": query})
        print("Assistant: ", end="", flush=True)
        stop = threading.Event()
        answer = ""
        try:
            for answer_so_far in stream_reply(session, messages, system=template_args.system, stop_event=stop,
                                              seed=chat_args.seed, **generation):
                print(answer_so_far[len(answer):], end="", flush=True)
                answer = answer_so_far
        except KeyboardInterrupt:  # Ctrl-C stops this answer, not the chat
            stop.set()
            print(" [stopped]", end="")
        except UserError as err:
            print()
            print(f"error: {err}", file=sys.stderr)
            messages.pop()
            continue
        print(flush=True)
        messages.append({"role": "assistant", "content": answer})
