"""Where a model comes from: a local folder, a `.gguf` file, or a hub id `ORG/NAME`.

`check_model_source` is light and offline (the web UI calls it while the user types); it says in
one line what is wrong with the value. `resolve_model` also downloads a hub id into the standard
Hugging Face cache through huggingface_hub, which honours HF_TOKEN, HF_ENDPOINT and
HF_HUB_OFFLINE on its own, so nothing here sets or overrides them.

No torch, transformers or huggingface_hub import at module level: the web UI imports this at start.
"""

from __future__ import annotations

import json
import mmap
import re
import struct
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

from core.errors import UserError

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ModelSource:
    name: str  # as the user gave it
    kind: str  # "folder" | "gguf" | "hub"
    folder: Optional[Path]  # config.json + weights (folder, or hub snapshot once cached); the gguf file's folder
    gguf_file: Optional[str]  # the .gguf file name inside `folder` (gguf kind only)


def describe(source: ModelSource) -> str:
    """One phrase for log lines."""
    if source.kind == "gguf":
        return f"GGUF file {source.gguf_file} in {source.folder}"
    if source.kind == "hub":
        where = f"cached at {source.folder}" if source.folder else "not downloaded yet"
        return f"hub model {source.name} ({where})"
    return f"model folder {source.folder}"


# ----------------------------------------------------------------------------- names

# The hub's own rule (huggingface_hub.utils.validate_repo_id): word characters, '-', '_' and '.',
# starting and ending with a word character, at most 96 each, no '--' or '..', no '.git' ending.
# The namespace is required here: a bare 'gpt2' is far more likely a mistyped folder.
_PART = r"\w(?:[\w.-]{0,94}\w)?"
_HUB_ID = re.compile(rf"{_PART}/{_PART}")

# What from_pretrained(folder) loads as weights. A .gguf file beside config.json is not one of
# them: transformers reads GGUF only when the file is named (gguf_file=), so it is refused below.
_WEIGHT_GLOBS = ("*.safetensors", "*.bin")
_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")

GET_MODEL_HINT = "build the demo with `python launch.py demo-model`, or get a small real one with `python launch.py get-model smollm2-135m-instruct`"


def is_hub_id(text: str) -> bool:
    """'ORG/NAME' by the hub's naming rules, and not something that exists on disk."""
    text = (text or "").strip()
    if not _HUB_ID.fullmatch(text) or "--" in text or ".." in text:
        return False
    if text.lower().endswith((".git", ".gguf")):
        return False
    return not Path(text).expanduser().exists()


def _looks_like_path(text: str) -> bool:
    return (text.startswith(("/", "./", "../", "~", ".\\")) or text.lower().endswith(".gguf")
            or text.count("/") > 1 or "\\" in text)


# ----------------------------------------------------------------------------- check (offline)

def check_model_source(name: Optional[str]) -> ModelSource:
    """What `name` is, or one UserError line saying what is wrong and how to fix it. No download."""
    text = (name or "").strip()
    if not text:
        raise UserError(f"--model_name_or_path is required: a model folder, a .gguf file or a hub id ORG/NAME; {GET_MODEL_HINT}")
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelSource(text, "folder", _check_folder(text, path), None)
    if path.is_file():
        return _check_gguf(text, path)
    if path.exists():
        raise UserError(f"model path '{text}' is neither a folder nor a file; pass a model folder, a .gguf file or a hub id ORG/NAME")
    if is_hub_id(text):
        return ModelSource(text, "hub", _cached_snapshot(text), None)
    if _looks_like_path(text):
        raise UserError(f"model path '{text}' does not exist; check the path, or pass a hub id ORG/NAME; {GET_MODEL_HINT}")
    raise UserError(f"model '{text}' is neither a local folder nor a hub id ORG/NAME (e.g. HuggingFaceTB/SmolLM2-135M-Instruct); "
                    f"check the name; {GET_MODEL_HINT}")


