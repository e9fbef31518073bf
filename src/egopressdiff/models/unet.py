"""The conditioned U-Net: diffusers' SVD U-Net with DC spatial blocks, PoseNet injection and per-frame context.

The diffusers ``UNetSpatioTemporalConditionModel`` itself stays intact (its state dict is a
superset of the SVD one; pretrained weights load unchanged):

* PoseNet features are added to the output of ``unet.conv_in`` through a forward hook;
* the spatial transformer blocks are :class:`~egopressdiff.models.dc_spatial.DCSpatialBlock`
  reading frame f's image and vertex tokens (and the vertex tokens' UV positions) from a shared
  :class:`~egopressdiff.models.dc_spatial.FrameContext`;
* ``encoder_hidden_states`` given to the diffusers forward is frame 0's image tokens, which
  is what the temporal blocks see (diffusers uses the first frame's context there, and SVD
  conditions on one image) -- so with identical tokens for all frames and an untrained
  PoseNet / vertex gate, the output equals the vanilla SVD U-Net's.
"""

from __future__ import annotations

import contextlib

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from egopressdiff.models.dc_spatial import FrameContext, swap_in_dc_spatial_blocks


class ConditionedUNet(ModelMixin, ConfigMixin):
    """diffusers' ``UNetSpatioTemporalConditionModel`` with DC spatial blocks and PoseNet injection.

    ``unet_config`` holds the diffusers U-Net's constructor arguments; ``unet_model`` (not part of
    the config) is an already built one (e.g. SVD's pretrained U-Net), modified in place.
    ``spatial_vertex``: the vertex cross-attention gets a UV-distance bias (per-vertex tokens).
    """

    ignore_for_config = ["unet_model"]
    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(self, unet_config: dict | None = None, calibrate: bool = True, eps: float = 1e-5,
                 spatial_vertex: bool = False, unet_model=None):
        super().__init__()
        if unet_model is None:
            from diffusers import UNetSpatioTemporalConditionModel

            unet_model = UNetSpatioTemporalConditionModel(**(unet_config or {}))
        self.unet = unet_model
        self.context = FrameContext()
        # a plain list: the blocks are registered once, inside the U-Net
        self.dc_blocks = swap_in_dc_spatial_blocks(self.unet, self.context, calibrate=calibrate, eps=eps,
                                                   spatial_vertex=spatial_vertex)
        self._pose_features: torch.Tensor | None = None
        self.unet.conv_in.register_forward_hook(self._add_pose_features)

    def _add_pose_features(self, module, inputs, output):
        if self._pose_features is None:
            return output
        return output + self._pose_features.to(output.dtype)

    @contextlib.contextmanager
    def _pose(self, features):
        old, self._pose_features = self._pose_features, features
        try:
            yield
        finally:
            self._pose_features = old

    def enable_gradient_checkpointing(self, gradient_checkpointing_func=None) -> None:
        """Diffusers' checkpointing, with the per-frame context passed as explicit checkpoint inputs.

        The recomputation runs during backward, after the forward's context was reset, so the
        context tensors must travel with the checkpointed call.
        """
        ctx = self.context

        def checkpoint_func(module, *args):
            def run(image, vertex, vertex_uv, *a):
                with ctx.use(image, vertex, vertex_uv):
                    return module(*a)

            return torch.utils.checkpoint.checkpoint(run, ctx.image, ctx.vertex, ctx.vertex_uv, *args,
                                                     use_reentrant=False)

        self.unet.enable_gradient_checkpointing(checkpoint_func)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, image_tokens: torch.Tensor,
                added_time_ids: torch.Tensor, vertex_tokens: torch.Tensor | None = None,
                pose_features: torch.Tensor | None = None, vertex_uv: torch.Tensor | None = None) -> torch.Tensor:
        """Run the U-Net.

        Args:
            sample: (B, N, C_in, h, w) network input (scaled noisy latent ++ condition latent).
            timestep: (B,) or scalar c_noise.
            image_tokens: (B, N, T_img, D) per-frame image tokens.
            added_time_ids: (B, 3).
            vertex_tokens: (B, N, T_vtx, D) per-frame vertex tokens, or None (no vertex branch).
            pose_features: (B*N, C0, h, w) PoseNet features at latent resolution, or None.
            vertex_uv: (T_vtx, 2) UV position of each vertex token (region tokens), or None.
        Returns:
            (B, N, C_out, h, w)
        """
        image = image_tokens.flatten(0, 1)
        vertex = None if vertex_tokens is None else vertex_tokens.flatten(0, 1)
        with self.context.use(image, vertex, vertex_uv), self._pose(pose_features):
            return self.unet(sample, timestep, encoder_hidden_states=image_tokens[:, 0],
                             added_time_ids=added_time_ids, return_dict=False)[0]
