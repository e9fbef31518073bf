"""Evaluation: the field's metrics, the prediction file format, pictures/videos and the HTML report.

Modules (imported explicitly; nothing heavy is imported here so ``egopressdiff --help`` stays fast):
    metrics      Contact / Volumetric IoU, MAE, temporal accuracy, force error, false-contact rate
    predictions  ``<pred>/<participant>/<sequence>.npz`` read/write/stream
    render       coloured UV maps, pressure on the 3D hand, video panels, MP4/GIF
    report       self-contained ``index.html``
"""
