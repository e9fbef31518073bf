"""``python tests/train_launcher.py [TEST OPTIONS] train ARGS...``: the ``egopressdiff`` command line
with the toy model registered and test callbacks injected, for the tests that run training in real
processes (plain or under torchrun).

TEST OPTIONS: --step-sleep S (sleep S seconds after every optimizer step), --save-pause S
--save-pause-from N --save-marker FILE (touch FILE and sleep S seconds half-way through writing
the checkpoint of a step >= N), --rank-weights DIR (every process writes its final weights there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import toy_model  # the script's folder (tests/) is first on sys.path
from egopressdiff.cli.main import main
from train_callbacks import DumpRankWeights, PauseCheckpoint, StepSleep


def parse(argv: list[str]) -> tuple[list, list[str]]:
    p = argparse.ArgumentParser(prog="train_launcher.py")
    p.add_argument("--step-sleep", type=float)
    p.add_argument("--save-pause", type=float)
    p.add_argument("--save-pause-from", type=int, default=0)
    p.add_argument("--save-marker", type=Path)
    p.add_argument("--rank-weights", type=Path)
    p.add_argument("command", nargs=argparse.REMAINDER, help="the egopressdiff command line")
    a = p.parse_args(argv)
    callbacks = []
    if a.step_sleep:
        callbacks.append(StepSleep(a.step_sleep))
    if a.save_pause:
        callbacks.append(PauseCheckpoint(a.save_pause, a.save_pause_from, a.save_marker))
    if a.rank_weights:
        callbacks.append(DumpRankWeights(a.rank_weights))
    return callbacks, a.command


if __name__ == "__main__":
    toy_model.register()
    callbacks, command = parse(sys.argv[1:])
    sys.exit(main(command, callbacks=callbacks))
