"""The Train tab's banner while the demo model is missing or being built (in a subprocess of the
app, see webui/context.py's DemoBuilder): what it says, and the Build button."""

from __future__ import annotations

import html

from webui.context import AppContext
from webui.i18n import t


def demo_banner(ctx: AppContext, lang: str):
    """(markdown, progress, build button, demo timer) updates for the builder's state."""
    import gradio as gr

    demo = ctx.demo
    if demo.running():
        bar = (f'<div class="tf-progress" data-demo="building"><div class="tf-progress-bar" '
               f'style="width:{100 * demo.fraction:.0f}%"></div><div class="tf-progress-text">'
               f'{html.escape(t(lang, "demo.building", message=demo.message))}</div></div>')
        return (gr.Markdown(t(lang, "demo.missing"), visible=True), gr.HTML(bar, visible=True),
                gr.Button(visible=False), gr.Timer(active=True))
    if demo.error:
        return (gr.Markdown(t(lang, "demo.failed", error=demo.error), visible=True), gr.HTML(visible=False),
                gr.Button(visible=True), gr.Timer(active=False))
    if not demo.ready():
        return gr.Markdown(visible=False), gr.HTML(visible=False), gr.Button(visible=True), gr.Timer(active=False)
    return gr.Markdown(visible=False), gr.HTML(visible=False), gr.Button(visible=False), gr.Timer(active=False)


def build_demo(ctx: AppContext, lang: str):
    """The Build button: start building (once), show its progress."""
    ctx.demo.start()
    return demo_banner(ctx, lang)
