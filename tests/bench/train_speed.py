"""Training speed, side by side with LLaMA-Factory 0.9.5 (optional), on the benchmark assets.

    python -m tests.bench.train_speed [--model toy|smollm2] [--runs 3] [--assets DIR] [--quick] [--no-lf] [--equivalence]
    python -m tests.bench.train_speed --runs 0 --equivalence     the equivalence check alone

--model toy (the default) trains the assets' tiny LLaMA (8k vocabulary); --model smollm2 trains
SmolLM2-135M-Instruct (data/models, built by `launch.py get-model smollm2-135m-instruct` when
missing) on the same data, each tool with its own template for it (TuneForge `auto`, the model's
own chat template; LLaMA-Factory `smollm2`), and measures this machine's fp32 matmul peak in
the same sitting to report the model FLOPs utilisation.

Builds the assets with tests/bench/assets.py (once; reused while MANIFEST.json exists),
then for each of --runs rounds, interleaved so that both tools see the same machine load:
  LLaMA-Factory   tests/bench/llamafactory/run.sh (when its venv exists: $VENV, default /tmp/vlf;
                  README.md says how to make it)
  TuneForge cold  `launch.py train` with a fresh datasets cache (tokenizes, as LLaMA-Factory does)
  TuneForge warm  the same again on the cold run's cache (tokenization read from the cache)
Every process is measured from outside by tests/bench/measure.py (wall time, peak RSS,
process start to the first logged step). The settings are read from tests/bench/llamafactory/sft.yaml,
so both tools train the same model, data and hyper-parameters; each keeps its own other defaults.

--equivalence additionally trains one full epoch with length-grouped batches (our default) and
with random batches (two seeds, for the noise band) at a learning rate that makes the loss move,
and compares samples, tokens and loss (tests/bench/results/equivalence-<time>.json).

Prints every figure (median of the runs) and the ratios; writes the JSON summary to
tests/bench/results/train_speed-<time>.json (and train_speed-latest.json).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

REPO = Path(__file__).resolve().parents[2]
LLAMAFACTORY = REPO / "tests" / "bench" / "llamafactory"  # its config (the benchmark's settings) and run script
RESULTS = REPO / "tests" / "bench" / "results"
DEFAULT_ASSETS = Path(os.environ.get("TUNEFORGE_BENCH_ASSETS", "/tmp/tuneforge-bench/assets"))

# sft.yaml keys that TuneForge takes under the same name and meaning.
SHARED_KEYS = (
    "stage", "finetuning_type", "lora_target", "lora_rank", "lora_alpha", "lora_dropout", "dataset", "template",
    "cutoff_len", "logging_steps", "save_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "learning_rate", "lr_scheduler_type", "num_train_epochs", "max_steps", "seed",
)
# Figures compared; "lower" says which direction is better.
FIGURES = (
    ("wall_s", "process wall time (s)", "lower"),
    ("ttfs_first_log_s", "process start -> first logged step (s)", "lower"),
    ("peak_rss_mb", "peak RSS (MB)", "lower"),
    ("train_runtime", "train_runtime (s)", "lower"),
    ("tokens_per_s", "real tokens / s (train_runtime)", "higher"),
    ("tokens_per_wall_s", "real tokens / s (whole process)", "higher"),
    ("num_input_tokens_seen", "real (non-pad) tokens trained", None),
    ("loss_first", "first logged loss", None),
    ("loss_last", "last logged loss", None),
)
GOALS = {"wall_s": 0.5, "ttfs_first_log_s": 0.5, "peak_rss_mb": 1.0}
# The real-model goals (issue #16): fp32 logits over a 49k vocabulary are what TuneForge need never hold.
GOALS_SMOLLM2 = {"wall_s": 0.5, "ttfs_first_log_s": 0.5, "peak_rss_mb": 0.6}


@dataclass(frozen=True)
class BenchModel:
    """The model a benchmark trains, and the template each tool renders its chat format with."""

    name: str
    folder: Callable[[Path], Path]  # assets folder -> model folder
    tuneforge_template: str
    llamafactory_template: str
    goals: dict[str, float]


MODELS = {
    "toy": BenchModel("toy", lambda assets: assets / "tiny-llama", "llama2", "llama2", GOALS),
    "smollm2": BenchModel("smollm2", lambda assets: REPO / "data" / "models" / "SmolLM2-135M-Instruct",
                          "auto", "smollm2", GOALS_SMOLLM2),
}
CACHE_LINE = "[tuneforge] tokenized samples from the cache"


# ---------------------------------------------------------------------------- setup


def build_assets(assets: Path) -> Path:
    from tests.bench.assets import build

    if (assets / "MANIFEST.json").is_file() and (assets / "tiny-llama" / "model.safetensors").is_file():
        return assets
    print(f"building the benchmark assets in {assets} ...", flush=True)
    build(assets)
    return assets


def lf_settings() -> dict[str, Any]:
    import yaml

    with open(LLAMAFACTORY / "sft.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def build_model(model: BenchModel, assets: Path) -> Path:
    folder = model.folder(assets)
    if model.name == "smollm2" and not (folder / "config.json").is_file():
        from core.get_model import build_model as get_model

        print("building SmolLM2-135M-Instruct (launch.py get-model) ...", flush=True)
        get_model("smollm2-135m-instruct", models_dir=str(folder.parent))
    return folder


def tuneforge_argv(assets: Path, overrides: dict[str, Any], model: BenchModel = MODELS["toy"]) -> list[str]:
    """`launch.py train` flags with sft.yaml's values for every shared setting."""
    lf = {**lf_settings(), **overrides, "template": model.tuneforge_template}
    argv = ["--do_train", "--model_name_or_path", str(model.folder(assets)), "--dataset_dir", str(assets / "data")]
    for key in SHARED_KEYS:
        argv += [f"--{key}", str(lf[key])]
    if lf.get("bf16") or lf.get("fp16"):
        argv += ["--bf16" if lf.get("bf16") else "--fp16", "true"]
    return argv


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# ---------------------------------------------------------------------------- one run each


