"""EgoPressDiff: conditional video diffusion for egocentric hand-pressure estimation.

Data flow (one sub-package each):
    data        EgoPressure layout, synthetic generator, reader, clips, the input processor
    models      the networks (diffusers ModelMixins): U-Net with DC spatial layers, PoseNet,
                Vertex Encoder, codecs, CLIP; EgoPressDiff assembles them
    baselines   the per-frame baselines
    diffusion   the EDM scheduler, loss, Karras/Euler sampling
    pipelines   in-memory frames -> UV-pressure maps (EgoPressDiffPipeline, PerFrameBaselinePipeline),
                windows for any length
    training    accelerate-based trainer, EMA, checkpoints
    evaluation  metrics (PressureVision / EgoPressure definitions), rendering, the report
    cli         the `egopressdiff` command

``from egopressdiff import EgoPressDiffPipeline`` is lazy: importing the package stays cheap.
"""

__version__ = "0.1.0"

_LAZY = {
    "EgoPressDiffPipeline": "egopressdiff.pipelines",
    "PerFrameBaselinePipeline": "egopressdiff.pipelines",
    "PressureOutput": "egopressdiff.pipelines",
    "load_pipeline": "egopressdiff.pipelines",
    "PressureInputProcessor": "egopressdiff.data.processor",
    "EgoPressDiff": "egopressdiff.models",
    "EDMScheduler": "egopressdiff.diffusion.scheduling_edm",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'egopressdiff' has no attribute {name!r}")
