"""The Evaluate tab's event handlers: predict on a dataset with a run's adapter on and off, and the
tables of its results.

Predict runs as `python launch.py train --do_predict --predict_with_generate ...`
(core/evaluate.py's `predict_argv`), the command line's own code path, in a subprocess, so the web
server never holds the weights; its progress lines drive the bar. Results go into the run folder
(RUN/eval/DATASET-TIME/), or for a base model alone into SAVES/eval/MODEL-DATASET-TIME/; the Runs
tab shows a run's saved evaluations when the run is opened (`saved_evaluations`), and the newest
one's tables again (`newest_result_tables`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional

from core import rundir
from core.errors import UserError
from core.evaluate import PredictResult, eval_folders, metrics_table, predict_argv, read_results, rows_by_change
from webui import choices
from webui.context import AppContext
from webui.form import NONE
from webui.i18n import headers, t
from webui.paths import ROOT, display_path, resolve_path
from webui.tabs.export.handlers import ExportJob, progress_html as job_progress_html

METRIC_COLUMNS = ("metric", "base", "adapter", "delta")
SAMPLE_COLUMNS = ("change", "prompt", "reference", "base_answer", "adapter_answer", "base_score", "adapter_score")
SAMPLE_WIDTHS = ["8%", "20%", "18%", "19%", "19%", "8%", "8%"]  # the texts wide, the scores narrow
EvalJob = ExportJob  # one subprocess at a time per app server, its progress lines as they come


def progress_html(fraction: float, text: str, state: str = "running") -> str:
    return job_progress_html(fraction, text, state, bar_id="evaluate-progress-bar")


# ---------------------------------------------------------------------------- where results go


def run_folder_of(adapter: str) -> Optional[Path]:
    """The run folder an adapter belongs to (the folder itself, or the run of a checkpoint-N)."""
    path = resolve_path(adapter)
    for candidate in (path, path.parent):
        if (candidate / rundir.STATUS_JSON).is_file():
            return candidate
    return None


def output_dir_for(ctx: AppContext, model: str, adapter: Optional[str], dataset: str) -> Path:
    """RUN/eval/DATASET-TIME for a run's adapter; SAVES/eval/MODEL-DATASET-TIME for a model alone."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if adapter:
        run_dir = run_folder_of(adapter) or resolve_path(adapter)
        checkpoint = resolve_path(adapter).name if resolve_path(adapter) != run_dir else ""
        return run_dir / "eval" / "-".join(filter(None, [dataset, checkpoint, stamp]))
    return ctx.saves_dir / "eval" / f"{Path(model.rstrip('/')).name}-{dataset}-{stamp}"


# ---------------------------------------------------------------------------- tables


