#!/usr/bin/env python3
"""Run ONE training command under /usr/bin/time -v and measure it; or aggregate several runs.

  measure.py run BENCH_DIR OUTPUT_DIR -- CMD [ARGS...]
      BENCH_DIR   where the measurement files go (time.txt, train.log, metrics.json)
      OUTPUT_DIR  the trainer's output_dir (watched for trainer_log.jsonl, read at the end)
  measure.py summarize RUN_BENCH_DIR [RUN_BENCH_DIR ...] > summary.json

Only the standard library is used, so any python3 can run it (it need not be the trainer's venv):
tests/bench/train_speed.py imports it, tests/bench/llamafactory/run.sh runs it as a script.

Measured per run (metrics.json):
  wall_s, peak_rss_mb          from /usr/bin/time -v (wall clock, maximum resident set size)
  train_runtime, train_samples_per_second, train_steps_per_second, train_tokens_per_second,
  num_input_tokens_seen        from OUTPUT_DIR/train_results.json / trainer_state.json
  loss_first, loss_last        first / last `loss` entries in OUTPUT_DIR/trainer_log.jsonl
  ttfs_first_log_s             process start -> first line appears in trainer_log.jsonl
                               (= first logged step, step `logging_steps`; polled every 20 ms)
  ttfs_first_step_s            process start -> progress bar first shows step 1 (tqdm " 1/N")
  t_train_begin_s              process start -> "***** Running training *****" is printed
Every line the command prints (stdout+stderr, tqdm's \\r updates split into lines) is written to
train.log prefixed with seconds since process start.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time


def parse_time_v(path):
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("Elapsed (wall clock) time"):
                val = line.rsplit(": ", 1)[1]
                parts = [float(x) for x in val.split(":")]
                secs = 0.0
                for p in parts:
                    secs = secs * 60 + p
                out["wall_s"] = secs
            elif line.startswith("Maximum resident set size"):
                out["peak_rss_mb"] = int(line.rsplit(": ", 1)[1]) / 1024.0
            elif line.startswith("User time"):
                out["user_s"] = float(line.rsplit(": ", 1)[1])
            elif line.startswith("System time"):
                out["sys_s"] = float(line.rsplit(": ", 1)[1])
            elif line.startswith("Percent of CPU"):
                out["cpu_percent"] = int(line.rsplit(": ", 1)[1].rstrip("%") or 0)
            elif line.startswith("Exit status"):
                out["exit_status"] = int(line.rsplit(": ", 1)[1])
    return out


def watch_log(path, t0, stop, seen):
    """Record the wall time (relative to t0) at which each new line of trainer_log.jsonl appears."""
    n = 0
    while not stop.is_set():
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        now = time.time() - t0
        while n < len(lines):
            seen.append(now)
            n += 1
        stop.wait(0.02)


def cmd_run(bench_dir, output_dir, cmd):
    os.makedirs(bench_dir, exist_ok=True)
    log_path = os.path.join(output_dir, "trainer_log.jsonl")
    time_path = os.path.join(bench_dir, "time.txt")
    stop, seen = threading.Event(), []
    marks = {}
    t0 = time.time()
    watcher = threading.Thread(target=watch_log, args=(log_path, t0, stop, seen), daemon=True)
    watcher.start()
    proc = subprocess.Popen(
        ["/usr/bin/time", "-v", "-o", time_path] + cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    step1 = re.compile(r"\b1/\d+ \[")
    with open(os.path.join(bench_dir, "train.log"), "w", encoding="utf-8") as out:
        # A segment is stamped with the time its FIRST byte arrived: tqdm writes "\r<status>" and
        # only terminates it with the next update's "\r", so stamping at completion would lag.
        buf, buf_t = b"", None

        def emit(raw, t):
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                return
            out.write(f"[{t:9.3f}] {line}\n")
            if "t_train_begin_s" not in marks and "***** Running training *****" in line:
                marks["t_train_begin_s"] = t
            if "ttfs_first_step_s" not in marks and step1.search(line):
                marks["ttfs_first_step_s"] = t

        while True:
            chunk = proc.stdout.read1(65536)
            now = time.time() - t0
            if not chunk:
                break
            if not buf:
                buf_t = now
            buf += chunk
            parts = re.split(rb"[\r\n]", buf)
            buf = parts.pop()
            for i, raw in enumerate(parts):
                emit(raw, buf_t if i == 0 else now)
            if buf and parts:
                buf_t = now
        if buf:
            emit(buf, buf_t)
    rc = proc.wait()
    stop.set()
    watcher.join()

    m = {"returncode": rc, "command": cmd}
    m.update(parse_time_v(time_path))
    m.update(marks)
    if seen:
        m["ttfs_first_log_s"] = seen[0]
    res_path = os.path.join(output_dir, "train_results.json")
    if os.path.exists(res_path):
        with open(res_path, encoding="utf-8") as f:
            res = json.load(f)
        for k in ("train_runtime", "train_samples_per_second", "train_steps_per_second",
                  "train_tokens_per_second", "train_loss", "total_flos", "epoch"):
            if k in res:
                m[k] = res[k]
    state_path = os.path.join(output_dir, "trainer_state.json")
    if os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as f:
            st = json.load(f)
        m["num_input_tokens_seen"] = st.get("num_input_tokens_seen")
        m["global_step"] = st.get("global_step")
        if m.get("num_input_tokens_seen") and m.get("train_runtime") and "train_tokens_per_second" not in m:
            # same formula as HF speed_metrics: non-padding input tokens / train_runtime
            m["train_tokens_per_second"] = round(m["num_input_tokens_seen"] / m["train_runtime"], 2)
    if os.path.exists(log_path):
        with open(log_path, encoding="utf-8") as f:
            logs = [json.loads(x) for x in f if x.strip()]
        # The step is `current_steps` in LLaMA-Factory's log, `step` in TuneForge's.
        losses = [(x.get("current_steps", x.get("step")), x["loss"]) for x in logs if "loss" in x]
        if losses:
            m["loss_first_step"], m["loss_first"] = losses[0]
            m["loss_last_step"], m["loss_last"] = losses[-1]
        m["log_lines"] = len(logs)
        m["log_line_times_s"] = seen
    with open(os.path.join(bench_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in m.items() if k not in ("command", "log_line_times_s")}, indent=2))
    return rc


KEYS = [
    "wall_s", "peak_rss_mb", "train_runtime", "train_samples_per_second", "train_steps_per_second",
    "train_tokens_per_second", "num_input_tokens_seen", "ttfs_first_log_s", "ttfs_first_step_s",
    "t_train_begin_s", "loss_first", "loss_last", "train_loss", "user_s", "sys_s", "cpu_percent",
]


def cmd_summarize(dirs):
    runs = []
    for d in dirs:
        with open(os.path.join(d, "metrics.json"), encoding="utf-8") as f:
            runs.append(json.load(f))
    summary = {"runs": len(runs), "metrics": {}}
    for k in KEYS:
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            summary["metrics"][k] = {
                "min": min(vals), "median": statistics.median(vals), "max": max(vals), "values": vals
            }
    json.dump(summary, sys.stdout, indent=2)
    print()


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "run" and sys.argv[4] == "--":
        sys.exit(cmd_run(sys.argv[2], sys.argv[3], sys.argv[5:]))
    if len(sys.argv) >= 3 and sys.argv[1] == "summarize":
        cmd_summarize(sys.argv[2:])
        return
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
