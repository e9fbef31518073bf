"""Participants: hand shape, skin tone, soft-tissue stiffness and blanching, drawn from (seed, participant).

The shape is a few scale factors of the procedural hand (scale, palm width, finger
length, thickness; stored as ``betas[:4]``); the skin tone one of six albedos, slightly
varied (one medium tone when skin-tone variation is off). The soft tissue's stiffness
varies between people (a factor log-normal around 1, sigma 0.25, within [0.6, 1.6]), so
the same force flattens one participant's fingertips more than another's; how visibly
nails and fingertips blanch under pressure varies too (nail length, polish, skin tone:
a factor in [0.5, 1.2]; 1 when skin-tone variation is off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.hand import HandModel, HandShape
from egopressdiff.data.synth.imperfections import Imperfections
from egopressdiff.data.synth.version import GENERATOR_VERSION

STIFFNESS_MAP_SIGMA = 0.5
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
    stiffness: float = 1.0  # soft-tissue stiffness factor (x SoftTissue.stiffness_kpa)
    blanching: float = 1.0  # strength of the pressure blanching of nails and skin
    tissue_seed: int = 0  # seeds the participant's map of soft-tissue stiffness over the hand


def make_participant(index: int, seed: int, imperf: Imperfections) -> Participant:
    rng = np.random.default_rng([int(seed), int(index), 7_919, GENERATOR_VERSION])
    shape = HandShape.random(rng)
    if imperf.skin_tone_variation:
        tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] * rng.uniform(0.95, 1.05, 3)
    else:
        tone = SKIN_TONES[2]
    stiffness = float(np.clip(np.exp(rng.normal(0.0, 0.25)), 0.6, 1.6))
    blanching = float(rng.uniform(0.5, 1.2)) if imperf.skin_tone_variation else 1.0
    tissue_seed = int(rng.integers(2**31))
    return Participant(layout.participant_name(index), index, shape, tuple(float(x) for x in np.clip(tone, 0, 1)),
                       stiffness, blanching, tissue_seed)


def stiffness_map(hand: HandModel, participant: Participant, sigma: float = STIFFNESS_MAP_SIGMA) -> np.ndarray:
    """Per-vertex stiffness factors (778,) of one participant's hand: thin tissue over bone is stiffer
    than the thick pads. A smooth log-normal field over the skin (log-sd ``sigma``), mean log 0."""
    from egopressdiff.data.synth.annotation import smooth_modes

    rng = np.random.default_rng([participant.tissue_seed, 0 if hand.side == "right" else 1])
    modes = smooth_modes(hand, rng, 6, iterations=12)
    return np.exp(sigma * (rng.normal(size=6) @ modes) / np.sqrt(6))

