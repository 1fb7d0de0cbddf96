"""Figures the chapters share, in one style: maps over images, boxes, signed raw maps, dead zones,
colour bars, grey input attributions, statistical plots (seaborn) and compressed photo grids.

Every figure of the book goes to the page through ``figure(fig, name)``: it refuses a figure whose
text would be under 9 px on screen or whose heat map has no colour bar, and glues it (myst-nb) for
a ``{glue:figure}`` directive that gives it its number, caption, alt text and a link to the
full-size image (see ``figure``'s docstring; ``check_figure_markup`` checks the directive).

A chapter calls ``style()`` once; figures are then drawn for the book's ~750 px text column at
100 dpi (7.5 inches wide), so that 9 pt text is ~12 px on screen and no text is below ~9 px. On a
phone (390 px window) the column is 358 px and every figure is scaled to it: a full-width figure's
9 pt text is then ~6 px, the least ``figure`` accepts there, so figure text is 9 pt or more, a
figure is at most ~7.3 inches wide, and a grid that would need smaller text gets fewer panels per
row.
Photo grids go out as JPEG through ``show(fig)`` to keep each page under ~2.5 MB.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle
from PIL import Image as PILImage

from .verdict import NOT_RUN, OUTCOME_COLOURS

__all__ = [
    "style",
    "method_label",
    "METHOD_LABELS",
    "INPUT_ATTRIBUTIONS",
    "as_image",
    "overlay",
    "draw_boxes",
    "signed_map",
    "mark_dead_zone",
    "method_grid",
    "signed_grid",
    "colorbar",
    "shared_colorbar",
    "attribution_image",
    "show",
    "text_px_on_screen",
    "interval_plot",
    "verdict_figure",
    "TEXT_COLUMN_PX",
    "DPI",
    "MIN_TEXT_PX",
    "PHONE_COLUMN_PX",
    "MIN_PHONE_TEXT_PX",
    "figure",
    "FigureError",
    "heat_maps_without_colorbar",
    "figure_directives",
    "check_figure_markup",
]

#: width of the book's text column (px) and the figure resolution: a 7.5-inch figure fills it
TEXT_COLUMN_PX = 750
DPI = 100
#: the smallest figure text a reader should meet on screen (px)
MIN_TEXT_PX = 9.0
#: width of the text column on a 390 px phone (px; measured in headless Chromium, and
#: tests/test_book_browser.py fails if the book's column gets narrower), where every figure is
#: scaled down to fit: 0.48 of the 750 px column
PHONE_COLUMN_PX = 358
#: the smallest figure text on that phone (px): 9 pt (12.5 px) on a figure saved up to ~745 px wide
MIN_PHONE_TEXT_PX = 6.0

#: display names of every method of lib.cam.METHODS
METHOD_LABELS = {
    "cam": "CAM",
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "hirescam": "HiResCAM",
    "layercam": "LayerCAM",
    "counterfactual": "Counterfactual Grad-CAM",
    "eigencam": "Eigen-CAM",
    "scorecam": "Score-CAM",
    "ablationcam": "Ablation-CAM",
    "guidedbackprop": "Guided Backprop",
    "guidedgradcam": "Guided Grad-CAM",
    "integratedgradients": "Integrated Gradients",
    "occlusion": "Occlusion",
    "gradientshap": "GradientSHAP",
}
#: methods whose result is an attribution of the input pixels (shown in grey, not as an overlay)
INPUT_ATTRIBUTIONS = (
    "guidedbackprop",
    "guidedgradcam",
    "integratedgradients",
    "occlusion",
    "gradientshap",
)


def style(figure_format: str = "png") -> None:
    """Set the book's figure style (rcParams): 7.5-inch figures at 100 dpi, 9-11 pt text, no top
    or right spines. ``figure_format="jpeg"`` makes the notebook's inline figures JPEG too (for a
    chapter that is mostly photographs); line plots stay sharper as PNG."""
    mpl.rcParams.update(
        {
            "figure.figsize": (7.5, 3.6),
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.labelsize": 10,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "legend.fontsize": 9,
            "figure.titlesize": 11,
            "legend.title_fontsize": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.interpolation": "nearest",
            "savefig.bbox": "tight",
            "figure.constrained_layout.use": False,
        }
    )
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats(figure_format)
    except Exception:  # not in a kernel with the inline backend (scripts, tests): nothing to set
        pass


def method_label(method: str) -> str:
    """The name a reader sees: ``"gradcam++"`` -> ``"Grad-CAM++"``."""
    try:
        return METHOD_LABELS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; known: {sorted(METHOD_LABELS)}") from None


def _title(key, wrap: int = 12) -> str:
    """The panel title of a map: a method's display name (long ones on two lines), else the key."""
    label = METHOD_LABELS.get(key, str(key))
    return label.replace(" ", "\n", 1) if len(label) > wrap and " " in label else label


