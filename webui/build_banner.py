"""A banner for a model the app builds itself, in a subprocess (webui/context.py's ModelBuilder):
the demo model on the Train tab, and the real pretrained model (SmolLM2-135M-Instruct from the
package index) on the Train and Chat tabs. It says what is missing, offers a Build button, and
shows the build's progress bar while a timer polls the builder."""

from __future__ import annotations

import html
from functools import partial
from typing import Any

from webui.context import ModelBuilder
from webui.i18n import I18N, t


def build(builder: ModelBuilder, key: str, lang, elem: str = "") -> list[Any]:
    """The banner's components, wired: [markdown, progress, button, timer]. `key` names its
    strings (`{key}.missing|building|failed|build`); its elem_ids are `{elem}{key}-...`."""
    import gradio as gr

    with gr.Column(elem_id=f"{elem}{key}-banner-col"):
        md = gr.Markdown(visible=False, elem_id=f"{elem}{key}-banner")
        bar = gr.HTML(visible=False, elem_id=f"{elem}{key}-progress")
        button = gr.Button(I18N(f"{key}.build"), visible=False, elem_id=f"{elem}{key}-build", size="sm")
    timer = gr.Timer(1.0, active=False)
    outputs = [md, bar, button, timer]
    quiet = dict(show_progress="hidden", queue=False)
    timer.tick(partial(state, builder, key), lang, outputs, **quiet)
    button.click(partial(start, builder, key), lang, outputs)
    return outputs


def state(builder: ModelBuilder, key: str, lang: str):
    """(markdown, progress, button, timer) updates for the builder's state."""
    import gradio as gr

    if builder.running():
        bar = (f'<div class="tf-progress" data-build="{key}"><div class="tf-progress-bar" '
               f'style="width:{100 * builder.fraction:.0f}%"></div><div class="tf-progress-text">'
               f'{html.escape(t(lang, f"{key}.building", message=builder.message))}</div></div>')
        return (gr.Markdown(t(lang, f"{key}.missing"), visible=True), gr.HTML(bar, visible=True),
                gr.Button(visible=False), gr.Timer(active=True))
    if builder.error:
        return (gr.Markdown(t(lang, f"{key}.failed", error=builder.error), visible=True), gr.HTML(visible=False),
                gr.Button(visible=True), gr.Timer(active=False))
    if not builder.ready():
        return gr.Markdown(visible=False), gr.HTML(visible=False), gr.Button(visible=True), gr.Timer(active=False)
    return gr.Markdown(visible=False), gr.HTML(visible=False), gr.Button(visible=False), gr.Timer(active=False)


def start(builder: ModelBuilder, key: str, lang: str):
    """The Build button: start building (once), show its progress."""
    builder.start()
    return state(builder, key, lang)
