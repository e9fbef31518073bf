"""What identifies the generator's output: its version (part of every RNG seed) and markers."""

GENERATOR_VERSION = 2  # 2: annotation as an annotator's fit, pressure cues, the estimated-mesh track
HAND_MODEL = "procedural-v1"
# key of the generator's block in the config JSON; the reader uses the procedural hand's atlas when present
SYNTH_MARKER = "egopressdiff_synthetic"