def _np(x) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def as_image(x, mean=None, std=None) -> np.ndarray:
    """A displayable (H, W, 3) or (H, W) float array in [0, 1] from a tensor (C, H, W) (undoing
    the normalisation ``mean``/``std`` if given) or an array (H, W[, 3])."""
    if isinstance(x, torch.Tensor):
        t = x.detach().float().cpu()
        if mean is not None:
            t = t * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
        arr = t.permute(1, 2, 0).numpy() if t.dim() == 3 else t.numpy()
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
    else:
        arr = np.asarray(x, dtype=np.float32)
        if arr.max() > 1.5:
            arr = arr / 255.0
    return np.clip(arr, 0, 1)


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def draw_boxes(
    ax,
    boxes,
    color="lime",
    lw=1.5,
    labels: Sequence[str] | None = None,
    inclusive: bool = False,
) -> None:
    """Boxes (K, 4+) as (x_min, y_min, x_max, y_max), x_max exclusive (pixel edges), or, with
    ``inclusive``, the last pixel inside the box (ILSVRC's and ``lib.metrics``' boxes)."""
    if _is_colorbar(ax):
        return
    for k, b in enumerate(np.asarray(boxes, dtype=float).reshape(-1, np.shape(boxes)[-1])):
        x0, y0, x1, y1 = b[:4] + np.array([0, 0, int(inclusive), int(inclusive)])
        ax.add_patch(
            Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=color, lw=lw)
        )
        if labels is not None:
            ax.text(
                x0,
                y0,
                labels[k],
                color="black",
                fontsize=9,
                va="bottom",
                bbox=dict(facecolor=color, alpha=0.85, edgecolor="none", pad=1),
            )


def colorbar(ax, mappable, label: str | None = None, orientation: str = "vertical"):
    """A colour bar beside ``ax`` for ``mappable`` (what ``imshow`` returned), its ticks at 9 pt."""
    cb = ax.figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.03, orientation=orientation)
    cb.ax.tick_params(labelsize=9)
    if label:
        cb.set_label(label, fontsize=9)
    return cb


