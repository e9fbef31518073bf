"""Pipelines: in-memory frames -> UV-pressure maps (model + scheduler + input processor), diffusers-style."""

from egopressdiff.pipelines.base import PressureOutput, PressurePipeline, load_pipeline
from egopressdiff.pipelines.egopressdiff import EgoPressDiffPipeline
from egopressdiff.pipelines.perframe import PerFrameBaselinePipeline

__all__ = ["EgoPressDiffPipeline", "PerFrameBaselinePipeline", "PressureOutput", "PressurePipeline",
           "load_pipeline"]
