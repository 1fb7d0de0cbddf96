"""lib.plot: the shared figure style, display names, grey attributions, compressed photo grids."""

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from lib import cam, plot  # noqa: E402


@pytest.fixture(autouse=True)
def _style():
    with matplotlib.rc_context():
        plot.style()
        yield
    plt.close("all")


def test_every_method_has_a_distinct_display_name():
    labels = [plot.method_label(m) for m in cam.METHODS]
    assert len(set(labels)) == len(cam.METHODS)
    assert plot.method_label("gradcam++") == "Grad-CAM++"
    assert plot.method_label("hirescam") == "HiResCAM"
    assert set(plot.INPUT_ATTRIBUTIONS) <= set(cam.METHODS)
    with pytest.raises(ValueError, match=re.escape("unknown method 'gradcam+'")):
        plot.method_label("gradcam+")


def test_attribution_image_clips_at_the_percentile_by_hand():
    a = np.array([[0.0, -1.0], [2.0, 100.0]])
    # |a| = 0, 1, 2, 100; the 50th percentile is (1 + 2) / 2 = 1.5
    out = plot.attribution_image(a, percentile=50)
    np.testing.assert_allclose(out, [[0.0, 1 / 1.5], [1.0, 1.0]])
    # channels are summed in absolute value, first or last axis
    chw = torch.tensor(
        [[[1.0, 0.0], [0.0, 0.0]], [[-1.0, 0.0], [0.0, 0.0]], [[2.0, 4.0], [0.0, 8.0]]]
    )  # (3, 2, 2): |sums| 4, 4, 0, 8
    expected = [[0.5, 0.5], [0.0, 1.0]]
    np.testing.assert_allclose(plot.attribution_image(chw, 100), expected)
    np.testing.assert_allclose(plot.attribution_image(chw.permute(1, 2, 0), 100), expected)
    with pytest.raises(ValueError, match="cannot tell the colour axis"):
        plot.attribution_image(np.zeros((3, 5, 3)))
    assert plot.attribution_image(np.zeros((2, 2))).max() == 0
    with pytest.raises(ValueError, match="NaN"):
        plot.attribution_image(np.array([[np.nan, 1.0]]))


def _photos(n=2, size=64, seed=0):
    g = np.random.default_rng(seed)
    return [g.random((size, size, 3)) for _ in range(n)]


def _maps(methods, n=2, size=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.rand(n, size, size, generator=g) for m in methods}


def test_a_grid_of_all_methods_stays_legible_in_the_text_column():
    fig = plot.method_grid(_photos(), _maps(cam.METHODS), row_labels=["chelsea", "coffee"])
    assert fig.get_figwidth() * fig.dpi <= plot.TEXT_COLUMN_PX + 1
    assert plot.text_px_on_screen(fig) >= 9.0
    titles = {ax.get_title() for ax in fig.panel_axes}
    assert {"Grad-CAM++", "Integrated\nGradients", "image"} <= titles
    assert "gradcam++" not in titles


def test_the_old_layout_fails_the_legibility_measure():
    """16 panels of 1.6 in with 8 pt titles, as before: ~3 px titles once scaled to the column."""
    fig, axes = plt.subplots(1, 16, figsize=(1.6 * 16, 1.6))
    axes[0].set_title("gradcam++", fontsize=8)
    px = plot.text_px_on_screen(fig)
    assert px == pytest.approx(8 * 100 / 72 * 750 / 2560)
    assert px < 9


def test_method_grid_shows_input_attributions_in_grey_and_adds_one_colour_bar():
    fig = plot.method_grid(_photos(1), _maps(["gradcam", "integratedgradients"], n=1))
    gray = [im for ax in fig.panel_axes for im in ax.get_images() if im.get_cmap().name == "gray"]
    assert len(gray) == 1  # the attribution, not the photograph (RGB)
    cbars = [ax for ax in fig.axes if plot._is_colorbar(ax)]
    assert len(cbars) == 1 and cbars[0] not in fig.panel_axes


def test_mark_dead_zone_over_a_grid_leaves_the_colour_bar_alone_and_labels_readably():
    fig = plot.method_grid(_photos(1), _maps(["gradcam"], n=1))
    for ax in fig.axes:  # what the chapters do
        plot.mark_dead_zone(ax, 40, 64, 64)
    cbar = next(ax for ax in fig.axes if plot._is_colorbar(ax))
    assert not cbar.patches
    label = next(t for t in fig.panel_axes[0].texts if t.get_text() == "unseen")
    assert label.get_color() == "black" and label.get_bbox_patch().get_facecolor()[:3] == (1, 1, 1)


