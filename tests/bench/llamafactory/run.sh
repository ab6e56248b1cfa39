#!/usr/bin/env bash
# Benchmark LLaMA-Factory 0.9.5 LoRA SFT on the tiny assets (CPU).
#
#   tests/bench/llamafactory/run.sh ASSETS_DIR OUT_DIR [RUNS] [key=value ...]
#
#   ASSETS_DIR  folder made by `python -m tests.bench.assets` (contains tiny-llama/ and data/)
#   OUT_DIR     e.g. /tmp/bench/out-lf; run i uses OUT_DIR/run-i as LLaMA-Factory's output_dir
#               and OUT_DIR/run-i.bench/ for the measurements (time.txt, train.log, metrics.json)
#   RUNS        number of repetitions (default 3); OUT_DIR/summary.json gets min/median/max
#   key=value   extra LLaMA-Factory overrides, e.g. plot_loss=true
#
# Environment: VENV (default /tmp/vlf, made by setup_venv.sh beside this file); MODEL (default
# ASSETS_DIR/tiny-llama), the model folder to train, e.g. data/models/SmolLM2-135M-Instruct.
# Everything the run writes stays under OUT_DIR: HF_HOME, the datasets cache (fresh per run, so
# every run re-reads and re-tokenises the JSON), matplotlib's config dir.  Fully offline.
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,15p' "$0"
    exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASSETS="$(cd "$1" && pwd)"
mkdir -p "$2"
OUT="$(cd "$2" && pwd)"
shift 2
RUNS=3
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then RUNS="$1"; shift; fi
VENV="${VENV:-/tmp/vlf}"

MODEL="${MODEL:-$ASSETS/tiny-llama}"
test -f "$MODEL/model.safetensors" || { echo "no model.safetensors in $MODEL" >&2; exit 1; }
test -f "$ASSETS/data/dataset_info.json" || { echo "no dataset_info.json in $ASSETS/data" >&2; exit 1; }
test -x /usr/bin/time || { echo "/usr/bin/time missing: apt-get install -y time" >&2; exit 1; }

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HOME="$OUT/hf-home"
export MPLCONFIGDIR="$OUT/mplconfig"
export PYTHONUNBUFFERED=1
export PATH="$VENV/bin:$PATH"
mkdir -p "$HF_HOME" "$MPLCONFIGDIR"

dirs=()
for i in $(seq 1 "$RUNS"); do
    run_out="$OUT/run-$i"
    bench="$OUT/run-$i.bench"
    rm -rf "$run_out" "$bench" "$OUT/hf-datasets-cache"
    export HF_DATASETS_CACHE="$OUT/hf-datasets-cache"
    echo "=== run $i/$RUNS -> $run_out" >&2
    (cd "$OUT" && python3 "$HERE/../measure.py" run "$bench" "$run_out" -- \
        "$VENV/bin/llamafactory-cli" train "$HERE/sft.yaml" \
        model_name_or_path="$MODEL" dataset_dir="$ASSETS/data" output_dir="$run_out" "$@")
    dirs+=("$bench")
done
python3 "$HERE/../measure.py" summarize "${dirs[@]}" > "$OUT/summary.json"
echo "summary: $OUT/summary.json" >&2
