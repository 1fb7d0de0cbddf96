"""Grad-CAM on the masked [CNN] of paper 003 (Section 2): Proposition 2's closed form of alpha,
Theorem 3's lower bound on the expected Grad-CAM score, its exact value (Eq. 11), and a batched
Monte Carlo over random initialisations that checks both.

Symbols (paper 003, Section 2): xi is the conv input (H x W, after padding), k the filter size,
B = ReLU(conv(xi)) in R^{V x h x w}, (h, w) = (H-k+1, W-k+1), k' the max-pool size,
(h', w') = (h, w) / k'. Grad-CAM (Definition 1) is GC = ReLU(sum_v alpha_v B^(v)) on the h x w grid
(before any up-sampling or normalisation), alpha_v = GAP(dy/dB^(v)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lib.models.cnn003 import CNN003, effective_weight

__all__ = [
    "gradcam_alpha_autograd", "gradcam_alpha_closed_form", "gradcam_map", "patch_norms",
    "theorem3_bound", "theorem3_expectation", "ensemble_gradcam", "monte_carlo_gradcam",
    "MonteCarloResult", "bound_check",
    "RowWall", "WalledLayer", "WalledModel", "masked_zone_rows", "wall_scores",
]


# --------------------------------------------------------------------------- Proposition 2

def _batch(model: CNN003, x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[-2:]) != model.input_size:
        raise ValueError(f"x must be (N, 1, H, W) or (N, H, W) with (H, W) = {model.input_size}, "
                         f"got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x holds NaN or inf values")
    return x


def _targets(logits: torch.Tensor, target) -> torch.Tensor:
    n, n_classes = logits.shape
    if target is None:
        return logits.argmax(1)
    t = torch.as_tensor(target, device=logits.device).long().reshape(-1).expand(n)
    if (t < 0).any() or (t >= n_classes).any():
        raise ValueError(f"target {target} out of range for {n_classes} classes")
    return t


def gradcam_alpha_autograd(model: CNN003, x: torch.Tensor, target=None) -> torch.Tensor:
    """alpha_v = GAP(d y_c / d B^(v)) by automatic differentiation (Definition 1), shape (N, V).

    ``target``: None (predicted class), an int, or one int per image.
    """
    x = _batch(model, x)
    with torch.enable_grad():
        b = model.features(x)
        if not b.requires_grad:
            b = b.detach().requires_grad_(True)
        logits = model.head(b)
        t = _targets(logits, target)
        score = logits.gather(1, t[:, None]).sum()
        (grad,) = torch.autograd.grad(score, b)
    return grad.mean(dim=(-2, -1))


def gradcam_alpha_closed_form(model: CNN003, x: torch.Tensor, target=None) -> torch.Tensor:
    """Proposition 2: alpha_v = 1/(hw) sum_{(i,j) in [h']x[w']} sum_{i_1..i_{L-1}}
    1{a^(1)_{i_1}, ..., a^(L-1)_{i_{L-1}} > 0} prod_p W^(p)_{i_p, i_{p-1}}, with i_0 = (v, i, j)
    and i_L = c, shape (N, V). For L = 1 this is 1/(hw) times the sum of W's row c over channel v,
    whatever the input. W^(1) is taken with its mask applied.
    """
    x = _batch(model, x)
    with torch.no_grad():
        acts = model.pre_activations(x)  # a^(1) ... a^(L)
        t = _targets(acts[-1], target)
        weights = [effective_weight(m) for m in model.dense_layers]
        rho = weights[-1][t]  # W^(L)_{c, :}, (N, d_{L-1})
        for ell in range(len(weights) - 1, 0, -1):  # layers L-1 down to 1
            rho = (rho * (acts[ell - 1] > 0)) @ weights[ell - 1]
        h, w = model.conv_size
        return rho.reshape(x.shape[0], model.n_filters, -1).sum(-1) / (h * w)


def gradcam_map(model: CNN003, x: torch.Tensor, target=None, closed_form: bool = False
                ) -> torch.Tensor:
    """[GC] = ReLU(sum_v alpha_v B^(v)) of Definition 1, on the h x w grid, shape (N, h, w)."""
    x = _batch(model, x)
    alpha = (gradcam_alpha_closed_form if closed_form else gradcam_alpha_autograd)(
        model, x, target)
    with torch.no_grad():
        b = model.features(x)
    return torch.relu(torch.einsum("nv,nvij->nij", alpha, b))


# --------------------------------------------------------------------------- Theorem 3

def patch_norms(xi: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """||m||_2 for every position: m = xi[i:i+k, j:j+k], the patch that B_{i,j} sees, (h, w)."""
    xi = _image(xi)
    ones = torch.ones(1, 1, kernel_size, kernel_size, dtype=xi.dtype, device=xi.device)
    sq = F.conv2d((xi ** 2)[None, None], ones)[0, 0]
    return sq.clamp_min(0).sqrt()


def _image(xi: torch.Tensor) -> torch.Tensor:
    xi = torch.as_tensor(xi)
    if xi.dim() == 3 and xi.shape[0] == 1:
        xi = xi[0]
    if xi.dim() != 2:
        raise ValueError(f"xi must be one grey image (H, W) (the conv input, after padding), "
                         f"got shape {tuple(xi.shape)}")
    if not xi.is_floating_point():
        raise ValueError(f"xi must be float in [0, 1] (divide uint8 images by 255), "
                         f"got {xi.dtype}")
    if not torch.isfinite(xi).all():
        raise ValueError("xi holds NaN or inf values")
    return xi


def _geometry(xi: torch.Tensor, kernel_size: int, pool_size: int, mask_rows: int | None):
    H, W = xi.shape
    h, w = H - kernel_size + 1, W - kernel_size + 1
    if h % pool_size or w % pool_size:
        raise ValueError(f"conv output {h}x{w} is not divisible by pool_size={pool_size}; pad xi "
                         "(the paper pads MNIST to 29x29 for k = k' = 2)")
    hp, wp = h // pool_size, w // pool_size
    if mask_rows is None:
        if hp % 2:
            raise ValueError(f"Theorem 3 assumes h' even (lower half of W masked); h'={hp}. "
                             "Pass mask_rows explicitly for the generalised bound")
        mask_rows = hp // 2
    if not 0 <= mask_rows < hp:
        raise ValueError(f"mask_rows={mask_rows} must lie in [0, h'={hp})")
    n_seen = (hp - mask_rows) * wp
    return h, w, hp, wp, mask_rows, n_seen


def theorem3_bound(xi: torch.Tensor, n_filters: int, tau: float = 1.0, kernel_size: int = 2,
                   pool_size: int = 2, mask_rows: int | None = None) -> torch.Tensor:
    """Theorem 3 (Eq. 5): E[GC_ij] >= (V-20)/sqrt(V) sqrt(h'w'/(16 pi)) tau^2/(hw) ||m||_2, (h, w).

    ``xi`` is the conv input (after padding). ``mask_rows=None`` is the theorem's case, the lower
    h'/2 rows of W masked; another value uses the same proof with n_seen = (h' - mask_rows) w'
    unmasked weights per channel in place of h'w'/2: sqrt(h'w'/(16 pi)) -> sqrt(n_seen/(8 pi)).
    """
    if n_filters <= 20:
        raise ValueError(f"Theorem 3 needs V > 20 filters (its Chebyshev step), got V={n_filters}")
    xi = _image(xi)
    h, w, _, _, _, n_seen = _geometry(xi, kernel_size, pool_size, mask_rows)
    const = (n_filters - 20) / math.sqrt(n_filters) * math.sqrt(n_seen / (8 * math.pi))
    return const * tau ** 2 / (h * w) * patch_norms(xi, kernel_size)


def _mean_sqrt_rectified_chi2(n_filters: int) -> float:
    """E[sqrt(sum_{q<=V} (Z_q^+)^2)], Z_q i.i.d. N(0,1): K ~ Bin(V, 1/2) of the Z_q are positive
    and, given K, the sum is chi^2_K, whose square root has mean sqrt(2) G((K+1)/2) / G(K/2)."""
    total = 0.0
    for k in range(1, n_filters + 1):
        log_p = (math.lgamma(n_filters + 1) - math.lgamma(k + 1) - math.lgamma(n_filters - k + 1)
                 - n_filters * math.log(2))
        total += math.exp(log_p + 0.5 * math.log(2) + math.lgamma((k + 1) / 2) - math.lgamma(k / 2))
    return total


def theorem3_expectation(xi: torch.Tensor, n_filters: int, tau: float = 1.0,
                         kernel_size: int = 2, pool_size: int = 2,
                         mask_rows: int | None = None) -> torch.Tensor:
    """E[GC_ij] exactly (Eq. 11 of Appendix D, evaluated in closed form), shape (h, w):
    tau/(hw) sqrt(n_seen/(2 pi)) E[sqrt(Y)], Y = sum_q (B_ij^(q))^2 = tau^2 ||m||^2 sum_q (Z_q^+)^2,
    n_seen = h'w'/2 in the theorem's case. Theorem 3's bound lower-bounds this value."""
    xi = _image(xi)
    h, w, _, _, _, n_seen = _geometry(xi, kernel_size, pool_size, mask_rows)
    const = math.sqrt(n_seen / (2 * math.pi)) * _mean_sqrt_rectified_chi2(n_filters)
    return const * tau ** 2 / (h * w) * patch_norms(xi, kernel_size)


# --------------------------------------------------------------------------- Monte Carlo

def ensemble_gradcam(xi: torch.Tensor, filters: torch.Tensor, weights: torch.Tensor,
                     pool_size: int = 2, mask: torch.Tensor | None = None, target=0
                     ) -> torch.Tensor:
    """Grad-CAM maps (Definition 1) of D independent L = 1 [CNN]s on one image, in one batch.

    ``filters`` (D, V, k, k); ``weights`` (D, n_classes, V, h', w') or (D, V, h', w') (one
    logit); ``mask`` (h', w') or (V, h', w'), multiplied into the weights; ``target`` an int or
    ``"predicted"`` (each draw's arg-max logit). alpha comes from autograd, so this is a second
    implementation, not Proposition 2. Returns (D, h, w).
    """
    xi = _image(xi).to(filters.dtype)
    if weights.dim() == 4:
        weights = weights.unsqueeze(1)
    d, v, k, _ = filters.shape
    if weights.shape[0] != d or weights.shape[2] != v:
        raise ValueError(f"filters {tuple(filters.shape)} and weights {tuple(weights.shape)} "
                         "disagree on the number of draws or filters")
    if mask is not None:
        weights = weights * mask.to(weights)
    with torch.enable_grad():
        h, w = xi.shape[0] - k + 1, xi.shape[1] - k + 1
        # Eq. 1 as one matrix product over all draws (faster than conv2d with D*V filters)
        a = filters.reshape(d * v, k * k) @ F.unfold(xi[None, None], k)[0]
        b = torch.relu(a).reshape(d, v, h, w).detach().requires_grad_(True)
        c = F.max_pool2d(b, pool_size)
        if c.shape[-2:] != weights.shape[-2:]:
            raise ValueError(f"pooled maps are {tuple(c.shape[-2:])}, weights are "
                             f"{tuple(weights.shape[-2:])}")
        logits = torch.einsum("dvij,dcvij->dc", c, weights)
        if target == "predicted":
            t = logits.argmax(1)
        else:
            t = torch.full((d,), int(target), device=logits.device)
        (grad,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), b)
    alpha = grad.mean(dim=(-2, -1))
    return torch.relu(torch.einsum("dv,dvij->dij", alpha, b.detach()))


@dataclass
class MonteCarloResult:
    """Per-pixel mean and Monte Carlo standard error of Grad-CAM over random initialisations."""
    mean: torch.Tensor  # (h, w)
    sem: torch.Tensor  # (h, w), sample std / sqrt(n_draws)
    n_draws: int
    n_filters: int
    tau: float
    target: object
    first: torch.Tensor  # (h, w), the map of the first draw (for figures)
    draw_totals: torch.Tensor  # (n_draws,), each draw's map summed over pixels

    @property
    def total_sem(self) -> float:
        """Standard error of the mean of the pixel-summed map (pixels share alpha, so they are
        correlated; this is the honest error of a map-wide comparison)."""
        return float(self.draw_totals.std() / math.sqrt(self.n_draws))


def monte_carlo_gradcam(xi: torch.Tensor, n_filters: int, n_draws: int, tau: float = 1.0,
                        kernel_size: int = 2, pool_size: int = 2, mask_rows: int | None = None,
                        target=0, n_classes: int = 10, seed: int = 0, device="cpu",
                        dtype=torch.float32, max_elements: int = 2 ** 23,
                        progress: bool = True) -> MonteCarloResult:
    """Mean Grad-CAM map of the masked L = 1 [CNN] over ``n_draws`` i.i.d. N(0, tau^2)
    initialisations of the filters and of W (Theorem 3's expectation), batched over draws.

    ``target``: a fixed class (Theorem 3's setting: the output is one fixed logit; only that row
    of W matters, so only it is drawn) or ``"predicted"`` (arg-max class per draw, as the
    authors' code does; then all ``n_classes`` rows are drawn and the theorem's independence
    argument no longer applies). ``mask_rows=None`` masks the lower h'/2 rows.
    """
    if n_draws < 2:
        raise ValueError("n_draws must be at least 2 to estimate a standard error")
    xi = _image(xi)
    h, w, hp, wp, mask_rows, _ = _geometry(xi, kernel_size, pool_size, mask_rows)
    device = torch.device(device)
    xi = xi.to(device=device, dtype=dtype)
    mask = torch.ones(hp, wp, dtype=dtype, device=device)
    mask[hp - mask_rows:] = 0
    rows = n_classes if target == "predicted" else 1
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, min(n_draws, max_elements // (n_filters * h * w * (1 + rows // 4))))
    total = torch.zeros(h, w, dtype=torch.float64, device=device)
    total_sq = torch.zeros_like(total)
    first = None
    totals = []
    done = 0
    with tqdm(total=n_draws, desc=f"V={n_filters}", disable=not progress, leave=False) as bar:
        while done < n_draws:
            d = min(chunk, n_draws - done)
            filt = torch.randn(d, n_filters, kernel_size, kernel_size, generator=gen) * tau
            wts = torch.randn(d, rows, n_filters, hp, wp, generator=gen) * tau
            maps = ensemble_gradcam(xi, filt.to(device, dtype), wts.to(device, dtype),
                                    pool_size, mask, 0 if target != "predicted" else target)
            if first is None:
                first = maps[0].detach().cpu()
            maps = maps.double()
            totals.append(maps.sum(dim=(1, 2)).cpu())
            total += maps.sum(0)
            total_sq += (maps ** 2).sum(0)
            done += d
            bar.update(d)
    mean = total / n_draws
    var = ((total_sq - n_draws * mean ** 2) / (n_draws - 1)).clamp_min(0)
    return MonteCarloResult(mean=mean.cpu(), sem=(var / n_draws).sqrt().cpu(), n_draws=n_draws,
                            n_filters=n_filters, tau=tau, target=target, first=first,
                            draw_totals=torch.cat(totals))


def bound_check(mc: MonteCarloResult, bound: torch.Tensor, n_se: float = 3.0,
                region: torch.Tensor | None = None) -> dict:
    """Pixel-wise test of E[GC_ij] >= bound_ij from a Monte Carlo estimate.

    Over the pixels where the bound is positive (||m|| > 0; elsewhere GC and the bound are both
    exactly 0) and inside ``region`` (a boolean (h, w) mask, e.g. the unseen rows): a pixel
    *holds* when mean - n_se * SE >= bound, is *violated* when mean + n_se * SE < bound, and is
    *undecided* otherwise, so the fraction of pixels where the bound truly holds lies in
    ``frac_interval`` = [holds, 1 - violated]. Also the smallest ratio mean / bound, with its
    n_se-SE interval.
    """
    mean, sem, bound = mc.mean.double(), mc.sem.double(), bound.detach().cpu().double()
    if mean.shape != bound.shape:
        raise ValueError(f"Monte Carlo map {tuple(mean.shape)} and bound {tuple(bound.shape)} "
                         "differ in shape")
    active = bound > 0
    if region is not None:
        active &= region.cpu().bool()
    n = int(active.sum())
    if n == 0:
        raise ValueError("no pixel with a positive bound in the region: the image is blank there")
    lo, hi = mean - n_se * sem, mean + n_se * sem
    holds = (lo >= bound) & active
    violated = (hi < bound) & active
    ratio = mean[active] / bound[active]
    i = int(ratio.argmin())
    half = (n_se * sem[active] / bound[active])[i]
    return {
        "n_pixels": n,
        "frac_holds": int(holds.sum()) / n,
        "frac_violated": int(violated.sum()) / n,
        "frac_undecided": (n - int(holds.sum()) - int(violated.sum())) / n,
        # the true fraction of pixels where E[GC] >= bound lies here (each pixel at n_se SE)
        "frac_interval": (int(holds.sum()) / n, 1 - int(violated.sum()) / n),
        "min_ratio": float(ratio[i]),
        "min_ratio_ci": (float(ratio[i] - half), float(ratio[i] + half)),
        "min_z": float(((mean - bound) / sem.clamp_min(1e-300))[active].min()),
    }


# --------------------------------------------------------------------------- walls in real networks
# (paper 003, Section 3: the masked VGG and Table 1; "walls: experiments" chapter)

class RowWall(nn.Module):
    """Zero the last ``masked_rows`` rows of a feature map (N, C, H, W).

    A multiplication by a fixed 0/1 row mask, so the gradient reaching the wall's input in those
    rows is exactly 0 (0 * g), as behind the masked dense weights of paper 003's [VGG].
    """

    def __init__(self, masked_rows: int):
        super().__init__()
        if masked_rows < 0:
            raise ValueError(f"masked_rows must be >= 0, got {masked_rows}")
        self.masked_rows = int(masked_rows)

    def keep(self, height: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """The (height, 1) row mask: 1 on the visible rows, 0 on the masked ones."""
        if self.masked_rows >= height:
            raise ValueError(f"masked_rows={self.masked_rows} leaves no visible row of a "
                             f"{height}-row feature map; mask fewer rows")
        k = torch.ones(height, 1, device=device, dtype=dtype)
        if self.masked_rows:
            k[height - self.masked_rows:] = 0
        return k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.keep(x.shape[-2], x.device, x.dtype)

    def extra_repr(self) -> str:
        return f"masked_rows={self.masked_rows}"


class WalledLayer(nn.Module):
    """``wall(inner(x))``: a layer followed by a :class:`RowWall`. Target ``inner`` with a CAM:
    its activations are whole, and the gradient on its masked rows is exactly 0."""

    def __init__(self, inner: nn.Module, masked_rows: int):
        super().__init__()
        self.inner = inner
        self.wall = RowWall(masked_rows)

    def forward(self, x):
        return self.wall(self.inner(x))


class WalledModel(nn.Module):
    """A network with a wall built in: the last ``masked_rows`` rows of ``layer``'s output are
    zeroed before the rest of the network reads them (paper 003's masking, moved into any CNN).

    The model is copied (``copy=True``) and ``layer`` is replaced inside it by a
    :class:`WalledLayer`, so the mask is part of the forward pass and cannot be bypassed.
    ``target_layer`` names the layer to explain (the original layer, before the wall): its
    activations are intact and the gradient of every output there is exactly 0 in the masked
    rows. ``layer_name`` is the original layer's name in ``model``.
    """

    def __init__(self, model: nn.Module, layer: nn.Module | str, masked_rows: int,
                 copy: bool = True):
        super().__init__()
        import copy as _copy

        from lib.layers import layer_name, resolve_layer

        name = layer_name(model, resolve_layer(model, layer))
        if not name:
            raise ValueError("layer must be a sub-module of the model, not the model itself")
        net = _copy.deepcopy(model) if copy else model
        parent_name, _, attr = name.rpartition(".")
        parent = resolve_layer(net, parent_name) if parent_name else net
        inner = resolve_layer(net, name)
        if isinstance(parent, nn.Sequential) and attr.lstrip("-").isdigit():
            parent[int(attr)] = WalledLayer(inner, masked_rows)
        else:
            setattr(parent, attr, WalledLayer(inner, masked_rows))
        self.net = net
        self.layer_name = name
        self.masked_rows = int(masked_rows)
        self.target_layer = f"net.{name}.inner"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def masked_zone_rows(n_rows: int, masked_rows: int, size: int) -> slice:
    """Rows of a ``size``-row up-sampled map (bilinear, align_corners=False, as in the CAM
    post-processing) that receive no weight from a visible feature row: the image of the
    ``masked_rows`` masked rows of an ``n_rows``-row map. Computed by up-sampling the row mask."""
    if not 0 < masked_rows < n_rows:
        raise ValueError(f"masked_rows must be in (0, {n_rows}), got {masked_rows}")
    visible = torch.zeros(1, 1, n_rows, 1, dtype=torch.float64)
    visible[..., :n_rows - masked_rows, :] = 1
    up = F.interpolate(visible, size=(size, 1), mode="bilinear", align_corners=False)[0, 0, :, 0]
    dead = torch.nonzero(up == 0).flatten()
    if dead.numel() == 0:
        return slice(size, size)
    return slice(int(dead[0]), size)


def wall_scores(model: nn.Module, x: torch.Tensor, layer: nn.Module | str, methods,
                dead_rows: slice, feature_masked_rows: int, target=None, batch_size: int = 64,
                ) -> dict[str, dict[str, torch.Tensor]]:
    """Per image and per method, how much of a CAM falls where the model cannot look.

    For each method, from one raw map (N, h, w) at ``layer`` (:func:`lib.cam.compute`):
    ``mu_pgc``: mu of Eq. 7 over the input rows ``dead_rows`` of the map post-processed as the
    paper (pytorch-grad-cam: ReLU, per-image min-max, bilinear to the input size);
    ``mu_relu``: the same on relu(raw) up-sampled without normalisation; ``mu_feature``:
    Eq. 7 at the layer's own resolution, ||relu(raw)[masked rows]|| / ||relu(raw)|| over the last
    ``feature_masked_rows`` rows; ``max_feature``: max |raw| over those rows (exactly 0 for a
    map that ignores them). Also ``pred``: the predicted class. Values are fractions (x100 for
    the paper's table). Returns ``{method: {name: tensor (N,)}}`` plus ``{"pred": ...}``.
    """
    import lib.cam
    from lib.metrics import dead_zone_ratio

    methods = [methods] if isinstance(methods, str) else list(methods)
    size = tuple(x.shape[-2:])
    # a list of layers always gives the nested dict maps[method][layer_name]
    maps = lib.cam.compute(model, x, [layer], methods, target=target, batch_size=batch_size)
    name = next(iter(maps[methods[0]]))
    out: dict[str, dict[str, torch.Tensor]] = {}
    for m in methods:
        raw = maps[m][name].detach().float().cpu()
        h = raw.shape[-2]
        if not 0 < feature_masked_rows < h:
            raise ValueError(f"feature_masked_rows={feature_masked_rows} must be in (0, {h}) for "
                             f"the {h}-row map of layer {name!r}")
        feat = slice(h - feature_masked_rows, h)
        pgc = lib.cam.postprocess(raw, size, preset=lib.cam.PGC_PRESET)
        relu_up = lib.cam.postprocess(raw, size, relu=True, mode="bilinear", normalize="none")
        out[m] = {"mu_pgc": dead_zone_ratio(pgc, dead_rows),
                  "mu_relu": dead_zone_ratio(relu_up, dead_rows),
                  "mu_feature": dead_zone_ratio(raw.clamp(min=0), feat),
                  "max_feature": raw[:, feat].abs().flatten(1).amax(1)}
    with torch.no_grad():
        out["pred"] = {"class": model(x).argmax(1).cpu()}
    return out