def test_show_sends_a_jpeg_much_lighter_than_png(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig = plot.method_grid(
        _photos(4, 128), _maps(["gradcam", "hirescam", "eigencam"], n=4, size=128)
    )
    png = io.BytesIO()
    fig.savefig(png, format="png")
    assert plot.show(fig) is None  # the cell's value would be displayed again
    (img,) = shown
    assert img.format == "jpeg"
    assert img.data[:2] == b"\xff\xd8"
    assert len(img.data) < len(png.getvalue()) / 2
    assert Image.open(io.BytesIO(img.data)).width <= plot.TEXT_COLUMN_PX + 20
    assert not plt.get_fignums()  # closed: the inline backend does not send a PNG as well


def test_interval_plot_draws_means_and_sd_by_hand():
    df = pd.DataFrame(
        {
            "method": ["gradcam"] * 4 + ["hirescam"] * 4,
            "iou": [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.7, 0.9],
        }
    )
    ax = plot.interval_plot(df, "method", "iou", errorbar="sd")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.25, 0.65])
    # mean -+ sample SD: gradcam sd = sqrt(0.05 / 3), hirescam sd = sqrt(0.11 / 3)
    lo, hi = ax.lines[1].get_ydata()[3:5]
    assert (lo, hi) == pytest.approx((0.25 - np.sqrt(0.05 / 3), 0.25 + np.sqrt(0.05 / 3)))
    lo, hi = ax.lines[2].get_ydata()[3:5]
    assert (lo, hi) == pytest.approx((0.65 - np.sqrt(0.11 / 3), 0.65 + np.sqrt(0.11 / 3)))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Grad-CAM", "HiResCAM"]
    with pytest.raises(ValueError, match="NaN"):
        plot.interval_plot(df.assign(iou=[np.nan] + [0.1] * 7), "method", "iou")


def test_style_keeps_default_text_above_nine_pixels():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set(title="t", xlabel="x")
    assert fig.get_figwidth() * fig.dpi == plot.TEXT_COLUMN_PX
    assert plot.text_px_on_screen(fig) >= 9.0


def test_existing_helpers_keep_working():
    fig, axes = plt.subplots(1, 3)
    img = plot.as_image(torch.rand(3, 8, 8))
    im = plot.overlay(
        axes[0], img, torch.rand(8, 8), boxes=[[1, 1, 4, 4]], title="x", colorbar_label="saliency"
    )
    assert im is not None and len(fig.axes) == 4
    plot.signed_map(axes[1], torch.randn(4, 4), title="raw")
    plot.draw_boxes(axes[2], np.array([[0, 0, 2, 2, 1]]), labels=["cat"])
    assert axes[2].texts[0].get_text() == "cat"


def test_draw_boxes_puts_edges_on_pixel_borders_by_hand():
    # pixel j covers [j - 0.5, j + 0.5]: a box over pixels 1..2 has edges at 0.5 and 2.5
    fig, ax = plt.subplots()
    plot.draw_boxes(ax, [[1, 1, 3, 3]])  # x_max exclusive
    plot.draw_boxes(ax, [[1, 1, 2, 2]], color="red", inclusive=True)  # the last pixel inside
    edges = [(p.get_x(), p.get_y(), p.get_width(), p.get_height()) for p in ax.patches]
    assert edges == [(0.5, 0.5, 2.0, 2.0), (0.5, 0.5, 2.0, 2.0)]
    plt.close(fig)


def test_verdict_figure_draws_estimate_interval_rule_and_paper_by_hand():
    from lib import report
    from lib import verdict as V

    c = report.Claims("07_gradcam_localization", "smoke")
    c.add(
        "a",
        "nagy",
        "Table 1",
        "s",
        0.30,
        kind="paper",
        tier="stand-in",
        verdict=V.Verdict(V.HOLDS, 0.5, 0.4, 0.65, 0.2, "r", "m", 10, 0.1),
    )
    c.add("b", "nagy", "Eq. 1", "identity", kind="check", verdict=V.check(1e-7, 1e-5, rule="r"))
    c.add(
        "c",
        "nagy",
        "Table 1",
        "full only",
        0.3,
        kind="paper",
        tier="paper-data",
        verdict=V.not_run("r", "profile full"),
    )
    fig = plot.verdict_figure(c.rows)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 1  # the check and the claim not run here have no interval to draw
    ax = axes[0]
    (bar,) = [coll for coll in ax.collections]  # the error bar from 0.4 to 0.65 at y = 0
    (seg,) = bar.get_segments()
    np.testing.assert_allclose(seg, [[0.4, 0.0], [0.65, 0.0]])
    xs = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() in ("--", "-"))
    assert xs == pytest.approx([0.2, 0.3])  # the rule's boundary and the paper's number
    assert plot.verdict_figure(c.rows[1:]) is None


