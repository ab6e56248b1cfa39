"""Model sources: a local folder, a .gguf file, a hub id ORG/NAME.

Hub downloads go through the real huggingface_hub client to tests/hub_server.py on 127.0.0.1;
nothing is mocked and nothing leaves the machine. huggingface_hub reads HF_ENDPOINT, HF_HOME and
HF_HUB_OFFLINE when it is imported, so every download runs in a fresh `python -c` process.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket

import numpy as np
import pytest

from tests.conftest import HUB_REPO as REPO, PYTHON, ROOT, assert_one_line_refusal, run_cli
from core.errors import UserError
from core.model_source import ModelSource, check_model_source, is_hub_id
from tests.hub_server import HubServer

WEIGHTS = "model.safetensors"
CUT = 16_000_000  # past huggingface_hub's first 10 MiB chunk, so the retry has something to resume from

# Runs in a child process: `check`, `access` (the hub check before a download) or `resolve` (or
# `progress`: resolve and record the callback).
SCRIPT = r'''
import json, sys
from core.errors import UserError
from core.model_source import check_hub_access, check_model_source, resolve_model
mode, name = sys.argv[1], sys.argv[2]
seen = []
try:
    if mode == "check":
        source = check_model_source(name)
    elif mode == "access":
        check_hub_access(name)
        source = check_model_source(name)
    else:
        source = resolve_model(name, progress=(lambda f, text: seen.append([f, text])) if mode == "progress" else None)
except UserError as err:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(1)
print("SOURCE " + json.dumps({"kind": source.kind, "folder": source.folder and str(source.folder), "progress": seen}))
'''


def child(mode: str, name: str):
    return run_cli([PYTHON, "-c", SCRIPT, mode, name], cwd=ROOT, timeout=300)


def source_of(result) -> dict:
    assert result.returncode == 0, result.output[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("SOURCE "))
    return json.loads(line[len("SOURCE "):])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_gets(hub: HubServer, since: int = 0) -> list:
    """GETs of repo files (not API calls) after the first `since` requests."""
    return [r for r in hub.log[since:] if r.method == "GET" and "/resolve/" in r.path]


# ----------------------------------------------------------------------------- hub downloads

def test_hub_id_downloads_into_the_cache_loads_and_is_not_fetched_twice(hub, hf_home, demo_model):
    before = source_of(child("check", REPO))
    assert before == {"kind": "hub", "folder": None, "progress": []}

    first = child("resolve", REPO)
    source = source_of(first)
    assert f"[tuneforge] downloading {REPO} from {hub.url} into {hf_home / 'hub'}" in first.stdout
    folder = hf_home / "hub" / "models--tuneforge--demo" / "snapshots" / hub.repos[REPO].sha
    assert source["kind"] == "hub" and source["folder"] == str(folder)
    assert sha256(folder / WEIGHTS) == sha256(demo_model / WEIGHTS)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source["folder"])
    assert sum(p.numel() for p in model.parameters()) > 5_000_000
    assert AutoTokenizer.from_pretrained(source["folder"])("hello")["input_ids"]

    assert source_of(child("check", REPO))["folder"] == str(folder)  # the check now finds the cache
    mark = len(hub.log)
    again = child("resolve", REPO)
    assert source_of(again)["folder"] == str(folder)
    assert "is in the cache" in again.stdout
    assert file_gets(hub, mark) == [], [r.path for r in file_gets(hub, mark)]


def test_progress_reports_increasing_fractions_ending_at_one(hub, hf_home):
    seen = source_of(child("progress", REPO))["progress"]
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0, seen
    assert fractions == sorted(fractions), seen
    assert len(set(fractions)) >= 3, seen  # bytes arrived in steps, not just start and end
    assert any(" MB" in text for _, text in seen), seen


def test_a_dropped_connection_resumes_with_a_range_request(hub, hf_home, demo_model):
    hub.fault(REPO, WEIGHTS, cut_after=CUT)
    source = source_of(child("resolve", REPO))

    gets = [r for r in file_gets(hub) if r.path.endswith(WEIGHTS)]
    assert [(r.range is None, r.status) for r in gets] == [(True, 200), (False, 206)], gets
    start = int(gets[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= CUT  # the bytes already on disk are not fetched again
    assert sha256(ROOT / source["folder"] / WEIGHTS) == sha256(demo_model / WEIGHTS)
    assert not list((hf_home / "hub").rglob("*.incomplete"))


def test_a_failed_download_is_one_line_and_the_next_run_finishes_it(hub, hf_home, demo_model):
    hub.fault(REPO, WEIGHTS, cut_after=CUT)  # the connection drops ...
    hub.fault(REPO, WEIGHTS, status=503)  # ... and the hub fails the resume
    line = assert_one_line_refusal(child("resolve", REPO))
    assert f"cannot download '{REPO}'" in line and "503" in line and "run again" in line, line
    assert [r.status for r in file_gets(hub) if r.path.endswith(WEIGHTS) and r.range] == [503]
    assert source_of(child("check", REPO))["folder"] is None  # config is cached, the weights are not

    mark = len(hub.log)
    source = source_of(child("resolve", REPO))
    # Only the weights again: the small files finished in the first run. huggingface_hub 2.x keeps
    # a partial file only within one process (PR #4228), so the new process fetches it whole.
    assert [(r.path.rsplit("/", 1)[-1], r.range) for r in file_gets(hub, mark)] == [(WEIGHTS, None)]
    assert sha256(ROOT / source["folder"] / WEIGHTS) == sha256(demo_model / WEIGHTS)


def test_a_typo_in_the_id_is_one_line_naming_it(hub, hf_home):
    line = assert_one_line_refusal(child("resolve", "tuneforge/demoo"))
    assert "model 'tuneforge/demoo' was not found on the hub" in line and hub.url in line and "HF_TOKEN" in line, line


def test_a_gated_model_needs_the_license_and_a_token(hub, hf_home, demo_model, monkeypatch):
    hub.add_folder("tuneforge/gated", demo_model, gated_token="hf_accepted")
    line = assert_one_line_refusal(child("resolve", "tuneforge/gated"))
    assert "'tuneforge/gated' is gated" in line and "license" in line and "HF_TOKEN" in line, line

    monkeypatch.setenv("HF_TOKEN", "hf_accepted")
    source = source_of(child("resolve", "tuneforge/gated"))
    assert (ROOT / source["folder"] / WEIGHTS).is_file()
    assert all(r.authorization == "Bearer hf_accepted" for r in hub.log if "/gated/resolve/" in r.path and r.status == 200)


def test_no_network_is_one_line(hub, hf_home, monkeypatch):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", closed)
    line = assert_one_line_refusal(child("resolve", REPO))
    assert f"cannot download '{REPO}'" in line and f"{closed} cannot be reached" in line, line
    assert "not in the cache" in line and f"hf download {REPO}" in line, line


def test_offline_with_an_empty_cache_is_one_line(hub, hf_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    line = assert_one_line_refusal(child("resolve", REPO))
    assert "HF_HUB_OFFLINE=1" in line and "not in the cache" in line and str(hf_home / "hub") in line, line
    assert hub.log == []


def test_offline_with_the_model_cached_resolves_from_the_cache(hub, hf_home, monkeypatch):
    folder = source_of(child("resolve", REPO))["folder"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mark = len(hub.log)
    assert source_of(child("resolve", REPO))["folder"] == folder
    assert hub.log[mark:] == []  # not a single request


def test_only_transformers_files_are_downloaded(hub, hf_home, demo_model):
    junk = {"pytorch_model.bin": b"\0" * 64, "original/params.json": b"{}", "model-q4.gguf": b"GGUF\0",
            "onnx/model.onnx": b"\0", "consolidated.safetensors": b"\0", "flax_model.msgpack": b"\0",
            "tf_model.h5": b"\0", "optimizer.pt": b"\0"}
    hub.add_folder("tuneforge/mixed", demo_model, extra=junk)
    source_of(child("resolve", "tuneforge/mixed"))
    fetched = {r.path.split("/resolve/")[1].split("/", 1)[1] for r in file_gets(hub)}
    assert fetched == {p.name for p in demo_model.iterdir()}, fetched

    # No safetensors: transformers' .bin weights are the weights, other .bin files are not.
    files = {p.name: p.read_bytes() for p in demo_model.iterdir() if p.name != WEIGHTS}
    hub.add_files("tuneforge/bin-only", {**files, "pytorch_model.bin": b"\0" * 64, "optimizer.bin": b"\0"})
    mark = len(hub.log)
    source_of(child("resolve", "tuneforge/bin-only"))
    fetched = {r.path.rsplit("/", 1)[-1] for r in file_gets(hub, mark)}
    assert "pytorch_model.bin" in fetched and "optimizer.bin" not in fetched, fetched


def test_a_hub_repo_without_weights_is_one_line(hub, hf_home, demo_model):
    hub.add_files("tuneforge/no-weights", {p.name: p.read_bytes() for p in demo_model.iterdir() if p.name != WEIGHTS})
    line = assert_one_line_refusal(child("resolve", "tuneforge/no-weights"))
    assert "hub model 'tuneforge/no-weights' has no transformers model in it" in line, line
    assert "has config.json but no weights" in line and "GGUF-only" in line, line

    hub.add_files("tuneforge/gguf-only", {"README.md": b"# q4", "model-q4.gguf": b"GGUF\3\0\0\0"})
    line = assert_one_line_refusal(child("resolve", "tuneforge/gguf-only"))
    assert "no config.json" in line and "hf download tuneforge/gguf-only FILE.gguf" in line, line
    assert not [r for r in hub.log if r.path.endswith(".gguf")]  # and the .gguf was not fetched


def test_the_module_is_light():
    code = ("import sys, core.model_source; "
            "print([m for m in ('torch', 'transformers', 'huggingface_hub', 'gguf') if m in sys.modules])")
    result = run_cli([PYTHON, "-c", code], cwd=ROOT)
    assert result.stdout.strip() == "[]", result.output


# ----------------------------------------------------------------------------- local folders

def refusal(name) -> str:
    with pytest.raises(UserError) as info:
        check_model_source(name)
    line = str(info.value)
    assert "\n" not in line
    return line


@pytest.mark.parametrize("name", [None, "", "   "])
def test_no_model_is_one_line_with_a_way_to_get_one(name):
    line = refusal(name)
    assert line.startswith("--model_name_or_path is required") and "demo-model" in line, line
    assert "get-model smollm2-135m-instruct" in line, line


def test_a_local_model_folder_is_accepted(demo_model):
    assert check_model_source(str(demo_model)) == ModelSource(str(demo_model), "folder", demo_model, None)


def test_a_folder_without_config_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    line = refusal(str(tmp_path))
    assert f"'{tmp_path}' is not a model folder: it has no config.json" in line, line


def test_a_folder_with_config_but_no_weights_is_one_line(tmp_path, demo_model):
    (tmp_path / "config.json").write_bytes((demo_model / "config.json").read_bytes())
    line = refusal(str(tmp_path))
    assert f"'{tmp_path}' has config.json but no weights" in line, line


def test_a_folder_of_gguf_files_points_at_the_file(tmp_path, demo_model):
    write_gguf(tmp_path / "tiny.gguf")
    assert "holds tiny.gguf; pass that .gguf file itself" in refusal(str(tmp_path))
    (tmp_path / "config.json").write_bytes((demo_model / "config.json").read_bytes())
    assert "only tiny.gguf; pass that .gguf file itself" in refusal(str(tmp_path))


def test_a_folder_missing_shards_of_its_index_is_one_line(tmp_path, demo_model):
    (tmp_path / "config.json").write_bytes((demo_model / "config.json").read_bytes())
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"\0")
    line = refusal(str(tmp_path))
    assert "missing 1 of the 2 weight files" in line and "model-00002-of-00002.safetensors" in line, line


def test_an_adapter_folder_says_which_flag_it_belongs_to(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    assert "--adapter_name_or_path" in refusal(str(tmp_path))


@pytest.mark.parametrize("name", ["/no/such/model", "./models/nope", "~/nope-tuneforge", "data/models/nope",
                                  "model.gguf", "org/model.gguf"])
def test_a_missing_path_is_one_line(name):
    line = refusal(name)
    assert f"model path '{name}' does not exist" in line, line


def test_a_name_that_is_neither_is_one_line():
    line = refusal("smollm")
    assert "'smollm' is neither a local folder nor a hub id ORG/NAME" in line, line


@pytest.mark.parametrize("text, expected", [
    ("HuggingFaceTB/SmolLM2-135M-Instruct", True), ("org/name", True), ("Qwen/Qwen2.5-0.5B", True),
    ("gpt2", False), ("a/b/c", False), ("/abs/path", False), ("org/-name", False), ("org/name-", False),
    ("org/na--me", False), ("org/na..me", False), ("org/name.git", False), ("org/name.gguf", False),
    ("org/na me", False), ("", False), ("tests/fixtures", None),
])
def test_is_hub_id(text, expected, tmp_path, monkeypatch):
    if expected is None:  # an existing local path is never a hub id, whatever its shape
        (tmp_path / "tests" / "fixtures").mkdir(parents=True)
        monkeypatch.chdir(tmp_path)
        expected = False
    assert is_hub_id(text) is expected


# ----------------------------------------------------------------------------- gguf files

def write_gguf(path, arch: str = "llama", vocab: int = 0):
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    if vocab:
        writer.add_token_list([f"tok{i}" for i in range(vocab)])
    writer.add_tensor("token_embd.weight", np.ones((16, 8), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones((8,), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_file_is_accepted(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf", vocab=100)
    assert check_model_source(str(path)) == ModelSource(str(path), "gguf", tmp_path, "tiny.gguf")


def test_a_file_that_is_not_gguf_is_one_line(tmp_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    line = refusal(str(path))
    assert f"'{path}' is not a GGUF file" in line, line


@pytest.mark.parametrize("keep", [-16, 100, 10])  # tensor data cut short, metadata cut, header cut
def test_a_truncated_gguf_is_one_line(tmp_path, keep):
    data = write_gguf(tmp_path / "full.gguf", vocab=100).read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[:keep])
    line = refusal(str(path))
    assert f"GGUF file '{path}' is damaged or truncated" in line, line


def test_a_gguf_of_an_architecture_transformers_cannot_load_is_one_line(tmp_path):
    path = write_gguf(tmp_path / "rwkv.gguf", arch="rwkv7")
    line = refusal(str(path))
    assert "holds architecture 'rwkv7', which transformers cannot load from GGUF" in line and "llama" in line, line


# ----------------------------------------------------------------------------- the trainer and chat on a hub id

def test_train_on_a_hub_id_downloads_then_trains(hub, hf_home, tmp_path):
    out = tmp_path / "run"
    result = run_cli(["train", "--model_name_or_path", REPO, "--dataset", "demo_sft", "--do_train", "--template", "llama2",
                      "--max_steps", "2", "--per_device_train_batch_size", "2", "--cutoff_len", "64",
                      "--output_dir", str(out)])
    assert result.returncode == 0, result.output[-3000:]
    assert "downloading tuneforge/demo" in result.output
    assert json.loads((out / "status.json").read_text())["state"] == "finished"
    assert file_gets(hub), "the weights came from the hub server"
    # Chat loads the same id from the cache, with the adapter the run wrote.
    chat = run_cli([PYTHON, "-c", "import sys; from core.chat import load_chat_model; "
                    "s = load_chat_model(sys.argv[1], sys.argv[2]); print('LOADED', s.template.name)", REPO, str(out)])
    assert "LOADED llama2" in chat.output, chat.output[-3000:]


@pytest.mark.parametrize("name, words", [("tuneforge/demoo", "was not found on the hub"), ("tuneforge/gated", "gated")])
def test_train_on_a_bad_hub_id_is_one_line_and_writes_nothing(hub, hf_home, tmp_path, demo_model, name, words):
    hub.add_folder("tuneforge/gated", demo_model, gated_token="hf_secret")
    out = tmp_path / "run"
    result = run_cli(["train", "--model_name_or_path", name, "--dataset", "demo_sft", "--do_train", "--output_dir", str(out)])
    line = assert_one_line_refusal(result)
    assert name in line and words in line, line
    assert not out.exists()


def bad_sources(tmp_path, demo_model) -> dict:
    """A broken model of each kind a user can pass, made in tmp_path."""
    not_gguf = tmp_path / "noise.gguf"
    not_gguf.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(write_gguf(tmp_path / "full.gguf", vocab=100).read_bytes()[:-16])
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(demo_model / name, no_weights / name)
    return {"corrupt gguf": (not_gguf, "is not a GGUF file"), "truncated gguf": (truncated, "damaged or truncated"),
            "unsupported gguf": (write_gguf(tmp_path / "rwkv.gguf", arch="rwkv7"), "transformers cannot load"),
            "folder without weights": (no_weights, "no weights")}


@pytest.mark.parametrize("case", ["corrupt gguf", "truncated gguf", "unsupported gguf", "folder without weights"])
def test_train_on_a_broken_model_is_one_line_and_writes_nothing(tmp_path, demo_model, case):
    path, words = bad_sources(tmp_path, demo_model)[case]
    out = tmp_path / "run"
    line = assert_one_line_refusal(run_cli(["train", "--model_name_or_path", str(path), "--dataset", "demo_sft",
                                            "--do_train", "--output_dir", str(out)]))
    assert words in line, line
    assert not out.exists()


# ----------------------------------------------------------------------------- the web UI's Start on a hub id

# Runs in a child process: the Train tab's Start handler, called by name on a form for MODEL,
# prints the warning lines it gave (gr.Warning outside a page is a Python warning).
START_SCRIPT = r'''
import json, sys, warnings
from pathlib import Path
from tests.conftest import ROOT
from tests.test_webui_command import _defaults
from webui import command, form
from webui.context import AppContext
from webui.runner import Runner
from webui.tabs.train import handlers
saves, demo, model = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ctx = AppContext(saves, ROOT / "data", demo, runner=Runner(saves, ROOT), demo=None)
values = _defaults(model_name_or_path=model, output_dir=str(saves / "run"), dataset=["demo_sft"], template="llama2")
launcher = ("", 1, form.NONE, [], 1, "", command.DEFAULT_PORT)  # extra, nproc, accel, gpus, machines, ip, port
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    handlers.start(ctx, "en", None, *launcher, *values)
print("WARNINGS " + json.dumps([str(w.message) for w in caught if w.category is UserWarning]))
'''


@pytest.mark.parametrize("name, words", [("tuneforge/demoo", "was not found on the hub"), ("tuneforge/gated", "gated")])
def test_start_in_the_web_ui_refuses_a_bad_hub_id_in_one_line_before_the_run_folder(hub, hf_home, tmp_path, demo_model,
                                                                                   name, words):
    hub.add_folder("tuneforge/gated", demo_model, gated_token="hf_secret")
    saves = tmp_path / "saves"
    result = run_cli([PYTHON, "-c", START_SCRIPT, str(saves), str(demo_model), name], cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.output[-3000:]
    warned = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("WARNINGS "))[9:])
    assert len(warned) == 1 and "\n" not in warned[0], warned
    # The trainer's own line (test_train_on_a_bad_hub_id_is_one_line_and_writes_nothing).
    assert f"model '{name}'" in warned[0] and words in warned[0] and "HF_TOKEN" in warned[0], warned
    assert not saves.exists() or not any(saves.iterdir()), list(saves.rglob("*"))
    assert len(hub.log) == 1 and hub.log[0].method == "HEAD", hub.log  # asked once, downloaded nothing


def test_the_hub_check_before_start_asks_once_and_never_blocks_on_the_network(hub, hf_home, monkeypatch):
    # A good id not in the cache: one HEAD, nothing downloaded.
    assert source_of(child("access", REPO))["folder"] is None
    assert [(r.method, r.path, r.status) for r in hub.log] == [("HEAD", f"/{REPO}/resolve/main/config.json", 200)]

    # In the cache: the hub is not asked at all.
    source_of(child("resolve", REPO))
    mark = len(hub.log)
    assert source_of(child("access", REPO))["folder"] is not None
    assert hub.log[mark:] == []

    # Offline, or no network: the check passes (the trainer says it in its own line).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source_of(child("access", "tuneforge/other"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", closed)
    source_of(child("access", "tuneforge/other"))
    assert hub.log[mark:] == []
