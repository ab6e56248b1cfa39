"""TuneForge's one entry point.

    python launch.py                      the web UI (same as `launch.py webui`)
    python launch.py train [RUN.yaml] [--flag value ...]
    accelerate launch launch.py train ... the trainer on 1..N processes or machines
    python launch.py chat | score | export ...
    python launch.py eval --task BENCHMARK ...   multiple-choice accuracy, base and adapter
    python launch.py data list | check | add | remove ...
    python launch.py demo-model           build the bundled demo model into data/models/demo
    python launch.py get-model NAME       build a real pretrained model offline (smollm2-135m-instruct)

Each command's module is imported only when that command runs, so the UI starts fast.
"""

from __future__ import annotations

import os
import sys

COMMANDS = ("webui", "train", "chat", "score", "export", "eval", "data", "demo-model", "get-model")


def _run(command: str, argv: list[str]) -> int:
    if command == "webui":
        from webui.app import main
    elif command == "train":
        if argv and argv[0] in ("-h", "--help"):
            from core.args import cli_help

            print(cli_help())
            return 0
        from core.train.run import main
    elif command == "chat":
        from core.chat import main
    elif command == "score":
        from core.score import main
    elif command == "export":
        from core.export import main
    elif command == "eval":
        from core.benchmark import main
    elif command == "data":
        from core.data.cli import main
    elif command == "demo-model":
        from core.demo_model import main
    elif command == "get-model":
        from core.get_model import main
    else:
        print(f"error: unknown command '{command}'; use one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return main(argv)


def main(argv: list[str]) -> int:
    # Models may come from the hub (core.model_source downloads a hub id; HF_HUB_OFFLINE=1 from the
    # user still keeps it offline). Datasets stay offline: the registry points at local files.
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not argv or argv[0].startswith("-"):
        return _run("webui", argv)
    return _run(argv[0], argv[1:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"]:
        from core.allocator import restart_on_tcmalloc

        restart_on_tcmalloc(sys.argv)  # returns where tcmalloc is missing, loaded or switched off
    sys.exit(main(sys.argv[1:]))