def overlay(
    ax,
    image,
    heat=None,
    boxes=None,
    alpha=0.5,
    cmap="jet",
    title=None,
    vmax=None,
    colorbar_label: str | None = None,
):
    """The image with a non-negative heat map (same H, W) over it, and boxes. Returns the heat
    map's image (for ``colorbar``), or None without a heat map; ``colorbar_label`` adds one."""
    ax.imshow(image, cmap="gray" if np.ndim(image) == 2 else None)
    im = None
    if heat is not None:
        h = _np(heat)
        im = ax.imshow(
            h,
            cmap=cmap,
            alpha=alpha,
            vmin=0,
            vmax=vmax if vmax is not None else max(float(h.max()), 1e-12),
        )
        if colorbar_label is not None:
            colorbar(ax, im, colorbar_label)
    if boxes is not None:
        draw_boxes(ax, boxes)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def signed_map(ax, raw, title=None, cmap="RdBu_r", colorbar_label: str | None = None):
    """A raw, signed map at its own resolution, with a colour scale centred on zero."""
    r = _np(raw)
    lim = max(float(np.abs(r).max()), 1e-12)
    im = ax.imshow(r, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    if colorbar_label is not None:
        colorbar(ax, im, colorbar_label)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def signed_grid(
    maps: dict,
    col_labels: Sequence[str],
    title: str | None = None,
    cell: float = 0.95,
    cmap: str = "RdBu_r",
):
    """Raw, signed maps (method -> (N, h, w)) at their own resolution: one row per method (its
    display name on the left), one column per image (``col_labels`` on top), each map divided by
    its own largest absolute value, so that one shared colour bar from -1 to 1 reads every panel
    (red: for the class, blue: against). Columns are sized to fit the text column. ``fig.panel_axes``
    lists the map panels."""
    methods = list(maps)
    n = len(col_labels)
    if not methods or n == 0:
        raise ValueError("signed_grid needs at least one method and one image")
    for m in methods:
        if len(maps[m]) != n:
            raise ValueError(f"signed_grid: {m!r} has {len(maps[m])} maps for {n} column labels")
    width = min(cell * n + 1.6, TEXT_COLUMN_PX / DPI)
    side = (width - 1.6) / n
    fig, axes = plt.subplots(
        len(methods), n, figsize=(width, side * len(methods) + 1.0), squeeze=False
    )
    im = None
    for r, m in enumerate(methods):
        for c in range(n):
            raw = _np(maps[m][c]).astype(np.float64)
            if not np.isfinite(raw).all():
                raise ValueError(
                    f"signed_grid: the {m!r} map of {col_labels[c]!r} holds NaN or infinite values"
                )
            top = float(np.abs(raw).max())
            im = axes[r, c].imshow(
                raw / top if top > 0 else raw, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest"
            )
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(str(col_labels[c]), fontsize=9)
        axes[r, 0].set_ylabel(_title(m), fontsize=9, rotation=0, ha="right", va="center")
    fig.panel_axes = list(fig.axes)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    cb = fig.colorbar(
        im,
        ax=fig.panel_axes,
        orientation="horizontal",
        fraction=0.03,
        pad=0.02,
        aspect=40,
        shrink=0.8,
    )
    cb.set_label(
        "raw value as a share of the map's largest |value| (red: for the class, blue: against)",
        fontsize=9,
    )
    cb.ax.tick_params(labelsize=9)
    return fig


def attribution_image(attr, percentile: float = 99, channels: str = "auto") -> np.ndarray:
    """An input attribution as a grey image in [0, 1]: |attribution| summed over the colour
    channels ((C, H, W) or (H, W, C) with C = 1 or 3; ``channels="first"``/``"last"`` where the
    shape cannot tell), divided by its ``percentile``-th percentile and clipped at 1, so that a
    few extreme pixels do not make the rest invisible."""
    a = np.abs(_np(attr).astype(np.float64))
    if a.ndim == 3:
        first, last = a.shape[0] in (1, 3), a.shape[-1] in (1, 3)
        if channels == "auto":
            if first == last:
                raise ValueError(
                    f"attribution of shape {a.shape}: cannot tell the colour axis; "
                    "pass channels='first' or 'last'"
                )
            channels = "first" if first else "last"
        if channels not in ("first", "last"):
            raise ValueError(f"channels must be 'auto', 'first' or 'last', got {channels!r}")
        a = a.sum(0) if channels == "first" else a.sum(-1)
    elif a.ndim != 2:
        raise ValueError(f"attribution of shape {a.shape}: expected (H, W), (C, H, W) or (H, W, C)")
    if not np.isfinite(a).all():
        raise ValueError("the attribution holds NaN or infinite values; check the method's input")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    top = float(np.percentile(a, percentile))
    if top <= 0:
        top = float(a.max())
    return np.clip(a / top, 0, 1) if top > 0 else np.zeros_like(a)


def mark_dead_zone(
    ax,
    first_row: float,
    width: float,
    height: float,
    color="red",
    alpha=0.25,
    label="unseen",
    hatch=None,
):
    """Shade the rows from ``first_row`` to the bottom: the part of the input the model cannot see.
    The label is drawn in black on a light patch so that it reads over any colour."""
    if _is_colorbar(ax):
        return
    ax.add_patch(
        Rectangle(
            (-0.5, first_row - 0.5),
            width,
            height - first_row,
            facecolor=color,
            alpha=alpha,
            lw=0,
            hatch=hatch,
            edgecolor=color,
        )
    )
    ax.axhline(first_row - 0.5, color=color, lw=1.2)
    if label:
        ax.text(
            1,
            height - 2,
            label,
            color="black",
            fontsize=9,
            va="bottom",
            bbox=dict(facecolor="white", alpha=0.85, edgecolor=color, pad=1.5),
        )


def method_grid(
    images: Sequence,
    maps: dict,
    boxes: Sequence | None = None,
    row_labels: Sequence[str] | None = None,
    size: float = 1.6,
    alpha=0.5,
    max_cols: int = 6,
    colorbar_label: str | None = "saliency (min-max)",
    percentile: float = 99,
    cmap: str = "jet",
):
    """Rows of images, one panel per method, each map over its image (maps (N, H, W)).

    Methods are titled by ``method_label``; input attributions (``INPUT_ATTRIBUTIONS``) are shown
    as grey images clipped at ``percentile``. At most ``max_cols`` panels per row: more methods
    wrap into further blocks of rows (each block starts with the images again), so that the figure
    stays within the 7.5-inch text column and its titles stay legible. A shared colour bar for the
    overlays is added unless ``colorbar_label`` is None. ``fig.panel_axes`` lists the image and map
    panels (not the colour bar).
    """
    methods = list(maps)
    n = len(images)
    if n == 0 or not methods:
        raise ValueError("method_grid needs at least one image and one method")
    per_block = max(1, max_cols - 1)
    blocks = [methods[i : i + per_block] for i in range(0, len(methods), per_block)]
    ncols = min(len(methods), per_block) + 1
    # the saved image (0.1 inch of margin each side, the row labels to the left) fits the column
    avail = TEXT_COLUMN_PX / DPI - 0.25 - (0.45 if row_labels is not None else 0.0)
    cell = min(size, avail / ncols)
    fig, axes = plt.subplots(
        n * len(blocks), ncols, figsize=(cell * ncols, cell * n * len(blocks) + 0.4), squeeze=False
    )
    heat = None
    for b, block in enumerate(blocks):
        for i, img in enumerate(images):
            row = axes[b * n + i]
            bx = None if boxes is None else boxes[i]
            overlay(row[0], img, None, bx, title="image" if i == 0 else None)
            if row_labels is not None:
                row[0].set_ylabel(row_labels[i], fontsize=9)
            for j, m in enumerate(block):
                ax = row[j + 1]
                if m in INPUT_ATTRIBUTIONS:
                    ax.imshow(
                        attribution_image(maps[m][i], percentile), cmap="gray", vmin=0, vmax=1
                    )
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if i == 0:
                        ax.set_title(_title(m), fontsize=9)
                else:
                    im = overlay(
                        ax,
                        img,
                        maps[m][i],
                        bx,
                        alpha=alpha,
                        cmap=cmap,
                        title=_title(m) if i == 0 else None,
                    )
                    heat = heat or im
            for ax in row[len(block) + 1 :]:
                fig.delaxes(ax)  # not in fig.axes: chapters loop over fig.axes to mark panels
    fig.panel_axes = list(fig.axes)
    fig.tight_layout()
    if colorbar_label is not None and heat is not None:
        # one bar for all overlays: each map is drawn on its own 0..max scale, so the bar reads
        # as "share of the map's maximum"
        shared_colorbar(
            fig,
            f"{colorbar_label}, as a share of each map's maximum",
            cmap=cmap,
            axes=fig.panel_axes,
        )
    return fig


def ours_and_paper(
    ax, xs, ours, sd, paper, color, ours_label: str, paper_label: str, ms: float = 5
) -> None:
    """One network's row of a paper-against-ours figure at positions ``xs``: our values as
    filled dots with ± ``sd`` whiskers (NaN: no whisker), the paper's as open diamonds, both in
    ``color``."""
    ax.errorbar(
        xs,
        ours,
        yerr=np.nan_to_num(np.asarray(sd, dtype=float)),
        fmt="o",
        color=color,
        capsize=3 + (ms > 5),
        ms=ms,
        label=ours_label,
    )
    ax.plot(xs, paper, "D", mfc="none", ms=ms + 1, mec=color, mew=1.4, label=paper_label)


def shared_colorbar(
    fig, label: str, cmap: str = "jet", vmin: float = 0.0, vmax: float = 1.0, axes=None
):
    """One horizontal colour bar under ``axes`` (default: every axes of ``fig``) for maps that are
    all drawn on the same ``vmin``..``vmax`` scale of ``cmap`` (maps scaled per panel to [0, 1],
    as ``overlay`` draws them). Call it after ``fig.tight_layout()``. Returns the colour bar."""
    sm = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(vmin, vmax), cmap=cmap)
    cb = fig.colorbar(
        sm,
        ax=list(fig.axes) if axes is None else list(axes),
        orientation="horizontal",
        fraction=0.04,
        pad=0.02,
        aspect=40,
        shrink=0.8,
    )
    cb.set_label(label, fontsize=9)
    cb.ax.tick_params(labelsize=9)
    return cb


