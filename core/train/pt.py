"""Pretraining: next-token prediction on plain text.

The documents are joined with eos and cut into cutoff_len blocks (core/data/preprocess.py), so
every position is trained; the loop itself is the SFT loop.
"""

from __future__ import annotations

from core.args import TrainArgs
from core.train.callbacks import AbortSignal
from core.train.sft import train_causal_lm


def run_pt(args: TrainArgs, abort: AbortSignal) -> bool:
    return train_causal_lm(args, abort, stage="pt")
