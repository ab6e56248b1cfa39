"""Hostile requests: file names, paths, shell metacharacters, remote code and passwords.

HTTP requests go to a real app process (`launch.py webui`); handler calls go to the real Gradio
handlers of an app built in this process.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import psutil
import pytest
import yaml

from core import rundir
from tests.conftest import ROOT
from tests.reliability.conftest import call_handler, http, one_line, read_status, snapshot, wait_for
from tests.test_webui_command import _defaults
from webui.tabs.datasets import handlers as datasets
from webui.tabs.train import handlers as train

GOOD = [{"instruction": "Say hi.", "input": "", "output": "Hi!"}]


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/json\r\n\r\n").encode("utf-8", errors="surrogateescape")
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(app, filename: str, content: bytes) -> tuple[int, bytes]:
    body, ctype = multipart("files", filename, content)
    return http(app.url.rstrip("/") + "/gradio_api/upload", "POST", body, {"Content-Type": ctype})


# ---------------------------------------------------------------------------- uploads and files


@pytest.mark.slow
def test_hostile_upload_names_are_sanitised_and_nothing_is_written_outside(apps, demo_model, tmp_path):
    app = apps.start(demo_model, "--no_demo_build", "--max_file_size", "64kb")
    sentinel_dirs = [tmp_path, ROOT, Path("/etc"), Path("/tmp")]
    before = {d: set(os.listdir(d)) for d in sentinel_dirs}
    content = json.dumps(GOOD).encode()
    names = ["../../../../tmp/evil_tf.json", "/etc/evil_tf.json", "..\\..\\evil_tf.json", "ok\x00/../../evil_tf.json",
             "CON.json", ".hidden.json", "a;rm -rf ~;.json"]
    stored = []
    for name in names:
        status, body = upload(app, name, content)
        assert status in (200, 400), (name, status, body[:200])
        if status == 200:
            (path,) = json.loads(body)
            stored.append(Path(path))
            assert Path(path).resolve().is_relative_to(Path(path).resolve().parents[1]), path
            assert ".." not in Path(path).parts and Path(path).read_bytes() == content
    # Nothing appeared next to the app, in /etc, /tmp (other than gradio's own cache) or here.
    for d in sentinel_dirs:
        new = set(os.listdir(d)) - before[d]
        assert not [n for n in new if "evil" in n or n.startswith(("CON", ".hidden", "a;rm"))], (d, new)
    # Over the size cap, and not a data file: refused, the app still serves.
    status, _ = upload(app, "big.json", b"[" + b" " * (80 << 10) + b"]")
    assert status in (400, 413), status
    assert app.get("/")[0] == 200

    # Registering what was uploaded: the copy in the dataset dir has a safe name and nothing else moves.
    from core.data.registry import add_dataset, load_registry

    data_before = set(os.listdir(app.data))
    for i, path in enumerate(stored):
        add_dataset(app.data, f"hostile{i}", path)
    added = set(os.listdir(app.data)) - data_before
    for name in added:
        assert name == Path(name).name and not name.startswith(".") or name == ".dataset_info.json.lock", name
        assert name.split(".")[0].upper() not in ("CON", "PRN", "AUX", "NUL"), name
        assert all(c.isalnum() or c in "._-" for c in name), name
    assert all(load_registry(app.data)[f"hostile{i}"].file_name in added for i in range(len(stored)))


def test_upload_of_a_symlink_or_a_link_inside_the_dataset_dir_is_refused(ui, tmp_path):
    data = ui.ctx.dataset_dir
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(GOOD))
    (tmp_path / "uploads").mkdir()
    link = tmp_path / "uploads" / "link.json"
    link.symlink_to(secret)
    (data / "inside_link.json").symlink_to(secret)
    before = snapshot(data)
    result, _ = call_handler(datasets.register, ui.ctx, str(link), "linked", "alpaca", False, "en",
                             "instruction", "input", "output", *["none"] * 5)
    assert "symbolic link" in one_line(result[0])
    _, shown = call_handler(datasets.register_existing_file, ui.ctx, "inside_link.json", "linked", "en")
    assert len(shown) == 1 and "outside" in one_line(shown[0]), shown
    assert snapshot(data) == before


@pytest.mark.slow
def test_the_app_serves_no_file_outside_its_own_folders(apps, demo_model):
    app = apps.start(demo_model, "--no_demo_build")
    run = app.saves / "r"
    run.mkdir(parents=True)
    (run / "ok.txt").write_text("mine")
    (run / "leak.txt").symlink_to("/etc/passwd")
    (run / "leakdir").symlink_to("/etc")
    assert app.get(f"/gradio_api/file={run}/ok.txt") == (200, b"mine")  # the saves folder is the app's own
    for path in ["/gradio_api/file=/etc/passwd", "/gradio_api/file=%2Fetc%2Fpasswd", "/gradio_api/file=/proc/self/environ",
                 f"/gradio_api/file={run}/leak.txt", f"/gradio_api/file={run}/leakdir/passwd",
                 f"/gradio_api/file={run}/../../../../../etc/passwd", f"/gradio_api/file={run}/..%2f..%2f..%2f..%2fetc%2fpasswd",
                 f"/gradio_api/file={ROOT}/launch.py", "/gradio_api/file=launch.py", f"/gradio_api/file={app.data}/dataset_info.json",
                 f"/gradio_api/file={app.log}", "/gradio_api/file=../../../../etc/passwd", "/static/../../../etc/passwd",
                 "/assets/..%2f..%2f..%2fetc%2fpasswd", "/file=/etc/passwd", "/gradio_api/file=~/.bashrc"]:
        status, body = app.get(path)
        assert status in (400, 403, 404), (path, status)
        assert b"root:" not in body and b"PATH=" not in body and b"TuneForge's one entry point" not in body, path
    assert app.alive() and app.get("/")[0] == 200


# ---------------------------------------------------------------------------- what reaches the trainer


@pytest.mark.slow
def test_form_values_with_shell_metacharacters_reach_the_trainer_literally(ui, demo_model):
    marker = f"tf_pwned_{uuid.uuid4().hex[:8]}"
    evil = f"x; touch {marker} && echo $(touch {marker}2) `touch {marker}3` | cat > {marker}4 'q\" \\n $HOME"
    out = ui.ctx.saves_dir / "meta"
    values = _defaults(model_name_or_path=str(demo_model), output_dir=str(out), dataset=["demo_sft"], system=evil,
                       max_steps=1, cutoff_len=64, logging_steps=1, lora_target="q_proj,v_proj")
    result, shown = call_handler(train.start, ui.ctx, "en", None, "", 1, "none", [], 1, "", 29500, *values)
    assert not shown, shown
    previewed = result[1]
    wait_for(lambda: ui.ctx.runner.active is None, 300, "the run to end")
    assert read_status(out)["state"] == "finished", (out / "console.log").read_text()[-2000:]
    # The form reaches the trainer as run.yaml, which the trainer rewrites from what it parsed: the
    # value survived both ways, and the command line holds no form value at all.
    run_yaml = yaml.safe_load((out / "run.yaml").read_text())
    launch = json.loads((out / "launch.json").read_text())
    assert run_yaml["system"] == evil
    assert launch["argv"][-2] == "train"
    assert launch["argv"][-1].endswith("meta/run.yaml") and evil not in " ".join(launch["argv"])
    assert launch["trainer_argv"][-1] == launch["argv"][-1]
    assert launch["command"] == previewed
    for where in (ROOT, ui.ctx.saves_dir, out, Path.cwd()):
        assert not list(Path(where).glob(f"{marker}*")), where


def test_trust_remote_code_is_off_unless_turned_on_with_a_warning(ui, demo_model, tmp_path):
    from core.args import our_fields
    from core.args import ModelArguments
    from core.model import load_base_model, load_tokenizer
    from webui import command
    from webui.form import form_values

    assert our_fields()["trust_remote_code"].default is False
    assert command.config_from_form(form_values(_defaults()))["trust_remote_code"] is False
    assert call_handler(train.warn_trust, False, "en")[1] == []
    (warning,) = call_handler(train.warn_trust, True, "en")[1]
    assert "trust_remote_code runs Python code from the model folder" in warning
    # A model folder that ships code: without the switch, its code never runs.
    model = tmp_path / "custom"
    model.mkdir()
    for name in os.listdir(demo_model):
        if (demo_model / name).is_file():
            (model / name).write_bytes((demo_model / name).read_bytes())
    marker = tmp_path / "code_ran"
    (model / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                   "from transformers import LlamaConfig, LlamaForCausalLM\n"
                                   "class EvilConfig(LlamaConfig):\n    pass\n"
                                   "class EvilModel(LlamaForCausalLM):\n    config_class = EvilConfig\n")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (model / "config.json").write_text(json.dumps(config))
    load_tokenizer(ModelArguments(model_name_or_path=str(model)))
    load_base_model(ModelArguments(model_name_or_path=str(model)))
    assert not marker.exists(), "the model folder's code ran without trust_remote_code"
    # The switch is what runs it (so the check above would notice).
    load_base_model(ModelArguments(model_name_or_path=str(model), trust_remote_code=True))
    assert marker.read_text() == "ran"


# ---------------------------------------------------------------------------- passwords


SECRET = "s3cr3t-" + uuid.uuid4().hex[:12]


@pytest.mark.e2e
@pytest.mark.slow
def test_wrong_passwords_are_refused_and_the_secret_never_leaks(apps, browser, demo_model, tmp_path):
    app = apps.start(demo_model, "--no_demo_build", "--auth", f"alice:{SECRET}")
    form = lambda user, pw: f"username={user}&password={pw}".encode()  # noqa: E731
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for user, pw in (("alice", "wrong"), ("alice", ""), ("bob", SECRET), ("alice", SECRET.upper())):
        status, _ = http(app.url + "login", "POST", form(user, pw), headers)
        assert status in (400, 401, 403, 422), (user, pw, status)
    assert http(app.url + "config")[0] in (401, 403), "the app's config needs a login"
    assert http(app.url + "login", "POST", form("alice", SECRET), headers)[0] == 200

    # Log in in a browser, preview and start a run, and look for the secret everywhere it could leak.
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app.url)
    page.get_by_label("username").fill("alice")
    page.get_by_label("password").fill(SECRET)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#tf-ready [data-ready]", state="attached")
    from tests.e2e.test_webui_e2e import preview_and_start, setup_run

    setup_run(page, 400)
    previewed, run_dir = preview_and_start(page, app)
    # launch.json may not be there yet when run.yaml is: wait for the trainer's own entry in it.
    trainer = wait_for(lambda: (run_dir / "run.yaml").exists() and (rundir.read_json(run_dir / "launch.json") or {}).get("trainer_pid"),
                       180, "the trainer to write run.yaml and its pid")
    exposed = {"preview": previewed.encode()}
    for pid in {trainer, rundir.read_json(run_dir / "launch.json")["pid"]}:
        try:
            process = psutil.Process(pid)
            exposed[f"environ of {pid}"] = "\0".join(f"{k}={v}" for k, v in process.environ().items()).encode()
            exposed[f"cmdline of {pid}"] = "\0".join(process.cmdline()).encode()
        except psutil.Error:
            pass
    page.locator("#train-abort").click()
    wait_for(lambda: read_status(run_dir).get("state") in ("aborted", "failed", "finished"), 30, "the abort")
    context.close()
    for path in [app.log, *app.saves.rglob("*")]:
        if Path(path).is_file():
            exposed[str(path)] = Path(path).read_bytes()
    leaks = [where for where, data in exposed.items() if SECRET.encode() in data]
    assert not leaks, f"the password appears in {leaks}"
    assert any("environ" in k for k in exposed), "the trainer's environment was checked"