def _texts(fig) -> list:
    """The figure's visible, non-empty text objects (titles, labels, tick labels, legends)."""
    return [t for t in fig.findobj(mpl.text.Text) if t.get_visible() and t.get_text().strip()]


def text_px_on_screen(
    fig, column_px: float = TEXT_COLUMN_PX, width_px: float | None = None
) -> float:
    """The height (px) on screen of the figure's smallest visible text when the figure is shown
    at most ``column_px`` wide (the book scales wider images down to the column). ``width_px``:
    the width of the image as saved (``bbox_inches="tight"`` may crop or widen it), else the
    figure's own width."""
    fig.canvas.draw()
    width_px = fig.get_figwidth() * fig.dpi if width_px is None else width_px
    scale = min(1.0, column_px / width_px)
    sizes = [t.get_fontsize() for t in _texts(fig)]
    if not sizes:
        return float("inf")
    return min(sizes) * fig.dpi / 72 * scale


#: colour maps that draw a picture (a grey photograph, a mask), not a quantity to be read off a scale
GREY_MAPS = ("gray", "grey", "Greys", "Greys_r", "gray_r", "binary", "binary_r", "gist_gray")


class FigureError(ValueError):
    """A figure the book refuses: text too small to read, a heat map without its scale, a bad name."""


