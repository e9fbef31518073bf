"""EgoPressDiff: conditional video diffusion for egocentric hand-pressure estimation.

Data flow (one sub-package each):
    data        EgoPressure layout, synthetic generator, reader, clips
    models      PoseNet, Vertex Encoder, DC spatial layer, the U-Net wrapper, codecs
    diffusion   EDM preconditioning, loss, Karras/Euler sampling, windowed prediction
    training    accelerate-based training loop, checkpoints
    evaluation  metrics (PressureVision / EgoPressure definitions), rendering
    cli         the `egopressdiff` command
"""

__version__ = "0.1.0"
