"""EgoPressDiff model parts: PoseNet, Vertex Encoder, DC spatial layer, U-Net wrapper, codecs, the model."""

from egopressdiff.models.config import EgoPressDiffConfig
from egopressdiff.models.egopressdiff import EgoPressDiff

__all__ = ["EgoPressDiff", "EgoPressDiffConfig"]
