"""`python -m webui.demo_build OUT DATA_DIR`: build the demo model, printing progress lines.

Run by the app in a subprocess so torch is never imported into the web server's process.
"""

from __future__ import annotations

import sys

from core.progress import print_progress


def main(argv: list[str]) -> int:
    from core.demo_model import build_demo_model
    from core.errors import UserError

    out_dir, data_dir = argv[0], argv[1]
    try:
        build_demo_model(out_dir=out_dir, data_dir=data_dir, progress=print_progress)
    except UserError as err:
        print(f"[tuneforge] error: {err}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
