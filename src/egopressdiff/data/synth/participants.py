"""Participants: each has a hand shape and a skin tone, drawn from (seed, participant).

The shape is a few scale factors of the procedural hand (scale, palm width, finger
length, thickness; stored as ``betas[:4]``); the skin tone one of six albedos, slightly
varied (one medium tone when skin-tone variation is off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.hand import HandShape
from egopressdiff.data.synth.imperfections import Imperfections
from egopressdiff.data.synth.version import GENERATOR_VERSION

SKIN_TONES = np.array([
    [0.96, 0.80, 0.69], [0.90, 0.72, 0.60], [0.80, 0.60, 0.47],
    [0.66, 0.47, 0.34], [0.50, 0.34, 0.24], [0.35, 0.24, 0.17],
])


@dataclass(frozen=True)
class Participant:
    name: str
    index: int
    shape: HandShape
    skin: tuple  # RGB albedo in [0, 1]


def make_participant(index: int, seed: int, imperf: Imperfections) -> Participant:
    rng = np.random.default_rng([int(seed), int(index), 7_919, GENERATOR_VERSION])
    shape = HandShape.random(rng)
    if imperf.skin_tone_variation:
        tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] * rng.uniform(0.95, 1.05, 3)
    else:
        tone = SKIN_TONES[2]
    return Participant(layout.participant_name(index), index, shape, tuple(float(x) for x in np.clip(tone, 0, 1)))

