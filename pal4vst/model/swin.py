"""Swin Transformer backbone, numerically identical to MMSegmentation 1.x's ``SwinTransformer``.

Module and parameter names follow MMSegmentation's (``stages.N.blocks.M.attn.w_msa.qkv``,
``ffn.layers.0.0``, ``downsample.reduction``, ``normN``) so that released checkpoints load
without renaming. Three details matter for exactness and differ from other Swin ports:

* feature maps are zero-padded on the right/bottom to a multiple of the window (128, 64, 32, 16
  with window 12 at a 512 input), and the shifted-window mask is built on the padded map;
  padded tokens take part in non-shifted attention, exactly as in MMSegmentation;
* ``PatchMerging`` concatenates the 2x2 neighbourhood in ``nn.Unfold`` order (channel-major),
  not the original Swin's ``x0, x1, x2, x3`` order;
* the shifted-window mask uses -100 (not -inf) for cross-region pairs.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn


def relative_position_index(window: int) -> torch.Tensor:
    """MMSegmentation's relative position index for a square ``window`` (``WindowMSA``)."""
    seq1 = torch.arange(0, (2 * window - 1) * window, 2 * window - 1)
    seq2 = torch.arange(0, window)
    coords = (seq1[:, None] + seq2[None, :]).reshape(1, -1)
    return (coords + coords.T).flip(1).contiguous()


@lru_cache(maxsize=32)
def _shift_mask_cpu(h_pad: int, w_pad: int, window: int, shift: int) -> torch.Tensor:
    img_mask = torch.zeros((1, h_pad, w_pad, 1))
    slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    cnt = 0
    for hs in slices:
        for ws in slices:
            img_mask[:, hs, ws, :] = cnt
            cnt += 1
    windows = window_partition(img_mask, window).view(-1, window * window)
    mask = windows.unsqueeze(1) - windows.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


def shifted_window_mask(h_pad: int, w_pad: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Additive attention mask ``[num_windows, N, N]`` for shifted windows on a padded map."""
    return _shift_mask_cpu(h_pad, w_pad, window, shift).to(device)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, H, W, C]`` -> ``[B * nW, window, window, C]``."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def window_reverse(windows: torch.Tensor, h: int, w: int, window: int) -> torch.Tensor:
    """``[B * nW, window, window, C]`` -> ``[B, H, W, C]``."""
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


class WindowMSA(nn.Module):
    """Window multi-head self-attention with a relative position bias."""

    def __init__(self, dim: int, num_heads: int, window: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        # Deterministic from the window size: not read from checkpoints.
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> torch.Tensor:
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        # Written out as MMSegmentation does (scale q, then q @ k^T): with 144-token windows this
        # beats scaled_dot_product_attention on CPUs, whose masked path adds checks per call.
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.position_bias().unsqueeze(0).to(attn.dtype)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b // nw, nw, self.num_heads, n, n) + mask.to(attn.dtype)[None, :, None]
            attn = attn.view(-1, self.num_heads, n, n)
        x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class ShiftWindowMSA(nn.Module):
    """(Shifted) window attention on a token sequence, padding the map to whole windows."""

    def __init__(self, dim: int, num_heads: int, window: int, shift: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.w_msa = WindowMSA(dim, num_heads, window, qkv_bias)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        h, w = hw
        win = self.window
        x = x.view(b, h, w, c)
        pad_r = (win - w % win) % win
        pad_b = (win - h % win) % win
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = x.shape[1], x.shape[2]
        mask = None
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = shifted_window_mask(hp, wp, win, self.shift, x.device)
        windows = window_partition(x, win).view(-1, win * win, c)
        windows = self.w_msa(windows, mask)
        x = window_reverse(windows.view(-1, win, win, c), hp, wp, win)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        if pad_r or pad_b:
            x = x[:, :h, :w, :]
        return x.reshape(b, h * w, c)


class FFN(nn.Module):
    """MMCV's FFN layout: ``layers.0.0`` (fc1), GELU, ``layers.1`` (fc2)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Identity()), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DropPath(nn.Module):
    """Stochastic depth (training only): drops a sample's residual branch with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class SwinBlock(nn.Module):
    def __init__(
        self, dim: int, num_heads: int, window: int, shift: bool, mlp_ratio: float, qkv_bias: bool,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftWindowMSA(dim, num_heads, window, window // 2 if shift else 0, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, int(mlp_ratio * dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.ffn(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbourhood merge in ``nn.Unfold`` channel order, LayerNorm, linear reduction."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        b, _, c = x.shape
        h, w = hw
        x = x.view(b, h, w, c)
        if h % 2 or w % 2:  # MMSeg's "corner" adaptive padding
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
            h, w = x.shape[1], x.shape[2]
        x = x.view(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 5, 2, 4).reshape(b, (h // 2) * (w // 2), 4 * c)
        return self.reduction(self.norm(x)), (h // 2, w // 2)


class SwinStage(nn.Module):
    def __init__(
        self, dim: int, depth: int, num_heads: int, window: int, mlp_ratio: float, qkv_bias: bool, downsample: bool,
        drop_paths: list[float] | None = None,
    ) -> None:
        super().__init__()
        dp = drop_paths or [0.0] * depth
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, i % 2 == 1, mlp_ratio, qkv_bias, dp[i]) for i in range(depth)
        )
        self.downsample = PatchMerging(dim, 2 * dim) if downsample else None

    def forward(self, x: torch.Tensor, hw: tuple[int, int]):
        for block in self.blocks:
            x = block(x, hw)
        if self.downsample is None:
            return x, hw, x, hw
        down, down_hw = self.downsample(x, hw)
        return down, down_hw, x, hw


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, dim: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.projection = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        p = self.patch
        h, w = x.shape[-2:]
        if h % p or w % p:
            x = F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p))
        x = self.projection(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class SwinTransformer(nn.Module):
    """Swin backbone returning the four normed stage outputs as ``[B, C, H, W]`` maps."""

    def __init__(
        self,
        embed_dim: int = 128,
        depths: tuple[int, ...] = (2, 2, 18, 2),
        num_heads: tuple[int, ...] = (4, 8, 16, 32),
        window: int = 12,
        patch: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        in_chans: int = 3,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch)
        self.num_features = [embed_dim * 2**i for i in range(len(depths))]
        rates = torch.linspace(0, drop_path, sum(depths)).tolist()  # MMSeg: linear over all blocks
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.stages = nn.ModuleList(
            SwinStage(self.num_features[i], depths[i], num_heads[i], window, mlp_ratio, qkv_bias, i < len(depths) - 1,
                      rates[starts[i]:starts[i] + depths[i]])
            for i in range(len(depths))
        )
        for i, dim in enumerate(self.num_features):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, hw = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw, out, out_hw = stage(x, hw)
            out = getattr(self, f"norm{i}")(out)
            outs.append(out.view(-1, *out_hw, self.num_features[i]).permute(0, 3, 1, 2).contiguous())
        return outs