# --- plot.figure: the one way a figure reaches the page -------------------------------------------


@pytest.fixture
def glued(monkeypatch):
    """What plot.figure glues, by name (myst-nb's glue replaced by a recorder)."""
    import myst_nb

    out = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, obj, display=True: out.setdefault(name, obj))
    return out


def test_figure_refuses_six_pixel_text_and_names_the_fix(glued):
    fig, ax = plt.subplots(figsize=(5, 2))  # narrower than the column: shown at full size
    ax.plot([0, 1], [0, 1])
    ax.tick_params(labelsize=9)
    ax.set_title("Grad-CAM", fontsize=4.32)  # 4.32 pt x 100 dpi / 72 = 6.0 px
    with pytest.raises(
        plot.FigureError,
        match=r"figure 'fig-raw': its smallest text \('Grad-CAM', "
        r"4.32 pt\) is 6.0 px on screen, under 9 px.*"
        r"fewer panels per row",
    ):
        plot.figure(fig, "fig-raw")
    assert "fig-raw" not in glued and not plt.get_fignums()  # refused and closed


def test_figure_refuses_a_grid_too_wide_for_the_column(glued):
    """Twelve 1.45-inch panels titled at 9 pt (12.5 px) are scaled to the column: under 9 px."""
    fig, axes = plt.subplots(1, 12, figsize=(17.4, 1.5))
    for ax in axes:
        ax.imshow(_photos(1, 8)[0])
        ax.set_title("Grad-CAM", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    with pytest.raises(plot.FigureError, match=r"'fig-grid'.* is [5-8]\.\d px on screen"):
        plot.figure(fig, "fig-grid")
    fig, axes = plt.subplots(3, 4, figsize=(5.8, 4.5))  # the same twelve panels in three rows
    for ax in axes.ravel():
        ax.imshow(_photos(1, 8)[0])
        ax.set_title("Grad-CAM", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    plot.figure(fig, "fig-grid")
    assert glued["fig-grid"].metadata["lib.plot"]["text_px"] == pytest.approx(12.5)


def test_figure_refuses_text_a_phone_would_shrink_below_six_pixels(glued):
    """On a 390 px phone every figure is scaled to the 358 px column (0.48 of 750 px): 8 pt text
    on a full-width figure is 11.1 px at 1366 px, readable, but 5.3 px on the phone."""

    def full_width(pt, inches=7.3):
        fig, ax = plt.subplots(figsize=(inches, 2))  # saved with 0.1 inch of margin each side
        ax.set_position([0, 0, 1, 1])  # nothing for bbox_inches="tight" to crop
        ax.set_axis_off()
        ax.text(0.5, 0.5, "Grad-CAM", fontsize=pt, ha="center")
        return fig

    fig = full_width(8)
    assert plot.text_px_on_screen(fig) == pytest.approx(8 * 100 / 72)  # 11.1 px: passes at 1366
    assert plot.text_px_on_screen(fig, plot.PHONE_COLUMN_PX, width_px=750) == pytest.approx(
        8 * 100 / 72 * 358 / 750
    )
    with pytest.raises(
        plot.FigureError,
        match=r"figure 'fig-phone': its smallest text "
        r"\('Grad-CAM', 8 pt\) is 5\.3 px on screen, under "
        r"6 px: the 750 px wide image is scaled to a "
        r"phone's 358 px column",
    ):
        plot.figure(fig, "fig-phone")
    assert "fig-phone" not in glued
    with pytest.raises(plot.FigureError, match=r"is 5\.97 px on screen, under 6 px"):
        plot.figure(full_width(9), "fig-phone")  # 12.5 px x 358 / 750 = 5.97 px
    plot.figure(full_width(9, 7.2), "fig-phone")  # 740 px: 12.5 px x 358 / 740 = 6.05 px
    record = glued["fig-phone"].metadata["lib.plot"]
    assert (record["width_px"], record["text_px"], record["phone_text_px"]) == (740, 12.5, 6.05)
    # a grid saved wider than the column is shrunk further on the phone: 9 pt at 1000 px is 4.5 px
    fig, axes = plt.subplots(1, 10, figsize=(10, 1.5))
    for ax in axes:
        ax.set_title("Grad-CAM", fontsize=9)
        ax.set_axis_off()
    with pytest.raises(plot.FigureError, match=r"under 6 px.*phone's 358 px column.*more rows"):
        plot.figure(fig, "fig-wide-grid")


def test_figure_measures_the_saved_image_not_the_figure_size(glued):
    """A 7.5-inch figure whose colour bar label sticks out is saved wider than the column."""
    fig, ax = plt.subplots(figsize=(7.5, 2))
    ax.set_title("t", fontsize=9)  # 12.5 px unscaled
    ax.text(1.6, 0.5, "x" * 60, transform=ax.transAxes, fontsize=9)  # widens the tight bbox
    assert plot.text_px_on_screen(fig) == pytest.approx(12.5)
    with pytest.raises(plot.FigureError, match="px wide image is scaled"):
        plot.figure(fig, "fig-wide")


def test_figure_refuses_a_heat_map_without_its_colour_bar(glued):
    heat = np.arange(16.0).reshape(4, 4)
    fig, axes = plt.subplots(1, 3, figsize=(6, 2))
    axes[0].imshow(_photos(1, 8)[0])  # a photograph: RGB, needs no scale
    axes[1].imshow(heat, cmap="gray")  # a grey picture: no scale either
    im = axes[2].imshow(heat, cmap="jet")
    axes[2].set_title("Grad-CAM")
    assert plot.heat_maps_without_colorbar(fig) == ["panel 'Grad-CAM' (jet)"]
    with pytest.raises(
        plot.FigureError,
        match=r"'fig-heat': heat maps without a colour bar: "
        r"panel 'Grad-CAM' \(jet\).*plot\.colorbar",
    ):
        plot.figure(fig, "fig-heat")
    fig, ax = plt.subplots(figsize=(3, 3))
    im = ax.imshow(heat, cmap="jet")
    plot.colorbar(ax, im, "saliency")
    assert plot.heat_maps_without_colorbar(fig) == []
    plot.figure(fig, "fig-heat")
    assert "fig-heat" in glued
    # a bar in another colour map does not explain it
    fig, axes = plt.subplots(1, 2, figsize=(5, 2))
    axes[0].imshow(heat, cmap="jet")
    plot.colorbar(axes[1], axes[1].imshow(heat, cmap="RdBu_r"))
    assert plot.heat_maps_without_colorbar(fig) == ["panel 'axes 0' (jet)"]


def test_figure_glues_the_image_with_its_width_and_closes_it(glued):
    fig = plot.method_grid(_photos(2), _maps(["gradcam", "hirescam", "integratedgradients"]))
    plot.figure(fig, "fig-grid", format="jpg")
    img = glued["fig-grid"]
    assert img.format == "jpeg" and img.data[:2] == b"\xff\xd8"
    width, height = Image.open(io.BytesIO(img.data)).size
    # the width goes with the image: Sphinx then links the shown image to the full-size file
    assert img.width == width <= plot.TEXT_COLUMN_PX + 20
    assert img.metadata["lib.plot"]["width_px"] == width
    assert img.metadata["lib.plot"]["text_px"] >= 9
    assert not plt.get_fignums()
    with pytest.raises(plot.FigureError, match="figure name 'Grid 1'"):
        plot.figure(plt.figure(), "Grid 1")
    with pytest.raises(plot.FigureError, match="format must be 'png' or 'jpg'"):
        plot.figure(plt.figure(), "fig-x", format="gif")
    with pytest.raises(plot.FigureError, match="expected a matplotlib Figure"):
        plot.figure(np.zeros((4, 4)), "fig-x")


GOOD = """Some prose.

```{glue:figure} fig-steps
:alt: Four panels: the activations, the channel weights, their sum and the map over the photo.
:name: fig-steps

Grad-CAM step by step: $\\alpha_k^c$ weighs each channel.

A legend paragraph.
```
"""


def test_figure_markup_reads_caption_alt_and_name():
    (d,) = plot.figure_directives(GOOD).items()
    assert d[0] == "fig-steps"
    assert d[1]["caption"] == "Grad-CAM step by step: $\\alpha_k^c$ weighs each channel."
    assert d[1]["options"]["alt"].startswith("Four panels")
    assert plot.check_figure_markup(GOOD, glued=["fig-steps"]) == []


@pytest.mark.parametrize(
    "edit, problem",
    [
        (
            (
                ":alt: Four panels: the activations, the channel weights, their sum and the map over the "
                "photo.\n",
                "",
            ),
            "':alt:' must say in words",
        ),
        (
            (
                "Four panels: the activations, the channel weights, their sum and the map over the photo.",
                "_build/jupyter_execute/3f2a9c.png",
            ),
            "no file name",
        ),
        (
            (
                "Four panels: the activations, the channel weights, their sum and the map over the photo.",
                "steps figure",
            ),
            "at least four words",
        ),
        ((":name: fig-steps\n", ""), "no ':name:'"),
        (
            (
                "Grad-CAM step by step: $\\alpha_k^c$ weighs each channel.\n\nA legend paragraph.\n",
                "",
            ),
            "fig-steps: no caption",
        ),
    ],
)
def test_figure_markup_fails_on_each_missing_part(edit, problem):
    bad = GOOD.replace(*edit)
    assert bad != GOOD
    problems = plot.check_figure_markup(bad)
    assert len(problems) == 1 and problem in problems[0], problems


def test_figure_markup_fails_on_a_glued_figure_never_placed():
    assert plot.check_figure_markup(GOOD, glued=["fig-steps", "fig-erf"]) == [
        "fig-erf: glued by plot.figure but placed by no {glue:figure} directive"
    ]


def test_signed_grid_divides_each_map_by_its_largest_absolute_value_and_shares_one_bar():
    maps = {
        "gradcam": torch.tensor([[[2.0, -1.0], [0.0, 0.5]]]),
        "hirescam": torch.tensor([[[-4.0, 1.0], [2.0, 0.0]]]),
    }
    fig = plot.signed_grid(maps, ["coffee"])
    a, b = (ax.get_images()[0].get_array() for ax in fig.panel_axes)
    np.testing.assert_allclose(a, [[1.0, -0.5], [0.0, 0.25]])
    np.testing.assert_allclose(b, [[-1.0, 0.25], [0.5, 0.0]])
    assert plot.heat_maps_without_colorbar(fig) == []
    assert [ax.get_ylabel() for ax in fig.panel_axes] == ["Grad-CAM", "HiResCAM"]
    with pytest.raises(ValueError, match="NaN"):
        plot.signed_grid({"gradcam": torch.tensor([[[np.nan]]])}, ["x"])
    # nine methods by eight photographs fit the column at 9 pt
    nine = _maps(
        [
            "cam",
            "gradcam",
            "gradcam++",
            "xgradcam",
            "hirescam",
            "layercam",
            "counterfactual",
            "eigencam",
            "ablationcam",
        ],
        n=8,
        size=7,
    )
    fig = plot.signed_grid(nine, [f"photo{i}" for i in range(8)])
    assert fig.get_figwidth() * fig.dpi <= plot.TEXT_COLUMN_PX
    assert plot.text_px_on_screen(fig) >= 9


def test_ours_and_paper_draws_dots_whiskers_and_diamonds_by_hand():
    fig, ax = plt.subplots()
    plot.ours_and_paper(ax, [0, 1], [10.0, 20.0], [2.0, np.nan], [12.0, 18.0], "red", "o", "p")
    (dots, _, bars), diamonds = ax.containers[0], ax.lines[-1]
    np.testing.assert_allclose(np.asarray(dots.get_ydata(), float), [10.0, 20.0])
    np.testing.assert_allclose(np.asarray(diamonds.get_ydata(), float), [12.0, 18.0])
    assert diamonds.get_marker() == "D" and diamonds.get_markerfacecolor() == "none"
    # whiskers: 10 ± 2 at x = 0; a NaN spread draws none (zero length) at x = 1
    segs = bars[0].get_segments()
    np.testing.assert_allclose(segs[0], [[0, 8], [0, 12]])
    np.testing.assert_allclose(segs[1], [[1, 20], [1, 20]])
    assert [t.get_text() for t in ax.legend().get_texts()] == ["p", "o"]
    plt.close(fig)