def finish_metrics(metrics: dict[str, Any], log_text: str = "") -> dict[str, Any]:
    seen, runtime, wall = metrics.get("num_input_tokens_seen"), metrics.get("train_runtime"), metrics.get("wall_s")
    if seen and runtime:
        metrics["tokens_per_s"] = seen / runtime
    if seen and wall:
        metrics["tokens_per_wall_s"] = seen / wall
    if log_text:
        metrics["tokenization_from_cache"] = CACHE_LINE in log_text
    return metrics


def run_tuneforge(out: Path, argv: list[str], cache: Path) -> dict[str, Any]:
    from tests.bench import measure

    bench, run_out = out.with_suffix(".bench"), out
    shutil.rmtree(bench, ignore_errors=True)
    shutil.rmtree(run_out, ignore_errors=True)
    cmd = [sys.executable, str(REPO / "launch.py"), "train", *argv, "--output_dir", str(run_out)]
    load_before = os.getloadavg()[0]
    with environ(HF_DATASETS_CACHE=str(cache), HF_HOME=str(out.parent / "hf-home"), HF_HUB_OFFLINE="1",
                 HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1"), \
            contextlib.redirect_stdout(io.StringIO()):
        rc = measure.cmd_run(str(bench), str(run_out), cmd)
    metrics = json.loads((bench / "metrics.json").read_text(encoding="utf-8"))
    metrics["load_before"], metrics["load_after"] = load_before, os.getloadavg()[0]
    if rc != 0:
        tail = (bench / "train.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        sys.exit(f"error: TuneForge run failed (exit {rc}); {bench / 'train.log'}:\n{tail}")
    return finish_metrics(metrics, (bench / "train.log").read_text(encoding="utf-8", errors="replace"))


def run_llamafactory(venv: Path, assets: Path, out: Path, overrides: dict[str, Any],
                     model: BenchModel = MODELS["toy"]) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    extra = [f"{k}={v}" for k, v in {**overrides, "template": model.llamafactory_template}.items()]
    load_before = os.getloadavg()[0]
    proc = subprocess.run(["bash", str(LLAMAFACTORY / "run.sh"), str(assets), str(out), "1", *extra],
                          env={**os.environ, "VENV": str(venv), "MODEL": str(model.folder(assets))},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: LLaMA-Factory run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    metrics = json.loads((out / "run-1.bench" / "metrics.json").read_text(encoding="utf-8"))
    metrics["load_before"], metrics["load_after"] = load_before, os.getloadavg()[0]
    return finish_metrics(metrics)


# ---------------------------------------------------------------------------- summary


def median_of(runs: list[dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def summarize(tools: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {tool: {key: median_of(runs, key) for key, _, _ in FIGURES} for tool, runs in tools.items()}
    ratios: dict[str, dict[str, Optional[float]]] = {}
    if tools.get("llamafactory"):
        for tool in tools:
            if tool == "llamafactory":
                continue
            ratios[tool] = {}
            for key, _, _ in FIGURES:
                ours, theirs = medians[tool][key], medians["llamafactory"][key]
                ratios[tool][key] = ours / theirs if ours is not None and theirs else None
    return {"medians": medians, "ratios": ratios}


def fmt(value: Optional[float]) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def print_table(tools: dict[str, list[dict[str, Any]]], summary: dict[str, Any], goals: dict[str, float] = GOALS) -> None:
    names = list(tools)
    head = f"{'figure':42}" + "".join(f"{n:>16}" for n in names)
    has_lf = "llamafactory" in tools
    ours = [n for n in names if n != "llamafactory"]
    if has_lf:
        head += "".join(f"{'ratio ' + n.split('-')[-1]:>14}" for n in ours)
    print(head)
    print("-" * len(head))
    for key, label, _ in FIGURES:
        line = f"{label:42}" + "".join(f"{fmt(summary['medians'][n][key]):>16}" for n in names)
        if has_lf:
            for n in ours:
                ratio = summary["ratios"][n][key]
                goal = goals.get(key)
                mark = "" if goal is None or ratio is None else (" ok" if ratio <= goal else " NO")
                line += f"{(fmt(ratio) + mark) if ratio is not None else '–':>14}"
        print(line)
    for n in ours:
        cached = [r.get("tokenization_from_cache") for r in tools[n]]
        print(f"{n}: tokenization taken from the cache in {sum(bool(c) for c in cached)} of {len(cached)} runs")
    if has_lf:
        print("goals (ratio to LLaMA-Factory): " + ", ".join(f"{k} <= {v}" for k, v in goals.items()))


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    for package in ("torch", "transformers", "peft", "datasets", "accelerate"):
        try:
            from importlib.metadata import version

            info[package] = version(package)
        except Exception:  # noqa: BLE001 - a missing package is just not recorded
            info[package] = None
    return info


# ---------------------------------------------------------------------------- model FLOPs utilisation


MATMUL_PEAK_CODE = """
import json, time, torch
def peak(dtype):
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(10):
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * 2048 ** 3 / (time.perf_counter() - start))
    return best
print(json.dumps({"flops": peak(torch.float32), "flops_bf16": peak(torch.bfloat16), "threads": torch.get_num_threads()}))
"""


def matmul_peak() -> dict[str, Any]:
    """This machine's fp32 (and bf16) matmul peak now: the best of 10 timings of five 2048x2048
    matmuls, in a fresh process with torch's default threads (what either trainer gets). TuneForge
    multiplies in bf16 where the CPU has bf16 instructions, so its MFU is also given against that peak."""
    proc = subprocess.run([sys.executable, "-c", MATMUL_PEAK_CODE], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def model_flops_per_token(model_dir: Path) -> float:
    """Model FLOPs a LoRA step spends per real token: the forward pass (2 per weight, every
    layer and the logits over the whole vocabulary) and the backward pass to the inputs (2 more;
    frozen weights take no weight gradients, LoRA's own are negligible). What a tool skips or
    recomputes (logits of prompt tokens, checkpointing) is not counted: MFU measures the model's
    work done per second, whatever each tool's way of doing it."""
    from core.memory import model_shape

    shape = model_shape(str(model_dir))
    head = shape.hidden * shape.vocab  # the lm_head's weights (counted once even when tied)
    return 4.0 * (shape.linear_params() + head)


def model_flops_utilisation(model_dir: Path, medians: dict[str, dict[str, Any]], peak: Optional[dict[str, Any]]) -> dict[str, Any]:
    if not peak:
        return {}
    per_token = model_flops_per_token(model_dir)
    out: dict[str, Any] = {"matmul_peak_gflops": peak["flops"] / 1e9, "threads": peak["threads"],
                           "model_gflops_per_token": per_token / 1e9}
    if peak.get("flops_bf16"):
        out["matmul_peak_bf16_gflops"] = peak["flops_bf16"] / 1e9
    for tool, figures in medians.items():
        tokens_per_s = figures.get("tokens_per_s")
        if tokens_per_s:
            out[tool] = tokens_per_s * per_token / peak["flops"]
            if peak.get("flops_bf16"):
                out[f"{tool} (bf16 peak)"] = tokens_per_s * per_token / peak["flops_bf16"]
    return out


def print_mfu(mfu: dict[str, Any]) -> None:
    if not mfu:
        return
    tools = {k: v for k, v in mfu.items()
             if k not in ("matmul_peak_gflops", "matmul_peak_bf16_gflops", "threads", "model_gflops_per_token")}
    bf16 = f", bf16 {mfu['matmul_peak_bf16_gflops']:.1f}" if mfu.get("matmul_peak_bf16_gflops") else ""
    print(f"fp32 matmul peak measured now: {mfu['matmul_peak_gflops']:.1f} GFLOP/s{bf16} ({mfu['threads']} threads); "
          f"model work {mfu['model_gflops_per_token']:.3f} GFLOP per real token; MFU "
          + ", ".join(f"{tool} {100 * value:.1f} %" for tool, value in tools.items()))


# ---------------------------------------------------------------------------- equivalence


# The benchmark's lr (5e-5) moves the loss by 0.04 in an epoch: too little to tell curves apart.
EQUIVALENCE_LR = 2e-3


def equivalence(assets: Path, out: Path) -> dict[str, Any]:
    """One full epoch at EQUIVALENCE_LR: length-grouped vs random batches (two seeds give the noise band)."""
    variants = {
        "group_by_length-seed42": {"train_sampling_strategy": "group_by_length", "seed": 42},
        "random-seed42": {"train_sampling_strategy": "random", "seed": 42},
        "random-seed43": {"train_sampling_strategy": "random", "seed": 43},
    }
    cache = out / "cache"
    report: dict[str, Any] = {}
    for name, extra in variants.items():
        argv = tuneforge_argv(assets, {"max_steps": -1, "num_train_epochs": 1.0, "seed": extra["seed"],
                                       "learning_rate": EQUIVALENCE_LR})
        argv += ["--train_sampling_strategy", extra["train_sampling_strategy"], "--logging_steps", "10"]
        print(f"equivalence: one epoch, {name} ...", flush=True)
        metrics = run_tuneforge(out / name, argv, cache)
        from core import rundir

        rows = [r for r in rundir.read_log_rows(out / name) if r.get("loss") is not None]
        losses = [r["loss"] for r in rows]
        tail = losses[-5:]
        report[name] = {
            "steps": rows[-1]["step"] if rows else None,
            "real_tokens": metrics.get("num_input_tokens_seen"),
            "train_loss_epoch_mean": metrics.get("train_loss"),
            "loss_last_5_logs_mean": statistics.mean(tail) if tail else None,
            "train_runtime": metrics.get("train_runtime"),
            "wall_s": metrics.get("wall_s"),
            "loss_curve": [(r["step"], r["loss"]) for r in rows],
        }
    report["supervised_tokens_per_epoch"] = supervised_tokens_per_epoch(cache)
    return report


def supervised_tokens_per_epoch(cache: Path) -> dict[str, Any]:
    """Both samplers visit every sample once an epoch: check it on the tokenized set itself."""
    import datasets
    import torch

    from core.train.sampler import ShuffledLengthGroupedSampler

    files = sorted((cache / "tuneforge").glob("tuneforge-*.arrow"))
    if not files:
        return {}
    ds = datasets.Dataset.from_file(str(files[0]))
    lengths = list(ds["length"])
    supervised = [sum(1 for x in labels[1:] if x != -100) for labels in ds["labels"]]
    grouped = list(ShuffledLengthGroupedSampler(8, lengths=lengths, generator=torch.Generator().manual_seed(42)))
    shuffled = torch.randperm(len(ds), generator=torch.Generator().manual_seed(42)).tolist()
    return {
        "samples": len(ds),
        "grouped_is_a_permutation": sorted(grouped) == list(range(len(ds))),
        "random_is_a_permutation": sorted(shuffled) == list(range(len(ds))),
        "supervised_tokens_grouped_epoch": sum(supervised[i] for i in grouped),
        "supervised_tokens_random_epoch": sum(supervised[i] for i in shuffled),
        "real_tokens_epoch": sum(lengths),
    }


# ---------------------------------------------------------------------------- main


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.train_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="toy", help="the model trained (default toy)")
    parser.add_argument("--runs", type=int, default=3, help="rounds (each: LLaMA-Factory, TuneForge cold, warm)")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm TuneForge run (the same data again)")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help=f"benchmark assets (default {DEFAULT_ASSETS})")
    parser.add_argument("--work", type=Path, default=None, help="run folders (default tests/bench/results/work)")
    parser.add_argument("--quick", action="store_true", help="10 steps, 1 round: checks that everything runs")
    parser.add_argument("--steps", type=int, default=None, help="train this many steps instead of sft.yaml's 60")
    parser.add_argument("--no-lf", action="store_true", help="skip LLaMA-Factory even if its venv exists")
    parser.add_argument("--equivalence", action="store_true", help="also compare one epoch grouped vs random batches")
    args = parser.parse_args(argv)

    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    assets = build_assets(args.assets.resolve())
    model = MODELS[args.model]
    build_model(model, assets)
    work = (args.work or RESULTS / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    runs = 1 if args.quick else args.runs
    overrides: dict[str, Any] = {"max_steps": 10} if args.quick else {}
    if args.steps:
        overrides["max_steps"] = args.steps
    venv = Path(os.environ.get("VENV", "/tmp/vlf"))
    with_lf = not args.no_lf and (venv / "bin" / "llamafactory-cli").exists()
    if not with_lf:
        print(f"LLaMA-Factory: {'skipped (--no-lf)' if args.no_lf else f'no venv at {venv} (set VENV; README.md says how to make one)'}; TuneForge only")
    argv_tf = tuneforge_argv(assets, overrides, model)

    tools: dict[str, list[dict[str, Any]]] = ({"llamafactory": []} if with_lf else {})
    tools.update({"tuneforge-cold": []} if args.no_warm else {"tuneforge-cold": [], "tuneforge-warm": []})
    started = time.time()
    peak = matmul_peak() if runs else None
    for i in range(1, runs + 1):
        if with_lf:
            print(f"round {i}/{runs}: LLaMA-Factory ...", flush=True)
            tools["llamafactory"].append(run_llamafactory(venv, assets, work / "lf" / f"round-{i}", overrides, model))
        cache = work / "tf" / f"cache-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        print(f"round {i}/{runs}: TuneForge (fresh cache) ...", flush=True)
        tools["tuneforge-cold"].append(run_tuneforge(work / "tf" / f"cold-{i}", argv_tf, cache))
        if not args.no_warm:
            print(f"round {i}/{runs}: TuneForge (same data again: cached tokenization) ...", flush=True)
            tools["tuneforge-warm"].append(run_tuneforge(work / "tf" / f"warm-{i}", argv_tf, cache))

    if runs == 0:  # --runs 0 --equivalence: the equivalence check alone
        return write_equivalence(equivalence(assets, work / "equivalence")) if args.equivalence else 0
    summary = summarize(tools)
    summary["mfu"] = model_flops_utilisation(model.folder(assets), summary["medians"], peak)
    print()
    print(f"median of {runs} run(s); load average 1 min before/after each run: "
          + ", ".join(f"{n} {statistics.median([r['load_before'] for r in rs]):.2f}" for n, rs in tools.items()))
    print_table(tools, summary, model.goals)
    print_mfu(summary["mfu"])
    result = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "duration_s": time.time() - started,
        "quick": args.quick,
        "model": args.model,
        "runs": runs,
        "settings": {"llamafactory_yaml": lf_settings(), "overrides": overrides, "tuneforge_argv": argv_tf},
        "machine": machine(),
        "tools": {n: [{k: v for k, v in r.items() if k != "command"} for r in rs] for n, rs in tools.items()},
        **summary,
    }
    if args.equivalence:
        result["equivalence"] = equivalence(assets, work / "equivalence")
        write_equivalence(result["equivalence"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = "" if args.model == "toy" else f"-{args.model}"
    path = RESULTS / f"train_speed{tag}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    shutil.copyfile(path, RESULTS / f"train_speed{tag}-latest.json")
    print(f"\nsummary: {path}")
    return 0


def write_equivalence(report: dict[str, Any]) -> int:
    print_equivalence(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"equivalence-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"equivalence: {path}")
    return 0


def print_equivalence(report: dict[str, Any]) -> None:
    print("\none epoch, same settings: batches grouped by length vs random")
    print(f"{'variant':26}{'steps':>7}{'real tokens':>13}{'epoch mean loss':>17}{'last 5 logs':>13}{'train s':>9}")
    for name, r in report.items():
        if name == "supervised_tokens_per_epoch":
            continue
        print(f"{name:26}{r['steps'] or 0:>7}{r['real_tokens'] or 0:>13,}{r['train_loss_epoch_mean'] or 0:>17.5f}"
              f"{r['loss_last_5_logs_mean'] or 0:>13.5f}{r['train_runtime'] or 0:>9.1f}")
    print("supervised tokens per epoch:", report.get("supervised_tokens_per_epoch"))


if __name__ == "__main__":
    sys.exit(main())
