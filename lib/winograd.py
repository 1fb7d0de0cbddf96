"""Winograd's minimal filtering F(4x4, 3x3) for 3x3 convolutions of stride 1 (Lavin & Gray 2016,
"Fast Algorithms for Convolutional Neural Networks", Sec. 4-5).

Each 4x4 block of outputs is ``A^T [(G g G^T) * (B^T d B)] A`` for the 6x6 input tile ``d`` and
the 3x3 filter ``g`` (Lavin & Gray, Eq. 8): 36 multiplications per block and channel pair
instead of 144, so the product over channels is 36 matrix products of a quarter of the direct
convolution's size. The transforms ``B^T``, ``G``, ``A^T`` are those of the interpolation points
0, 1, -1, 2, -2 and infinity (Lavin & Gray, Sec. 5.2). This is what the CAM engine's fast path
(:func:`lib.cam.fast_path`, lever ``winograd``) runs for the gradient-free passes of
Score-CAM and the other methods bound by forward passes, where the convolutions are small in
space and wide in channels; its results equal the direct convolution to float32 rounding
(about 1e-5 relative, ``tests/test_winograd.py``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: input transform B^T (6 x 6), filter transform G (6 x 3), output transform A^T (4 x 6)
BT = ((4, 0, -5, 0, 1, 0),
      (0, -4, -4, 1, 1, 0),
      (0, 4, -4, -1, 1, 0),
      (0, -2, -1, 2, 1, 0),
      (0, 2, -1, -2, 1, 0),
      (0, 4, 0, -5, 0, 1))
G = ((1 / 4, 0, 0),
     (-1 / 6, -1 / 6, -1 / 6),
     (-1 / 6, 1 / 6, -1 / 6),
     (1 / 24, 1 / 12, 1 / 6),
     (1 / 24, -1 / 12, 1 / 6),
     (0, 0, 1))
AT = ((1, 1, 1, 1, 1, 0),
      (0, 1, -1, 2, -2, 0),
      (0, 1, 1, 4, 4, 0),
      (0, 1, -1, 8, -8, 1))

#: the (i, j) entry of the 6x6 transformed block whose output transform adds its value to
#: every output of the block: column 1 of A^T is all ones, so a bias added there is added to
#: all 16 outputs, at 1/36 of the cost of adding it to the outputs
BIAS_SLOT = 1 * 6 + 1


def applies(conv: torch.nn.Conv2d) -> bool:
    """Whether ``conv`` is a convolution that F(4x4, 3x3) computes: 3x3 kernel, stride 1,
    dilation 1, one group, zero padding of 1 (the output has the input's size)."""
    return (isinstance(conv, torch.nn.Conv2d) and tuple(conv.kernel_size) == (3, 3)
            and tuple(conv.stride) == (1, 1) and tuple(conv.dilation) == (1, 1)
            and conv.groups == 1 and not isinstance(conv.padding, str)
            and tuple(conv.padding) == (1, 1) and conv.padding_mode == "zeros")


def filter_transform(weight: torch.Tensor) -> torch.Tensor:
    """U = G g G^T for every filter g of ``weight`` (C_out, C_in, 3, 3), as (36, C_in, C_out)
    (a transposed view of a (36, C_out, C_in) tensor: the batched product reads it as it is), in
    the weight's dtype: vec(G g G^T) = (G kron G) vec(g), one matrix product for all filters."""
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"filter_transform needs 3x3 filters (C_out, C_in, 3, 3), got "
                         f"{tuple(weight.shape)}")
    g = torch.tensor(G, dtype=torch.float64, device=weight.device)
    kron = torch.kron(g, g).to(weight.dtype)
    c_out, c_in = weight.shape[:2]
    u = kron @ weight.detach().reshape(c_out * c_in, 9).T
    return u.view(36, c_out, c_in).transpose(1, 2)


def conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None,
            relu: bool = False, add: torch.Tensor | None = None) -> torch.Tensor:
    """The 3x3 convolution (stride 1, padding 1) of ``x`` (N, C_in, H, W) with the filters whose
    transform is ``u`` (:func:`filter_transform`), plus ``bias``, plus ``add`` (a tensor of the
    output's shape: a residual connection), then a ReLU if ``relu``: Lavin & Gray's Eq. 8 on
    the 4x4 output blocks, the 36 products over channels as one batched matrix product.
    Returns a channels-last tensor (N, C_out, H, W)."""
    n, c, h, w = x.shape
    if u.shape[:2] != (36, c):
        raise ValueError(f"the filter transform is for {u.shape[1]} input channels (shape "
                         f"{tuple(u.shape)}), the input has {c}: compute it with "
                         "filter_transform(conv.weight)")
    bt = torch.tensor(BT, dtype=x.dtype, device=x.device)
    at = torch.tensor(AT, dtype=x.dtype, device=x.device)
    th, tw = (h + 3) // 4, (w + 3) // 4
    blocks = n * th * tw
    # the input in (N, H, W, C), zero-padded to 4 * tiles + 2 on each side's end
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 4 * tw + 1 - w, 1, 4 * th + 1 - h))
    tiles = padded.unfold(1, 6, 4).unfold(2, 6, 4)  # (N, th, tw, C, 6, 6), overlapping
    d = tiles.permute(4, 5, 0, 1, 2, 3).reshape(6, 6 * blocks * c)
    # B^T d B as two products with B^T, each over one axis of the tile
    v = torch.matmul(bt, torch.mm(bt, d).view(6, 6, blocks * c)).view(36, blocks, c)
    m = torch.bmm(v, u)  # (36, blocks, C_out)
    c_out = u.shape[2]
    if bias is not None:
        m[BIAS_SLOT] += bias
    # A^T m A, again one axis at a time, then the blocks back into the image
    y = torch.matmul(at, torch.mm(at, m.view(6, 6 * blocks * c_out)).view(4, 6, blocks * c_out))
    y = (y.view(4, 4, n, th, tw, c_out).permute(2, 3, 0, 4, 1, 5)
         .reshape(n, 4 * th, 4 * tw, c_out)[:, :h, :w])
    if add is not None:
        out = torch.add(y, add.permute(0, 2, 3, 1))
    else:
        out = y.contiguous()
    if relu:
        out.relu_()
    return out.permute(0, 3, 1, 2)
