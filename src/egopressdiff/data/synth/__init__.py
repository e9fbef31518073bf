"""The built-in synthetic EgoPressure dataset: gestures, physics, renders, imperfections.

``generate_dataset(OUT, participants, sequences, frames, seed)`` writes exactly the
EgoPressure on-disk layout: per sequence a config JSON and a k4a calibration JSON, and
five Parquet shards (colour JPEG, depth PNG, mask PNG, pressure, annotation) with the
real column names, units and frame numbering. The same reader serves it and the real
data; the config JSON carries an ``"egopressdiff_synthetic"`` marker so the reader uses
the procedural hand's UV atlas (:func:`egopressdiff.data.hand.synthetic_atlas`) instead
of MANO's.

One module per job:

* :mod:`~egopressdiff.data.synth.gestures` — gesture staging (families, postures, force
  ranges) and the dataset plan (which participant performs which gesture, which hand);
* :mod:`~egopressdiff.data.synth.profiles` — what a gesture asks of the hand over time
  (approach, ramp, hold, release, lift; drags);
* :mod:`~egopressdiff.data.synth.solver` — the contact solver that poses the hand to
  meet those targets (gaps above the pad, forces through the soft-tissue law);
* :mod:`~egopressdiff.data.synth.participants` — hand shape, skin tone, tissue stiffness
  per participant;
* :mod:`~egopressdiff.data.synth.camera` — the ego camera rig (head motion, tilt
  events) and the separate depth sensor;
* :mod:`~egopressdiff.data.synth.renderer` — RGB, hand mask and depth renders, with the
  pressure cues the real world has (nail blanching, contact shadows, the flattened pad);
* :mod:`~egopressdiff.data.synth.imperfections` — the real data's imperfections and the
  sensor noise;
* :mod:`~egopressdiff.data.synth.annotation` — what the stored annotation holds: an
  annotator's fit (contact patches resting on the pad, a ~1 mm residual), not the physics;
* :mod:`~egopressdiff.data.synth.estimator` — the estimated-mesh track (a monocular
  estimator's mesh, with a documented error model);
* :mod:`~egopressdiff.data.synth.sequence` — one sequence, frame by frame: the simulation
  and its annotation, then cameras, renders and records;
* :mod:`~egopressdiff.data.synth.dataset` — the whole dataset, serially or in workers.

Determinism: every sequence has its own RNGs seeded by (seed, participant, sequence), so
any sequence is reproducible alone and the same seed gives byte-identical shards.

The benchmark this makes: the answer is not in the inputs. The physics (the hand sinking
into the pad, the pressure) stays internal; models see the renders, with weak and often
hidden pressure cues, and either the annotated mesh (the paper's protocol) or the
estimated one. ``benchmarks/oracles.py`` measures how far a no-learning rule gets.
"""

from egopressdiff.data.synth.camera import (
    DEFAULT_IMAGE_SIZE,
    DEPTH_TO_COLOR_R,
    DEPTH_TO_COLOR_T,
    CameraRig,
    color_camera,
    depth_camera,
    depth_pose,
    look_at,
)
from egopressdiff.data.synth.dataset import generate_dataset
from egopressdiff.data.synth.gestures import GestureSpec, SequencePlan, gesture_order, plan_dataset
from egopressdiff.data.synth.imperfections import Imperfections
from egopressdiff.data.synth.participants import Participant, make_participant
from egopressdiff.data.synth.profiles import FrameTarget, GestureTimeline, SmoothNoise, smoothstep
from egopressdiff.data.synth.renderer import PAD_THICKNESS, SequenceRenderer
from egopressdiff.data.synth.sequence import FrameState, SequenceSimulation, render_sequence, sequence_rng
from egopressdiff.data.synth.solver import R_LOCAL_TO_WORLD, ContactSolver
from egopressdiff.data.synth.version import GENERATOR_VERSION, HAND_MODEL, SYNTH_MARKER

__all__ = [
    "DEFAULT_IMAGE_SIZE", "DEPTH_TO_COLOR_R", "DEPTH_TO_COLOR_T", "GENERATOR_VERSION", "HAND_MODEL",
    "PAD_THICKNESS", "R_LOCAL_TO_WORLD", "SYNTH_MARKER", "CameraRig", "ContactSolver", "FrameTarget",
    "GestureSpec", "GestureTimeline", "Imperfections", "Participant", "SequencePlan", "SequenceRenderer",
    "SmoothNoise", "FrameState", "SequenceSimulation", "color_camera", "depth_camera", "depth_pose", "generate_dataset", "gesture_order",
    "look_at", "make_participant", "plan_dataset", "render_sequence", "sequence_rng", "smoothstep",
]
