"""The Gradio app: command-line checks, the Blocks with every tab, and launch.

`python launch.py` / `python launch.py webui` call `main(argv)`. Nothing heavy is imported at
module load (no torch/transformers/datasets; gradio only inside functions), so the page is up
in seconds; a missing demo model is built in a subprocess after the server is up, with its
progress shown on the Train tab.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import socket
import sys
from functools import partial
from typing import Any, Optional

from core import startup
from core.errors import UserError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860

CSS = """
.tf-progress { position: relative; height: 28px; border-radius: 6px; background: var(--block-background-fill);
  border: 1px solid var(--border-color-primary); overflow: hidden; }
.tf-progress-bar { position: absolute; inset: 0 auto 0 0; background: #9ecbff; transition: width .4s; }
.tf-progress-bar.tf-finished { background: #9be3a8; }
.tf-progress-bar.tf-failed, .tf-progress-bar.tf-aborted { background: #ffb4a8; }
.tf-progress-text { position: relative; padding: 4px 10px; font-size: 14px; white-space: nowrap; }
.tf-token-trained { background: #ffe08a; border-radius: 3px; }
.tf-token-masked { color: #8a8a8a; }
.tf-preview { font-family: var(--font-mono); white-space: pre-wrap; font-size: 13px; line-height: 1.7; }
#tf-header { align-items: center; }
.tf-check { min-width: 180px !important; }
"""

# The language switch changes gradio's own front-end locale (the store gr.I18n reads), so every
# static label switches at once; handlers get the same value for their messages.
LANG_JS = """
async (lang) => {
  const url = performance.getEntriesByType('resource').map(e => e.name)
      .find(n => /\\/assets\\/core-[^\\/]+\\.js$/.test(n));
  if (url) { try { (await import(url)).changeLocale(lang === 'zh' ? 'zh-CN' : 'en'); } catch (e) { console.warn(e); } }
  return lang;
}
"""
# The logs follow their newest line: gradio's autoscroll did not move a non-interactive
# Textbox's textarea. Each new value scrolls to the end, unless the reader has scrolled up.
FOLLOW_LOGS_JS = """
() => {
  const seen = new WeakMap();
  setInterval(() => {
    for (const box of document.querySelectorAll('#train-console textarea, #runs-log textarea, #export-log textarea')) {
      const last = seen.get(box);
      if (last && last.value === box.value) continue;
      const atEnd = !last || last.atEnd;
      if (atEnd) box.scrollTop = box.scrollHeight;
      seen.set(box, {value: box.value, atEnd});
    }
  }, 250);
  document.addEventListener('scroll', (e) => {
    const box = e.target;
    if (box instanceof HTMLTextAreaElement && seen.has(box)) {
      seen.get(box).atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    }
  }, true);
}
"""
BROWSER_LANG_JS = "() => ((navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en')"


# ---------------------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="launch.py webui", description="TuneForge web UI.")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to listen on (default 127.0.0.1); any other than loopback needs --auth or --auth_file")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--auth", default=None, help="user:password required to open the app")
    parser.add_argument("--auth_file", default=None, help="a file of user:password lines")
    parser.add_argument("--max_file_size", default="2gb", help="largest upload accepted (default 2gb)")
    parser.add_argument("--saves_dir", default="saves", help="folder of the runs (default saves)")
    parser.add_argument("--dataset_dir", default="data", help="folder of dataset_info.json and the datasets (default data)")
    parser.add_argument("--demo_model", default=None, help="demo model folder (default DATASET_DIR/models/demo)")
    parser.add_argument("--no_demo_build", action="store_true", help="do not build a missing demo model at start")
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_auth(auth: Optional[str], auth_file: Optional[str]) -> Optional[list[tuple[str, str]]]:
    pairs: list[tuple[str, str]] = []
    lines: list[tuple[str, str]] = []
    if auth:
        lines.append(("--auth", auth))
    if auth_file:
        try:
            with open(auth_file, encoding="utf-8") as fh:
                lines += [(f"{auth_file}:{i}", line.strip()) for i, line in enumerate(fh, 1)
                          if line.strip() and not line.lstrip().startswith("#")]
        except OSError as err:
            raise UserError(f"--auth_file {auth_file}: {err.strerror}") from None
        if not lines:
            raise UserError(f"--auth_file {auth_file} holds no user:password line")
    for where, line in lines:
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise UserError(f"{where}: expected user:password")
        pairs.append((user, password))
    return pairs or None


def check_host(host: str, auth: Optional[list]) -> None:
    if not is_loopback(host) and not auth:
        raise UserError(
            f"refusing to listen on {host} without a password: anyone on the network could start runs "
            "and read your files; add --auth user:password or --auth_file FILE (or use --host 127.0.0.1)")


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_file_size(text: str) -> str:
    if not re.fullmatch(r"\d+\s*(b|kb|mb|gb|tb)", text.strip(), flags=re.IGNORECASE):
        raise UserError(f"--max_file_size {text!r}: use a number and a unit, e.g. 500mb or 2gb")
    return text.strip().lower().replace(" ", "")


def check_port(host: str, port: int) -> None:
    if port_free(host, port):
        return
    nxt = next((p for p in range(port + 1, port + 200) if port_free(host, p)), None)
    hint = f"; the next free one is {nxt}: python launch.py --port {nxt}" if nxt else ""
    raise UserError(f"port {port} on {host} is busy (another TuneForge or program uses it){hint}")


# ---------------------------------------------------------------------------- the app


def make_context(args: argparse.Namespace):
    from webui.context import AppContext, demo_builder, real_model_builder
    from webui.paths import ROOT, resolve_path
    from webui.runner import Runner

    saves = resolve_path(args.saves_dir)
    data = resolve_path(args.dataset_dir)
    demo_model = resolve_path(args.demo_model) if args.demo_model else data / "models" / "demo"
    saves.mkdir(parents=True, exist_ok=True)
    return AppContext(saves, data, demo_model, Runner(saves, ROOT), demo_builder(demo_model, data),
                      real_model=real_model_builder(data / "models"))


def real_model_banners(ctx, lang, train: dict, chat: dict) -> tuple:
    """(handler, inputs, outputs) that shows the real model's Build banner on the Train and Chat
    tabs as the builder stands (missing, building, failed or built)."""
    from webui import build_banner

    outputs = train["real_outputs"] + chat["real_outputs"]
    if ctx.real_model is None:
        return (lambda _lang: [], lang, outputs)

    def show(lang_value: str):
        return list(build_banner.state(ctx.real_model, "real", lang_value)) * 2

    return (show, lang, outputs)


def build_app(ctx) -> Any:
    """The Blocks with every tab (no server started)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from webui.i18n import I18N
    from webui.tabs.chat import layout as chat_tab
    from webui.tabs.datasets import layout as datasets_tab
    from webui.tabs.evaluate import layout as evaluate_tab
    from webui.tabs.export import layout as export_tab
    from webui.tabs.runs import layout as runs_tab
    from webui import build_banner, form
    from webui.tabs.train import handlers as train_handlers
    from webui.tabs.train import layout as train_tab

    hidden_progress = dict(show_progress="hidden")
    with gr.Blocks(title="TuneForge") as demo:
        with gr.Row(elem_id="tf-header"):
            gr.Markdown(f"## TuneForge\n{I18N('app.subtitle')}", elem_id="tf-title")
            lang = gr.Dropdown(choices=[("English", "en"), ("中文", "zh")], value="en", label=I18N("app.language"),
                               elem_id="tf-lang", scale=0, min_width=140, interactive=True)
        # Set when the page's load events are done (the session's state restored); tests wait for it.
        ready = gr.HTML("", elem_id="tf-ready", padding=False)
        chat_target = gr.State(None)  # {"model_name_or_path", "adapter_name_or_path", "template", "run_dir"}
        ctx.components["lang"] = lang
        ctx.components["chat_target"] = chat_target
        with gr.Tabs(elem_id="tf-tabs") as tabs:
            ctx.components["tabs"] = tabs
            with gr.Tab(I18N("tab.train"), id="train", elem_id="tab-train") as train_tab_obj:
                train = ctx.components["train"] = train_tab.build(ctx, lang)
            with gr.Tab(I18N("tab.runs"), id="runs", elem_id="tab-runs") as runs_tab_obj:
                runs = runs_tab.build(ctx, lang)
            with gr.Tab(I18N("tab.datasets"), id="datasets", elem_id="tab-datasets") as data_tab_obj:
                datasets = datasets_tab.build(ctx, lang)
            with gr.Tab(I18N("tab.chat"), id="chat", elem_id="tab-chat") as chat_tab_obj:
                chat = chat_tab.build(ctx, lang, chat_target)
            with gr.Tab(I18N("tab.evaluate"), id="evaluate", elem_id="tab-evaluate") as evaluate_tab_obj:
                evaluate = evaluate_tab.build(ctx, lang)
            with gr.Tab(I18N("tab.export"), id="export", elem_id="tab-export") as export_tab_obj:
                export = export_tab.build(ctx, lang)

        lang.change(None, lang, lang, js=LANG_JS)
        # gradio re-translates only the components it re-renders: the other tabs' labels and
        # the texts handlers wrote follow the language from the server.
        tab_objs = [child for child in tabs.children if isinstance(child, gr.Tab)]  # each labelled I18N("tab.<id>")
        lang.change(partial(tab_labels, [tab.id for tab in tab_objs]), lang, tab_objs, show_progress="hidden", queue=False)
        lang.change(partial(train_handlers.run_tick, ctx), train["tick_inputs"], train["tick_outputs"], **hidden_progress)
        lang.change(datasets_tab.labels, lang, datasets["translated"], show_progress="hidden", queue=False)
        # A reload (or a second browser) is a new session: find the live run again and restore
        # the timer and the chart from the server's runner.
        hidden = dict(show_progress="hidden")
        demo.load(same_language, lang, lang, js=BROWSER_LANG_JS) \
            .then(partial(train_handlers.run_tick, ctx), train["tick_inputs"], train["tick_outputs"], **hidden) \
            .then(partial(train_handlers.restore_form, ctx), train["watch"],
                  [train["extra"], train["command"], *(train["fields"][name] for name in form.FORM_FIELDS)], **hidden) \
            .then(partial(build_banner.state, ctx.demo, "demo"), lang, train["demo_outputs"], **hidden) \
            .then(*real_model_banners(ctx, lang, train, chat), **hidden) \
            .then(*train["fresh_output_dir"], **hidden) \
            .then(mark_ready, None, ready, **hidden)
        for tab, event in ((runs_tab_obj, runs["refresh_event"]), (data_tab_obj, datasets["refresh_event"]),
                           (chat_tab_obj, chat["refresh_event"]), (export_tab_obj, export["refresh_event"])):
            demo.load(*event)
            tab.select(*event)
        train_tab_obj.select(*train["refresh_choices"])
        evaluate_tab_obj.select(*evaluate["refresh_event"])
        # The dataset preview measures lengths against the Train tab's cutoff, not a default of its own.
        data_tab_obj.select(same_value, train["fields"]["cutoff_len"], datasets["preview_cutoff"], show_progress="hidden")
    return demo


def same_language(lang: str) -> str:
    """The browser's language, which BROWSER_LANG_JS reads before this runs."""
    return lang


def tab_labels(names: list[str], lang: str) -> list[Any]:
    import gradio as gr

    from webui.i18n import t

    return [gr.Tab(label=t(lang, f"tab.{name}")) for name in names]


def same_value(value: Any) -> Any:
    return value


def mark_ready() -> str:
    return '<span data-ready="1"></span>'


def main(argv: list[str]) -> int:
    startup.begin()  # until the server is up (core/startup.py)
    try:
        return serve(argv)
    finally:
        startup.done()


def serve(argv: list[str]) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = parse_args(argv)
    try:
        auth = read_auth(args.auth, args.auth_file)
        check_host(args.host, auth)
        check_port(args.host, args.port)
        args.max_file_size = check_file_size(args.max_file_size)
        ctx = make_context(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    demo = build_app(ctx)
    from webui.i18n import I18N

    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=args.host, server_port=args.port, auth=auth, share=False, inbrowser=False,
        max_file_size=args.max_file_size, allowed_paths=[str(ctx.saves_dir)], i18n=I18N.build(),
        css=CSS, js=FOLLOW_LOGS_JS, prevent_thread_lock=True, show_error=False, ssr_mode=False, quiet=True,
    )
    startup.done()
    print(f"TuneForge is ready at http://{args.host}:{args.port}  (runs in {ctx.saves_dir})", flush=True)
    if not ctx.demo.ready() and not args.no_demo_build:
        ctx.demo.start()  # after the server is up, so the page opens at once and shows progress
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        ctx.runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
