#!/usr/bin/env bash
# Build the LLaMA-Factory 0.9.5 benchmark venv (CPU only), as it was built for the recorded runs.
#
#   tests/bench/llamafactory/setup_venv.sh [VENV=/tmp/vlf]
#
# Two CPU-only work-arounds are applied (both only touch multimodal code paths that a text-only
# SFT run never uses; the resulting pip freeze is written to VENV/freeze.txt):
#  * torchvision: PyPI's Linux wheels are CUDA builds whose _C.so links libtorch_cuda.so, which the
#    CPU torch 2.13.0+cpu lacks ("operator torchvision::nms does not exist" on import, which
#    breaks `from transformers import PreTrainedModel`).  torchvision 0.29 additionally requires
#    torch>=2.14 and drags in the ~4 GB CUDA torch.  -> pinned to 0.28.0 for the resolve, then
#    uninstalled (transformers treats it as optional; LLaMA-Factory never imports it).
#  * torchaudio 2.11.1 (CUDA build) fails to load its C++ extension for the same reason, and
#    llamafactory/data/mm_plugin.py imports torchaudio unconditionally.  -> its two CUDA-linked
#    libraries are renamed to *.cuda-disabled; torchaudio then imports in pure-Python mode.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-/tmp/vlf}"

python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
# 1. the local CPU wheel first (pip's global constraint caps torch<=2.14.1; 2.13.0+cpu is on disk)
"$VENV/bin/pip" install torch==2.13.0
# 2. LLaMA-Factory with its own pins; keep torch at 2.13.0 (+cpu) while resolving
"$VENV/bin/pip" install -c "$HERE/constraints.txt" llamafactory==0.9.5
# 3. CPU work-arounds (see above)
"$VENV/bin/pip" uninstall -y torchvision
TA_LIB="$("$VENV/bin/python" -c 'import importlib.util,os;print(os.path.join(os.path.dirname(importlib.util.find_spec("torchaudio").origin),"lib"))')"
for f in _torchaudio.so libtorchaudio.so; do
    [ -f "$TA_LIB/$f" ] && mv "$TA_LIB/$f" "$TA_LIB/$f.cuda-disabled"
done
# 4. smoke test
HF_HUB_OFFLINE=1 MPLCONFIGDIR="$VENV/.mplconfig" "$VENV/bin/python" -c \
    "import torch, torchaudio, transformers, peft, llamafactory.train.tuner as t; print('ok torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
"$VENV/bin/pip" freeze > "$VENV/freeze.txt"
echo "venv ready: $VENV (pip freeze in $VENV/freeze.txt)"