def _num(value: Any, signed: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def metric_rows(results: dict[str, Any]) -> list[list[str]]:
    """(metric, base, adapter, delta); a model evaluated alone fills the base column."""
    rows = []
    for name, base, main, delta in metrics_table(results):
        if base is None:  # no adapter: the model's own scores are the base
            base, main = main, None
        rows.append([name, _num(base), _num(main), _num(delta, signed=True)])
    return rows


def sample_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Every sample, those where the adapter lost most against the base first (ROUGE-L change)."""
    from core.metrics import SAMPLE_SCORE

    out = []
    for row in rows_by_change(rows):
        with_base = "base_predict" in row
        out.append([
            _num(row.get("score_change"), signed=True), row["prompt"], row["label"],
            row["base_predict"] if with_base else row["predict"], row["predict"] if with_base else "",
            _num((row["base_scores"] if with_base else row["scores"])[SAMPLE_SCORE]),
            _num(row["scores"][SAMPLE_SCORE]) if with_base else "",
        ])
    return out


def result_tables(folder: Path, lang: str):
    """(metrics table, samples table) of a saved evaluation, with headers in the session's language."""
    import gradio as gr

    saved = read_results(folder)
    if saved is None:
        return gr.skip(), gr.skip()
    return tables_of(saved, lang)


def tables_of(saved: PredictResult, lang: str, **settings: Any):
    """The two tables of saved results; `settings` go to both (the Runs tab shows them: visible)."""
    import gradio as gr

    return (gr.Dataframe(value=metric_rows(saved.results), headers=headers(lang, METRIC_COLUMNS), **settings),
            gr.Dataframe(value=sample_rows(saved.rows), headers=headers(lang, SAMPLE_COLUMNS), **settings))


def newest_result_tables(run_dir: Optional[Path], lang: str):
    """The Runs tab's tables of a run's newest saved evaluation, as the Evaluate tab drew them;
    hidden for a run without one (or no run)."""
    import gradio as gr

    for folder in eval_folders(run_dir) if run_dir is not None else []:
        saved = read_results(folder)
        if saved is not None:
            return tables_of(saved, lang, visible=True)
    return gr.Dataframe(value=[], visible=False), gr.Dataframe(value=[], visible=False)


def saved_evaluations(run_dir: Path, lang: str) -> str:
    """Markdown of a run's saved evaluations (newest first) for the Runs tab's details."""
    lines = []
    for folder in eval_folders(run_dir):
        saved = read_results(folder)
        if saved is None:
            continue
        r = saved.results
        score = lambda key: _num(r.get(key))  # noqa: E731
        if r.get("base_predict_rouge-l") is not None:
            text = t(lang, "evaluate.saved_line", dataset=r.get("eval_dataset", "?"), samples=r.get("predict_samples", "?"),
                     base=score("base_predict_rouge-l"), adapter=score("predict_rouge-l"),
                     delta=_num(r.get("delta_rouge-l"), signed=True), bleu=score("predict_bleu-4"))
        else:
            text = t(lang, "evaluate.saved_line_model", dataset=r.get("eval_dataset", "?"),
                     samples=r.get("predict_samples", "?"), score=score("predict_rouge-l"))
        lines.append(f"- {text} (`{display_path(folder)}`)")
    return f"**{t(lang, 'evaluate.saved')}**\n\n" + "\n".join(lines) if lines else ""


# ---------------------------------------------------------------------------- handlers


def refresh_choices(ctx: AppContext, adapter: Optional[str], dataset: Optional[str]):
    """(adapter picker, model picker, dataset picker) with what other tabs made meanwhile."""
    import gradio as gr

    names = choices.dataset_names(ctx, "sft")
    return (gr.Dropdown(choices=[NONE, *choices.finished_adapters(ctx)], value=adapter),
            gr.Dropdown(choices=choices.model_choices(ctx)),
            gr.Dropdown(choices=names, value=dataset if dataset in names else (names[0] if names else None)))


def on_adapter(model: Optional[str], adapter: Optional[str]):
    """A run was picked: its base model."""
    import gradio as gr

    if not adapter or adapter == NONE:
        return gr.skip()
    return choices.proposal(model, adapter)["model"] or gr.skip()


def evaluate_argv(ctx: AppContext, model: str, adapter: Optional[str], dataset: str, max_samples: Any,
                  max_new_tokens: Any, output_dir: Path) -> list[str]:
    """The subprocess: `launch.py train --do_predict ...` into output_dir."""
    template = None if adapter else choices.template_for_model(model)  # a run's adapter: its run.yaml's
    return [sys.executable, str(ROOT / "launch.py"), *predict_argv(
        model, dataset, str(output_dir), adapter=adapter, template=template,
        max_samples=_count(max_samples, "max_samples"), max_new_tokens=_count(max_new_tokens, "max_new_tokens"),
        dataset_dir=str(ctx.dataset_dir))]


def _count(value: Any, name: str) -> Optional[int]:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"--{name} must be a whole number, got '{value}'") from None
    if not number.is_integer() or number < 1:
        raise UserError(f"--{name} must be a whole number of at least 1, got {value}")
    return int(number)


def evaluate(job: EvalJob, ctx: AppContext, model: Optional[str], adapter: Optional[str], dataset: Optional[str],
             max_samples: Any, max_new_tokens: Any, lang: str) -> Iterator[tuple[Any, Any, Any, Any]]:
    """Run predict: yields (progress bar, status, metrics table, samples table)."""
    import gradio as gr

    adapter = None if adapter in (None, "", NONE) else str(adapter).strip()
    try:
        if not model or not dataset:
            raise UserError(t(lang, "evaluate.pick"))
        output_dir = output_dir_for(ctx, str(model).strip(), adapter, dataset)
        argv = evaluate_argv(ctx, str(model).strip(), adapter, dataset, max_samples, max_new_tokens, output_dir)
    except UserError as err:
        gr.Warning(str(err))
        yield gr.skip(), str(err), gr.skip(), gr.skip()
        return
    yield progress_html(0.0, t(lang, "evaluate.running")), t(lang, "evaluate.running"), gr.skip(), gr.skip()
    code, log = None, []
    try:
        for fraction, message, log, code in job.run(argv):
            state = "running" if code is None else ("done" if code == 0 else "failed")
            yield progress_html(fraction if state != "done" else 1.0, message, state), gr.skip(), gr.skip(), gr.skip()
    except UserError:
        gr.Warning(t(lang, "evaluate.busy"))
        yield gr.skip(), t(lang, "evaluate.busy"), gr.skip(), gr.skip()
        return
    if code != 0:
        errors = [line for line in log if line.startswith(("error:", "[tuneforge] error:"))]
        error = errors[-1].split("error:", 1)[1].strip() if errors else (log[-1] if log else f"exit code {code}")
        gr.Warning(error)
        yield progress_html(1.0, error, "failed"), t(lang, "evaluate.failed", error=error), gr.skip(), gr.skip()
        return
    metrics, samples = result_tables(output_dir, lang)
    yield gr.skip(), t(lang, "evaluate.done", path=display_path(output_dir)), metrics, samples