def heat_maps_without_colorbar(fig) -> list[str]:
    """The heat maps of ``fig`` that no colour bar explains, as "panel 'title' (cmap)" strings.

    A heat map is an image of one value per pixel drawn through a colour map other than grey
    (``GREY_MAPS``: photographs, masks and grey attributions are pictures); it is explained by a
    colour bar of the figure that uses the same colour map (its own bar, or one shared bar)."""
    bars = [ax._colorbar for ax in fig.axes if _is_colorbar(ax)]
    bar_maps = {cb.mappable.get_cmap().name for cb in bars}
    missing = []
    for i, ax in enumerate(fig.axes):
        if _is_colorbar(ax):
            continue
        for im in list(ax.get_images()) + [
            c for c in ax.collections if isinstance(c, mpl.collections.QuadMesh)
        ]:
            arr = im.get_array()
            if arr is None or np.ndim(arr) != 2:
                continue  # an RGB(A) photograph
            name = im.get_cmap().name
            if name in GREY_MAPS or name in bar_maps:
                continue
            title = ax.get_title() or ax.get_title("left") or f"axes {i}"
            missing.append(f"panel {title.replace(chr(10), ' ')!r} ({name})")
    return missing


_FIGURE_NAME = re.compile(r"fig-[a-z0-9][a-z0-9-]*")
_FORMATS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg"}