def _check_folder(text: str, folder: Path) -> Path:
    problem = folder_problem(folder)
    if problem:
        raise UserError(f"'{text}' {problem}")
    return folder


def folder_problem(folder: Path) -> Optional[str]:
    """Why `folder` cannot be loaded as a transformers model (a phrase after its name), or None."""
    if not (folder / "config.json").is_file():
        return _no_config_problem(folder)
    index = next((folder / n for n in _INDEX_FILES if (folder / n).is_file()), None)
    if index is not None:
        return _missing_shards_problem(folder, index)
    if not any(any(folder.glob(g)) for g in _WEIGHT_GLOBS):
        ggufs = sorted(p.name for p in folder.glob("*.gguf"))
        if ggufs:
            return f"has no *.safetensors or *.bin weights, only {ggufs[0]}; pass that .gguf file itself as the model"
        return ("has config.json but no weights (no *.safetensors, *.bin or weights index .json); "
                "copy the weight files into it, or download the whole model again (`hf download ORG/NAME --local-dir FOLDER`)")
    return None


def _no_config_problem(folder: Path) -> str:
    # The two usual mix-ups get their own fix: an adapter folder, and a folder of GGUF files.
    if (folder / "adapter_config.json").is_file():
        return ("is a LoRA adapter folder (adapter_config.json), not a base model; pass its base model as "
                "--model_name_or_path and this folder as --adapter_name_or_path")
    ggufs = sorted(p.name for p in folder.glob("*.gguf"))
    if ggufs:
        return f"has no config.json but holds {ggufs[0]}; pass that .gguf file itself as the model"
    return "is not a model folder: it has no config.json; pass the folder that holds config.json and the weights"


def _missing_shards_problem(folder: Path, index: Path) -> Optional[str]:
    # An index without its shards is what an interrupted copy or download leaves behind.
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"has a damaged {index.name} (no weight_map); copy or download the model again"
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        return (f"is missing {len(missing)} of the {len(shards)} weight files listed in {index.name} "
                f"(e.g. {missing[0]}); the copy or download is incomplete: copy or download the model again")
    return None


# ----------------------------------------------------------------------------- gguf

def _check_gguf(text: str, path: Path) -> ModelSource:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        raise UserError(f"cannot read model file '{text}': {err.strerror}; check its permissions") from None
    if magic != b"GGUF":
        raise UserError(f"'{text}' is not a GGUF file (it does not start with the bytes 'GGUF'); pass a .gguf file "
                        "written by llama.cpp, or a model folder with config.json and the weights")
    arch, damage = _read_gguf(path)
    if damage:
        raise UserError(f"GGUF file '{text}' is damaged or truncated ({damage}); download or copy it again")
    supported = gguf_architectures()
    if _transformers_gguf_name(arch) not in supported:
        raise UserError(f"GGUF file '{text}' holds architecture '{arch}', which transformers cannot load from GGUF "
                        f"(it loads {', '.join(sorted(supported))}); use the model's safetensors version (a folder or hub id) instead")
    return ModelSource(text, "gguf", path.resolve().parent, path.name)


def _read_gguf(path: Path) -> tuple[Optional[str], Optional[str]]:
    """(architecture, None), or (None, what is wrong)."""
    try:
        arch, data_end = _gguf_layout(path)
    except ValueError as err:
        return None, str(err)
    except ImportError:
        raise UserError("reading .gguf files needs the gguf package: pip install -r requirements.txt") from None
    size = path.stat().st_size
    if data_end > size:
        return None, f"it has {size:,} bytes but its tensors end at byte {data_end:,}"
    if not arch:
        return None, "its header has no general.architecture"
    return arch, None


# GGUF value types (llama.cpp's gguf.md): fixed-size scalars, a string, an array.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_GGUF_STRING, _GGUF_ARRAY, _GGUF_UINT32 = 8, 9, 4


