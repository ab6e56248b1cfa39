"""Downloads (webui/downloads.py): a run's adapter without its checkpoints and an exported
folder, zipped under saves/.downloads without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_the_adapter_zip_leaves_checkpoints_out_and_loads_no_torch(tmp_path):
    run = tmp_path / "saves" / "run1"
    (run / "checkpoint-3").mkdir(parents=True)
    (run / "adapter_config.json").write_text("{}")
    (run / "adapter_model.safetensors").write_bytes(b"x" * 10)
    (run / "checkpoint-3" / "optimizer.pt").write_bytes(b"x")
    code = ("import sys, json; from pathlib import Path; from webui.downloads import adapter_zip; "
            f"p = adapter_zip(Path({str(tmp_path / 'saves')!r}), {str(run)!r}); "
            "print(json.dumps([str(p), 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    path, torch_loaded = json.loads(out.strip().splitlines()[-1])
    assert not torch_loaded
    assert path.startswith(str(tmp_path / "saves" / ".downloads"))
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["run1/adapter_config.json", "run1/adapter_model.safetensors"]