def figure(
    fig,
    name: str,
    *,
    format: str = "png",
    quality: int = 85,
    min_text_px: float = MIN_TEXT_PX,
    column_px: float = TEXT_COLUMN_PX,
    min_phone_text_px: float = MIN_PHONE_TEXT_PX,
    phone_column_px: float = PHONE_COLUMN_PX,
) -> None:
    """Put ``fig`` on the page: every figure of the book goes through here.

    It checks the figure and refuses it (``FigureError``, naming the figure and the fix) when

    - its smallest text would be under ``min_text_px`` (9 px) on screen once the saved image is
      scaled to the ``column_px`` (750 px) text column of a 1366 px window (``text_px_on_screen``):
      draw fewer panels per row, a narrower figure or a larger font;
    - its smallest text would be under ``min_phone_text_px`` (6 px) once the image is scaled to the
      ``phone_column_px`` (358 px) column of a 390 px phone, where every figure is shown at the
      column's width: 9 pt on a figure saved up to ~745 px wide passes, 8 pt does not; use 9 pt
      or more on a figure of at most ~7.3 inches, or split a wide grid into more rows;
    - a heat map (one value per pixel through a colour map that is not grey) has no colour bar
      with its colour map (``heat_maps_without_colorbar``; add ``colorbar(ax, im, label)``).

    It then saves the figure (PNG, or ``format="jpg"`` for photographs, to keep a page light),
    glues it under ``name`` (myst-nb; nothing is displayed in the cell) with its pixel width, so
    that the book links the shown image to its full-size file, and closes it. Returns None.

    The chapter's Markdown places it with a numbered, captioned figure (the caption is the
    paragraph; ``:alt:`` says what the figure shows to a reader who cannot see it; ``:name:``
    numbers it and lets ``{numref}`` cite it)::

        plot.figure(chapter.plot_steps(steps, image), "fig-steps")   # in a code cell

        ```{glue:figure} fig-steps
        :alt: Four panels: the activations, the weights, their sum and the map over the photograph.
        :name: fig-steps

        Grad-CAM step by step on one photograph.
        ```

    ``check_figure_markup(text)`` lists what such a directive lacks (tests/test_notebooks.py runs
    it over every chapter).
    """
    if not isinstance(fig, mpl.figure.Figure):
        raise FigureError(
            f"figure {name!r}: expected a matplotlib Figure, got {type(fig).__name__}"
        )
    if not isinstance(name, str) or not _FIGURE_NAME.fullmatch(name):
        raise FigureError(
            f"figure name {name!r}: use 'fig-' and lower-case letters, digits and "
            "'-' (it is both the glue key and the figure's label)"
        )
    fmt = _FORMATS.get(str(format).lower())
    if fmt is None:
        raise FigureError(f"figure {name!r}: format must be 'png' or 'jpg', got {format!r}")
    buf = io.BytesIO()
    kwargs = {"pil_kwargs": {"quality": quality}} if fmt == "jpeg" else {}
    fig.savefig(buf, format=fmt, dpi=fig.dpi, bbox_inches="tight", facecolor="white", **kwargs)
    data = buf.getvalue()

    width, height = PILImage.open(io.BytesIO(data)).size
    px = text_px_on_screen(fig, column_px, width_px=width)
    phone_px = text_px_on_screen(fig, phone_column_px, width_px=width)
    for shown, least, where in (
        (px, min_text_px, f"the {column_px:g} px text column"),
        (phone_px, min_phone_text_px, f"a phone's {phone_column_px:g} px column"),
    ):
        if shown < least:
            smallest = min(_texts(fig), key=lambda t: t.get_fontsize())
            plt.close(fig)
            raise FigureError(
                f"figure {name!r}: its smallest text ({smallest.get_text()[:40]!r}, "
                f"{smallest.get_fontsize():g} pt) is "
                f"{shown:.{1 if round(shown, 1) < least else 2}f} px on screen, under {least:g} px: "
                f"the {width} px wide image is scaled to {where}. Use 9 pt text or more, draw "
                "fewer panels per row (more rows) or a narrower figure"
            )
    missing = heat_maps_without_colorbar(fig)
    if missing:
        plt.close(fig)
        raise FigureError(
            f"figure {name!r}: heat maps without a colour bar: {', '.join(missing)}; "
            "add plot.colorbar(ax, im, label) beside each, or one shared bar"
        )
    # lazy: optional: only inside a notebook
    from IPython.display import Image

    record = {
        "text_px": round(px, 2),
        "phone_text_px": round(phone_px, 2),
        "width_px": width,
        "height_px": height,
    }
    img = Image(data=data, format=fmt, width=width, metadata={"lib.plot": record})
    plt.close(fig)
    try:
        from myst_nb import glue as _glue
    except ImportError:  # a kernel without myst-nb (Colab): show it, as the book would
        from IPython.display import display

        display(img)
        return None
    _glue(name, img, display=False)
    return None