def _gguf_layout(path: Path) -> tuple[Optional[str], int]:
    """(general.architecture, the byte where the tensor data ends), from the header alone.

    Not gguf.GGUFReader: it turns every vocabulary entry into an object and takes seconds on a
    real model's 150k-token vocabulary; this walks the same header in a fraction of a second.
    ValueError says what is wrong with the file.
    """
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf, "<")
        cur.pos = 4  # after the magic
        version = cur.take("I")
        if version & 0xFFFF == 0:  # written on a big-endian machine
            cur.order, cur.pos = ">", 4
            version = cur.take("I")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version}; transformers reads versions 2 and 3")
        n_tensors, n_kv = cur.count(), cur.count()
        arch, alignment = _gguf_metadata(cur, n_kv)
        data_end = max((offset + nbytes for offset, nbytes in _gguf_tensors(cur, n_tensors)), default=0)
        return arch, -(-cur.pos // alignment) * alignment + data_end


def _gguf_metadata(cur: "_Cursor", n_kv: int) -> tuple[Optional[str], int]:
    arch, alignment = None, 32
    for _ in range(n_kv):
        key, vtype = cur.string(), cur.take("I")
        if key == b"general.architecture" and vtype == _GGUF_STRING:
            arch = cur.string().decode("utf-8", "replace")
        elif key == b"general.alignment" and vtype == _GGUF_UINT32:
            alignment = cur.take("I")
            if alignment == 0 or alignment & (alignment - 1):
                raise ValueError(f"general.alignment {alignment} is not a power of two")
        else:
            cur.skip(vtype)
    return arch, alignment


def _gguf_tensors(cur: "_Cursor", n_tensors: int):
    """(offset, bytes) of each tensor, from the tensor table after the metadata."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    for _ in range(n_tensors):
        cur.string()
        n_dims = cur.take("I")
        if n_dims > 8:  # ggml tensors have at most 4 dimensions
            raise ValueError(f"a tensor with {n_dims:,} dimensions at byte {cur.pos - 4:,}")
        dims = [cur.take("Q") for _ in range(n_dims)]
        raw_type, offset = cur.take("I"), cur.take("Q")
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(raw_type)]
        except (ValueError, KeyError):
            raise ValueError(f"unknown tensor type {raw_type}") from None
        elements = 1
        for d in dims:
            elements *= d
        yield offset, elements * type_size // block


class _Cursor:
    """Reads little (or big) endian values out of a buffer; ValueError when the buffer ends early."""

    def __init__(self, buf, order: str):
        self.buf, self.order, self.pos = buf, order, 0

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"the header is cut off at byte {self.pos:,} of {len(self.buf):,}")

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        self.need(size)
        value = struct.unpack_from(self.order + fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def count(self) -> int:
        """A count of items that take 8 bytes or more each; a larger one is garbage, not a loop of ages."""
        n = self.take("Q")
        if n > (len(self.buf) - self.pos) // 8:
            raise ValueError(f"a count of {n:,} at byte {self.pos - 8:,} is more than the file can hold")
        return n

    def string(self) -> bytes:
        n = self.take("Q")
        self.need(n)
        self.pos += n
        return bytes(self.buf[self.pos - n:self.pos])

    def skip(self, vtype: int) -> None:
        if vtype in _GGUF_SCALARS:
            self.need(struct.calcsize(_GGUF_SCALARS[vtype]))
            self.pos += struct.calcsize(_GGUF_SCALARS[vtype])
        elif vtype == _GGUF_STRING:
            n = self.take("Q")
            self.need(n)
            self.pos += n
        elif vtype == _GGUF_ARRAY:
            self._skip_array()
        else:
            raise ValueError(f"unknown metadata value type {vtype} at byte {self.pos:,}")

    def _skip_array(self) -> None:
        item = self.take("I")
        if item in _GGUF_SCALARS:
            size = self.take("Q") * struct.calcsize(_GGUF_SCALARS[item])
            self.need(size)
            self.pos += size
            return
        for _ in range(self.count()):
            self.skip(item)


def _transformers_gguf_name(arch: str) -> str:
    # transformers renames these llama.cpp names before its own support check
    # (modeling_gguf_pytorch_utils.load_gguf_checkpoint); mirror that so they are not refused.
    renames = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2",
               "t5encoder": "t5"}
    return renames.get(arch, arch)


@lru_cache(maxsize=1)
def gguf_architectures() -> frozenset[str]:
    """The GGUF architectures the installed transformers loads.

    Read from transformers.integrations.ggml itself, so an upgrade widens the list with no edit
    here. That import costs about a second (it loads the transformers package), so it happens only
    when a .gguf file is checked, and once per process.
    """
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return frozenset(GGUF_CONFIG_MAPPING) - {"general", "tokenizer"}


# ----------------------------------------------------------------------------- hub: cache look-up

def _cached_snapshot(repo_id: str) -> Optional[Path]:
    """The cached snapshot of `repo_id` (main) if it is complete enough to load, else None. Offline."""
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(hit, str):  # None, or the "known not to exist" marker
        return None
    folder = Path(hit).parent
    return folder if folder_problem(folder) is None else None


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


# ----------------------------------------------------------------------------- hub: download

# What a transformers model needs: config, tokenizer, generation config, chat template, weights.
_ALLOW = ["*.json", "*.safetensors", "*.model", "*.jinja", "*.txt", "*.tiktoken"]
# Only transformers' own .bin names: accelerate's optimizer.bin or OpenVINO's .bin are not weights.
_ALLOW_BIN = ["pytorch_model*.bin"]
# Other formats and duplicates: original/ (Meta's checkpoints), consolidated.* (Mistral's native
# copy, as large as the model itself), ONNX, OpenVINO, Core ML, TF, Flax, GGUF.
_IGNORE = ["original/*", "onnx/*", "openvino/*", "coreml/*", "consolidated*", "*.gguf", "*.onnx", "*.onnx_data",
           "*.msgpack", "*.h5", "*.tflite", "*.ot", "*.pt", "*.pth", "*.ckpt", "*.mlmodel"]


def resolve_model(name: Optional[str], progress: Optional[Progress] = None) -> ModelSource:
    """check_model_source, then for a hub id the snapshot in the HF cache (downloaded if needed)."""
    source = check_model_source(name)
    if source.kind != "hub":
        return source
    folder = _download(source.name, already=source.folder, progress=progress)
    problem = folder_problem(folder)
    if problem:
        raise UserError(f"hub model '{source.name}' has no transformers model in it ({folder} {problem.split(';')[0]}); "
                        "pick the model's transformers repo (config.json + safetensors), or for a GGUF-only repo "
                        f"download one .gguf file (`hf download {source.name} FILE.gguf`) and pass its path")
    return replace(source, folder=folder)


def _download(repo_id: str, already: Optional[Path], progress: Optional[Progress]) -> Path:
    from huggingface_hub import constants, snapshot_download

    listing = _listing(repo_id)
    allow, ignore = download_patterns([path for path, _ in listing] if listing is not None else None)
    _announce(repo_id, already)
    tqdm_class = None
    if progress is not None:
        tqdm_class = _forwarding_tqdm(repo_id, progress, _bytes_to_fetch(repo_id, listing, allow, ignore))
        progress(0.0, f"downloading {repo_id}")
    try:
        folder = snapshot_download(repo_id, allow_patterns=allow, ignore_patterns=ignore, tqdm_class=tqdm_class)
    except Exception as err:  # noqa: BLE001 - mapped to one line, or re-raised untouched
        line = _user_error(repo_id, err)
        if line is None:
            raise
        raise line from err
    if progress is not None:
        progress(1.0, f"downloaded {repo_id} into {constants.HF_HUB_CACHE}")
    return Path(folder)


def _announce(repo_id: str, already: Optional[Path]) -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        print(f"[tuneforge] HF_HUB_OFFLINE=1: looking for {repo_id} in the cache at {hub_cache_dir()}", flush=True)
    elif already is None:
        print(f"[tuneforge] downloading {repo_id} from {hub_endpoint()} into {hub_cache_dir()}", flush=True)
    else:
        print(f"[tuneforge] {repo_id} is in the cache at {already}; fetching only what changed on {hub_endpoint()}", flush=True)


def download_patterns(files: Optional[list[str]]) -> tuple[list[str], list[str]]:
    """(allow, ignore) for snapshot_download. The .bin weights only when the repo has no safetensors
    (most repos carry both, and the .bin copy would double the download)."""
    has_safetensors = files is not None and any(f.endswith(".safetensors") for f in files)
    return _ALLOW + ([] if has_safetensors else _ALLOW_BIN), list(_IGNORE)


def _listing(repo_id: str) -> Optional[list[tuple[str, Optional[int]]]]:
    """(path, size) of the repo's files: from the hub, else from the cached tree listing, else None.

    Known up front for two reasons: to skip .bin weights when safetensors exist, and to give the
    progress bar its true total (huggingface_hub's own total only grows as each file starts).
    Errors are left to snapshot_download, which falls back to the cache and raises the real cause.
    """
    from huggingface_hub import HfApi, constants, get_cached_repo_tree

    try:  # bounded like the client's own metadata calls, so a dead network costs seconds, not minutes
        info = HfApi().model_info(repo_id, files_metadata=True, timeout=constants.HF_HUB_ETAG_TIMEOUT)
        return [(s.rfilename, s.size) for s in info.siblings or []]
    except Exception:  # noqa: BLE001 - offline, unreachable, unknown or gated: see the docstring
        pass
    try:
        return [(f.path, f.size) for f in get_cached_repo_tree(repo_id)]
    except Exception:  # noqa: BLE001 - never downloaded: snapshot_download says why
        return None


def _bytes_to_fetch(repo_id: str, listing, allow: list[str], ignore: list[str]) -> int:
    """Bytes of the selected files that are not in the cache yet (0 when unknown)."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import filter_repo_objects

    if not listing:
        return 0
    sizes = dict(listing)
    wanted = filter_repo_objects(list(sizes), allow_patterns=allow, ignore_patterns=ignore)
    return sum(sizes[f] or 0 for f in wanted if not isinstance(try_to_load_from_cache(repo_id, f), str))


def _forwarding_tqdm(repo_id: str, progress: Progress, expected_total: int):
    """A tqdm class for snapshot_download(tqdm_class=...) that also reports (fraction, text).

    snapshot_download makes one bar of bytes written ("huggingface_hub.snapshot_download") and
    feeds every file's chunks into it from worker threads; that bar is forwarded. The console bar
    still draws as usual. Counting happens before tqdm's own update, which does nothing on a
    disabled bar (no TTY, HF_HUB_DISABLE_PROGRESS_BARS).
    """
    from huggingface_hub.utils import tqdm as hf_tqdm

    lock = threading.Lock()
    state = {"done": 0, "last": 0.0}

    class ForwardingTqdm(hf_tqdm):
        def __init__(self, *args, **kwargs):
            self._forward = kwargs.get("name") == "huggingface_hub.snapshot_download"
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if self._forward and n:
                self._report(n)
            return super().update(n)

        def _report(self, n) -> None:
            # Under the lock, callback included: worker threads must not deliver fractions out of order.
            with lock:
                state["done"] += n
                total = max(expected_total, self.total or 0)
                fraction = min(state["done"] / total, 1.0) if total else 0.0
                if fraction <= state["last"]:  # totals grow and retries rewind: never step back
                    return
                state["last"] = fraction
                progress(fraction, f"downloading {repo_id}: {state['done'] / 1e6:.1f} of {total / 1e6:.1f} MB")

    return ForwardingTqdm


# ----------------------------------------------------------------------------- hub: access check

def check_hub_access(name: Optional[str]) -> None:
    """For a hub id that is not in the cache: ask the hub once (a HEAD of its config.json, the
    request a download starts with) whether the repo exists and this token may read it. A missing,
    private or gated repo is the UserError line the download itself would raise.

    For callers that must refuse before they write anything (the web UI's Start creates the run
    folder before the trainer downloads). Anything else passes: a cached model, HF_HUB_OFFLINE,
    no network or a hub error are the download's to report, in its own line.
    """
    source = check_model_source(name)
    if source.kind != "hub" or source.folder is not None:
        return
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return
    try:
        get_hf_file_metadata(hf_hub_url(source.name, "config.json"), timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except (GatedRepoError, RepositoryNotFoundError) as err:
        raise _user_error(source.name, err) from None
    except HfHubHTTPError as err:
        if err.response is not None and err.response.status_code == 401:  # e.g. an invalid HF_TOKEN
            raise _user_error(source.name, err) from None
    except Exception:  # noqa: BLE001 - no network, a timeout, a missing config.json: the download says it
        return


# ----------------------------------------------------------------------------- hub: errors

def _user_error(repo_id: str, err: Exception) -> Optional[UserError]:
    """The one line for a failed download, or None when it is not the user's to fix (a bug)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, IncompleteSnapshotError, LocalEntryNotFoundError,
                                        OfflineModeIsEnabled, RepositoryNotFoundError)

    endpoint, cache = constants.ENDPOINT, constants.HF_HUB_CACHE
    fetch_elsewhere = (f"download it on a connected machine (`hf download {repo_id} --local-dir models/{repo_id.split('/')[-1]}`) "
                       "and pass that folder")
    if isinstance(err, GatedRepoError):  # before RepositoryNotFoundError: it is a subclass
        return UserError(f"model '{repo_id}' is gated: accept its license on its hub page ({endpoint}/{repo_id}) "
                         "and set HF_TOKEN=<a token of that account> (https://huggingface.co/settings/tokens)")
    if isinstance(err, RepositoryNotFoundError):
        return UserError(f"model '{repo_id}' was not found on the hub ({endpoint}) and is not a local folder; "
                         "check the id, or log in with HF_TOKEN if it is private")
    if isinstance(err, IncompleteSnapshotError):
        return UserError(f"cannot download '{repo_id}': {_why_offline(endpoint)} and its copy in the cache at {cache} "
                         f"is incomplete; connect and run again, or {fetch_elsewhere}")
    if isinstance(err, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return UserError(f"cannot download '{repo_id}': {_why_offline(endpoint)} and it is not in the cache at {cache}; "
                         f"{fetch_elsewhere}")
    if isinstance(err, HfHubHTTPError) and err.response is not None:
        return UserError(f"cannot download '{repo_id}': {endpoint} answered HTTP {err.response.status_code}; "
                         "run again later (finished files are kept in the cache)")
    if isinstance(err, _transport_errors()) or "Consistency check failed" in str(err):
        return UserError(f"cannot download '{repo_id}': the connection to {endpoint} broke off "
                         f"({type(err).__name__}); run again (finished files are kept in the cache)")
    if isinstance(err, OSError) and err.errno == 28:
        return UserError(f"cannot download '{repo_id}': no space left in the cache at {cache}; "
                         "free some space or set HF_HOME to a larger disk")
    return None


def _transport_errors() -> tuple[type, ...]:
    # huggingface_hub 2.x talks through httpx2; a dropped or refused connection surfaces as its
    # TransportError once the client's own retries (with Range resumes) are used up.
    try:
        import httpx2
    except ImportError:
        return ()
    return (httpx2.TransportError,)


def _why_offline(endpoint: str) -> str:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE=1 is set (no network)"
    return f"{endpoint} cannot be reached (no network?)"