_DIRECTIVE = re.compile(
    r"^(`{3,}|:{3,})\{glue:figure\}[ \t]*(\S*)[ \t]*\n(.*?)^\1[ \t]*$", re.M | re.S
)
_PATHLIKE = re.compile(r"(^|[\s/\\])[\w.-]+\.(png|jpe?g|svg|gif|webp)\b|^[\w./\\-]+$", re.I)


def figure_directives(text: str) -> dict[str, dict]:
    """The ``{glue:figure}`` directives of a MyST text: {glue key: {"options": {...},
    "caption": str}} (the caption is the body's first paragraph)."""
    found = {}
    for m in _DIRECTIVE.finditer(text):
        options, body = {}, []
        for line in m.group(3).splitlines():
            if not body and line.startswith(":") and ":" in line[1:]:
                key, _, value = line[1:].partition(":")
                options[key.strip()] = value.strip()
            else:
                body.append(line)
        caption = "\n".join(body).strip().split("\n\n")[0].strip()
        found[m.group(2)] = {"options": options, "caption": caption}
    return found


def check_figure_markup(text: str, glued: Sequence[str] = ()) -> list[str]:
    """What the figure directives of a MyST text lack, one line per problem (empty: none).

    Each ``{glue:figure}`` needs a caption (its first paragraph), ``:alt:`` text of at least four
    words that is not a file name, and ``:name:`` (numbered, citable); each name in ``glued``
    (the names given to ``figure`` by the code cells) needs a directive."""
    problems = []
    directives = figure_directives(text)
    for key, d in directives.items():
        alt, opts = d["options"].get("alt", ""), d["options"]
        if not key:
            problems.append("a {glue:figure} directive without its glue key")
        if not d["caption"]:
            problems.append(f"{key}: no caption (the paragraph under the options)")
        if len(alt.split()) < 4 or _PATHLIKE.search(alt):
            problems.append(
                f"{key}: ':alt:' must say in words what the figure shows "
                f"(at least four words, no file name), got {alt!r}"
            )
        if not opts.get("name"):
            problems.append(f"{key}: no ':name:' (the figure's label: numbered and citable)")
    for key in glued:
        if key not in directives:
            problems.append(
                f"{key}: glued by plot.figure but placed by no {{glue:figure}} directive"
            )
    return problems


def show(fig, format: str = "jpg", quality: int = 85, close: bool = True) -> None:
    """Display ``fig`` as a compressed image (JPEG by default, or "webp"/"png") and close it, so
    that a grid of photographs weighs tens of kB, not MB. Returns None (a returned image would be
    displayed a second time as the cell's value)."""
    # lazy: optional: only inside a notebook
    from IPython.display import Image, display

    fmt = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}.get(format.lower())
    if fmt is None:
        raise ValueError(f"format must be 'jpg', 'webp' or 'png', got {format!r}")
    buf = io.BytesIO()
    kwargs = {"pil_kwargs": {"quality": quality}} if fmt in ("jpeg", "webp") else {}
    if fmt == "webp":
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=fig.dpi, bbox_inches="tight", facecolor="white")
        PILImage.open(png).convert("RGB").save(buf, format="WEBP", quality=quality)
        data = buf.getvalue()
        img = Image(data=data, format="webp")
    else:
        fig.savefig(buf, format=fmt, dpi=fig.dpi, bbox_inches="tight", facecolor="white", **kwargs)
        img = Image(data=buf.getvalue(), format=fmt)
    if close:
        plt.close(fig)
    display(img)


def interval_plot(
    df,
    x: str,
    y: str,
    hue: str | None = None,
    ax=None,
    errorbar=("ci", 95),
    n_boot: int = 1000,
    seed: int = 0,
    label_methods: bool = True,
):
    """Means of ``y`` per ``x`` (and ``hue``) with their intervals over the rows (seeds, images):
    seaborn's point plot, a 95 % bootstrap interval by default (``errorbar="sd"`` for mean ± SD).
    Method names on the x axis or in the legend are shown by their display names."""
    # lazy: seaborn costs ~1.5 s to import; only this figure needs it
    import seaborn as sns

    for col in (x, y) + ((hue,) if hue else ()):
        if col not in df.columns:
            raise ValueError(f"interval_plot: no column {col!r} (columns: {list(df.columns)})")
    if df[y].isna().any():
        raise ValueError(
            f"interval_plot: {int(df[y].isna().sum())} NaN values in {y!r}; drop or "
            "explain them first"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.2))
    sns.pointplot(
        data=df,
        x=x,
        y=y,
        hue=hue,
        ax=ax,
        errorbar=errorbar,
        n_boot=n_boot,
        seed=seed,
        dodge=0.3 if hue else False,
        linestyle="none",
        capsize=0.15,
        markersize=5,
        err_kws={"linewidth": 1.2},
    )
    if label_methods:
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        if ticks and all(t in METHOD_LABELS for t in ticks):
            ax.set_xticks(
                ax.get_xticks(), [METHOD_LABELS[t] for t in ticks], rotation=30, ha="right"
            )
        leg = ax.get_legend()
        if leg is not None:
            for t in leg.get_texts():
                t.set_text(METHOD_LABELS.get(t.get_text(), t.get_text()))
    return ax


def verdict_figure(rows, kinds: Sequence[str] = ("paper", "finding"), ncols: int = 3):
    """The chapter's verdicts drawn with their intervals: one small panel per claim (of ``kinds``)
    with a number and an interval, our estimate with its 95 % interval (the colour of its
    outcome, named in the panel's title), the rule's boundary as a dashed line (an equivalence
    rule's band shaded) and the paper's number, where it gives one on the same scale, as a solid
    line. Returns the figure, or ``None`` when no claim has an
    interval to draw."""
    drawn = [
        c
        for c in rows
        if c.kind in kinds and c.verdict.outcome != NOT_RUN and not c.verdict.unmeasured
    ]
    if not drawn:
        return None
    ncols = max(1, min(ncols, len(drawn)))
    nrows = -(-len(drawn) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.2, 1.45 * nrows + 0.3), squeeze=False)
    for ax in axes.ravel()[len(drawn) :]:
        ax.set_visible(False)
    for ax, c in zip(axes.ravel(), drawn):
        v = c.verdict
        colour = OUTCOME_COLOURS[v.outcome]
        ax.errorbar(
            [v.estimate],
            [0],
            xerr=[[v.estimate - v.low], [v.high - v.estimate]],
            fmt="o",
            color=colour,
            capsize=4,
            markersize=5,
            linewidth=1.5,
        )
        lines = []
        xs = [v.low, v.high]
        if v.tolerance is not None and v.boundary is not None:  # an equivalence band
            ax.axvspan(v.boundary - v.tolerance, v.boundary + v.tolerance, color="0.85", zorder=0)
            xs += [v.boundary - v.tolerance, v.boundary + v.tolerance]
        elif v.boundary is not None:
            lines.append((v.boundary, "--"))
        pv = c.paper_value
        if isinstance(pv, (int, float)) and not isinstance(pv, bool) and np.isfinite(pv):
            lines.append((float(pv), "-"))
        for x, ls in lines:
            ax.axvline(x, color="0.35", linestyle=ls, linewidth=1)
        xs += [x for x, _ in lines]
        span = (max(xs) - min(xs)) or max(abs(v.estimate), 1.0) * 0.2
        ax.set_xlim(min(xs) - 0.15 * span, max(xs) + 0.15 * span)
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        name = c.claim_id if len(c.claim_id) <= 20 else c.claim_id[:19] + "…"  # titles apart
        ax.set_title(f"{name}: {v.outcome}", fontsize=9, loc="left", color=colour)
        ax.tick_params(axis="x", labelsize=9)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
    handles = [
        plt.Line2D([], [], color="0.35", linestyle="--", label="the rule's boundary"),
        mpl.patches.Patch(color="0.85", label="the rule's band (≈ claims)"),
        plt.Line2D([], [], color="0.35", linestyle="-", label="the paper's number"),
        plt.Line2D([], [], color="0.2", marker="o", linestyle="-", label="ours, 95 % interval"),
    ]
    # two columns: four in a row made the legend, and the saved image, wider than the text column
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=2,
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1), h_pad=1.6)
    return fig
