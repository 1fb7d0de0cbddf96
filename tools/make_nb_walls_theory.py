"""Write notebooks/03_walls_theory.ipynb (paper 003, Section 2), without outputs.

Run: python tools/make_nb_walls_theory.py
"""
from nbwriter import Notebook

_nb = Notebook()
md, code = _nb.md, _nb.code


md(r"""
# Walls: theory

Paper 003 (Taimeskhanov, Sicre, Garreau, *CAM-based methods can see through walls*), Section 2.
A one-convolution network whose dense layer cannot see the lower half of its feature maps, so
its logits do not depend on the lower part of the image, still gets positive Grad-CAM scores
there. The paper proves this at random initialisation: Proposition 2 gives Grad-CAM's
coefficients $\alpha$ in closed form, and Theorem 3 bounds the expected score of every pixel from
below. This chapter checks Proposition 2 against automatic differentiation, checks Theorem 3 by
Monte Carlo over thousands of random initialisations on a real Fashion-MNIST image, and redraws
Figure 3.
""")

code("""
profile = "default"   # "smoke" (seconds, CI), "default" (the book, CPU), "full" (more draws)
data_root = None      # folder with the Fashion-MNIST IDX files; None searches the usual places
device = "auto"
seed = 0
n_draws = None        # random initialisations per V for Theorem 3
n_filters = None      # the values of V checked against Theorem 3 (V > 20)
n_draws_predicted = None  # draws for the predicted-class variant
v_predicted = None    # its number of filters
image_index = None    # which Fashion-MNIST test image
""", tags=["parameters"])

code("""
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from lib.plot import mark_dead_zone

import lib.cam
import lib.notebook
from lib import walls
from lib.data.fashion_mnist import CLASSES, load_fashion_mnist
from lib.models.cnn003 import mnist_cnn003

cfg = lib.notebook.setup(
    profile, device=device, seed=seed,
    sizes={"n_draws": {"smoke": 400, "default": 2000, "full": 20000},
           "n_filters": {"smoke": (64,), "default": (25, 64, 256),
                         "full": (21, 25, 32, 64, 128, 256, 512, 1024, 2048)},
           "n_draws_predicted": {"smoke": 200, "default": 1000, "full": 10000},
           "v_predicted": {"smoke": 64, "default": 256, "full": 1024},
           "image_index": {"smoke": 0, "default": 0, "full": 0},
           "prop2_filters": {"smoke": 32, "default": 256, "full": 256}},
    given={"n_draws": n_draws, "n_filters": n_filters, "n_draws_predicted": n_draws_predicted,
           "image_index": image_index, "v_predicted": v_predicted})
t_start = time.perf_counter()
print(cfg)
""")

md(r"""
## The model: [CNN] of Section 2, masked

$\xi \in [0,1]^{H\times W}$ (here 28 x 28 padded to 29 x 29, one row on top and one column on
the right as in the authors' code), $A = \mathcal{C}(\xi) \in \mathbb{R}^{V\times h\times w}$
(Eq. 1, $k = 2$, no bias, $h = w = 28$), $B = \sigma(A)$, $C = \mathcal{M}(B) \in
\mathbb{R}^{V\times h'\times w'}$ (2 x 2 max-pool, $h' = w' = 14$), then $L$ dense layers
(Eq. 3). The paper's set-up: $V = 256$, $L = 1$ (`Linear(256*14*14, 10, bias=False)`), all
weights i.i.d. $\mathcal{N}(0, 1)$, and the last 7 of the 14 rows of $W$ set to 0. The model
multiplies a fixed mask into $W$ in every forward pass, so the masked weights stay at 0 through
training or reloading. Grad-CAM's layer is `relu`, whose output is $B$.
""")

code("""
gen = torch.Generator().manual_seed(cfg.seed)
model = mnist_cnn003(n_filters=256, generator=gen).double()
print(model)
print(f"B rows >= {model.feature_dead_row} (of {model.conv_size[0]}) reach only masked weights; "
      f"input rows >= {model.input_dead_row} (of {model.input_size[0]}) cannot change the logits")
""")

md("""
The wall, checked: replacing every input row from `input_dead_row` on with noise leaves the
logits bit-identical, while changing the last row above it does not.
""")

code("""
images, labels = load_fashion_mnist("test", data_root)
x = (images[:8].double() / 255).unsqueeze(1)
x_dead = x.clone()
x_dead[:, :, model.input_dead_row:] = torch.rand_like(x_dead[:, :, model.input_dead_row:])
x_seen = x.clone()
x_seen[:, :, model.input_dead_row - 1] += 0.5
with torch.no_grad():
    y, y_dead, y_seen = model(x), model(x_dead), model(x_seen)
print("dead-zone noise changes the logits:", not torch.equal(y, y_dead))
print("a change in the last seen row changes them by up to", float((y - y_seen).abs().max()))
assert torch.equal(y, y_dead)
assert not torch.allclose(y, y_seen)
""")

md(r"""
## Proposition 2: the closed form of $\alpha$

$$\alpha = \frac{1}{hw}\sum_{i,j=1}^{h',w'}\sum_{i_1,\ldots,i_{L-1}}
\mathbb{1}_{a^{(1)}_{i_1},\ldots,a^{(L-1)}_{i_{L-1}}>0}\prod_{p=1}^{L} W^{(p)}_{i_p,i_{p-1}},
\qquad i_0 = (i,j),\ i_L = c,$$

per filter $v$. For $L = 1$ it is $\frac{1}{hw}$ times the sum of $W$'s row $c$ over channel
$v$, whatever the image. It is compared, in float64, with autograd's
$\mathrm{GAP}(\partial y_c / \partial B^{(v)})$ (`walls.gradcam_alpha_autograd`) and with the
Grad-CAM map of the library's CAM engine (`lib.cam.compute`, $\sum_v \alpha_v B^{(v)}$), for
$L = 1$ (the paper's set-up) and $L = 3$ (two hidden ReLU layers, where the indicators depend on
the image), on eight Fashion-MNIST test images and their predicted classes.
""")

code("""
rows = []
for L, hidden in ((1, ()), (3, (128, 64))):
    m = mnist_cnn003(n_filters=cfg.prop2_filters, hidden=hidden,
                     generator=torch.Generator().manual_seed(cfg.seed + L)).double()
    closed = walls.gradcam_alpha_closed_form(m, x)
    auto = walls.gradcam_alpha_autograd(m, x)
    with torch.no_grad():
        b = m.features(x)
    engine = lib.cam.compute(m, x, "relu", method="gradcam").detach()
    rows.append({"L": L, "V": cfg.prop2_filters, "images": len(x),
                 "max |alpha|": float(auto.abs().max()),
                 "max |closed - autograd|": float((closed - auto).abs().max()),
                 "max |closed-form map - lib.cam map|":
                     float((torch.einsum("nv,nvij->nij", closed, b) - engine).abs().max())})
prop2 = pd.DataFrame(rows)
display(prop2)
assert (prop2["max |closed - autograd|"] < 1e-10).all()
assert (prop2["max |closed-form map - lib.cam map|"] < 1e-10).all()
""")

md(r"""
## Theorem 3: the expected Grad-CAM score is positive everywhere, walls included

For $L = 1$, $h'$ even, $W_{:, -h'/2:, :} = 0$, filters and unmasked weights i.i.d.
$\mathcal{N}(0, \tau^2)$ and $V > 20$, for every pixel $(i, j)$ of the $h \times w$ map
(Definition 1: after the ReLU, before any up-sampling or normalisation),

$$\mathbb{E}\big[[\mathrm{GC}]_{i,j}\big] \ge \frac{V-20}{\sqrt V}\sqrt{\frac{h'w'}{16\pi}}
\frac{\tau^2}{hw}\lVert m\rVert_2, \qquad m = \xi_{i:i+k-1,\,j:j+k-1},$$

$m$ being the $k \times k$ patch of the (padded) input that $B_{i,j}$ sees. The expectation is
over the initialisation, for one fixed output logit (here class 0; only that row of $W$ matters).
The proof (Appendix D) also gives the expectation exactly, Eq. 11:
$\mathbb{E}[\mathrm{GC}_{ij}] = \frac{\tau}{2hw\sqrt\pi}\sqrt{h'w'}\,\mathbb{E}\sqrt{Y}$ with
$Y = \tau^2\lVert m\rVert^2 \sum_{q\le V}(Z_q^+)^2$; $\mathbb{E}\sqrt{Y}$ has a closed form
(the number of positive $Z_q$ is Binomial($V$, 1/2), and given it the sum is $\chi^2$), so the
Monte Carlo can be checked against the exact value, not only against the bound.

The Monte Carlo draws the filters and $W$ afresh for each initialisation and computes $\alpha$
by autograd (batched over draws, `walls.ensemble_gradcam`, which the tests match draw by draw
against the model above), so it does not rely on Proposition 2. **Test per pixel:** the bound
*holds* at a pixel when the Monte Carlo mean minus 3 standard errors is still above it, is
*violated* when the mean plus 3 standard errors is below it, and is *undecided* otherwise,
so the fraction of pixels where the bound truly holds lies between the fraction that hold and one
minus the fraction violated (the table's interval); pixels with $\lVert m\rVert = 0$ (blank patches, where both sides are exactly 0) are left out.
Pixels share $\alpha$ within a draw, so their errors are correlated; the map-wide comparison with
Eq. 11 uses the standard error of each draw's summed map instead.
""")

code("""
image = images[cfg.image_index].double() / 255
xi = model.pad(image[None, None])[0, 0]  # the conv input of the theorem, 29 x 29
h, w = model.conv_size
unseen = torch.zeros(h, w, dtype=torch.bool)
unseen[model.feature_dead_row:] = True
print(f"image {cfg.image_index}: {CLASSES[int(labels[cfg.image_index])]}, "
      f"{int((walls.patch_norms(xi, 2) > 0).sum())} of {h * w} map pixels see a non-blank patch")

results, rows = {}, []
for V in cfg.n_filters:
    t0 = time.perf_counter()
    mc = walls.monte_carlo_gradcam(xi, V, cfg.n_draws, tau=1.0, target=0, seed=cfg.seed + V,
                                   device=cfg.device)
    seconds = time.perf_counter() - t0
    bound = walls.theorem3_bound(xi, V)
    exact = walls.theorem3_expectation(xi, V).double()
    every, walled = walls.bound_check(mc, bound), walls.bound_check(mc, bound, region=unseen)
    ratio_total = float(mc.mean.sum() / exact.sum())
    se_total = mc.total_sem / float(exact.sum())
    results[V] = dict(mc=mc, bound=bound, exact=exact, every=every, walled=walled)
    rows.append({
        "V": V, "draws": mc.n_draws, "pixels tested": every["n_pixels"],
        "bound holds (all)": every["frac_holds"], "violated (all)": every["frac_violated"],
        "undecided (all)": every["frac_undecided"],
        "holding fraction, 3-SE interval": "[{:.3f}, {:.3f}]".format(*every["frac_interval"]),
        "pixels tested (unseen rows)": walled["n_pixels"],
        "bound holds (unseen rows)": walled["frac_holds"],
        "min mean/bound": every["min_ratio"],
        "min mean/bound, 3 SE": "[{:.2f}, {:.2f}]".format(*every["min_ratio_ci"]),
        "exact/bound (Eq. 11)": float((exact / bound)[bound > 0].min()),
        "MC/exact, map-wide": f"{ratio_total:.3f} ± {3 * se_total:.3f}",
        "seconds": round(seconds, 1),
        "paper (Theorem 3)": "E[GC_ij] >= bound at every pixel, for every V > 20",
    })
theorem3 = pd.DataFrame(rows)
display(theorem3)
""")

md(r"""
Every pixel that sees something, in the unseen rows as everywhere else, has a mean Grad-CAM
score significantly above the bound, as the theorem says; the Monte Carlo mean also matches the
exact expectation of Eq. 11. The bound is loosest for small $V$ (the factor $(V-20)$) and
tightens towards $\mathbb{E}/\text{bound} \to \sqrt2$ for large $V$: the proof's Chebyshev step
costs the $(1 - 20/V)$ and the step $\sqrt{Y} \ge \sqrt{\mathbb{E}Y/2}$ costs the $\sqrt 2$.
""")

code("""
for V, r in results.items():
    mc, exact = r["mc"], r["exact"]
    z_map = ((mc.mean - exact) / mc.sem)[r["bound"] > 0]
    assert r["every"]["frac_holds"] == 1.0 and r["every"]["frac_violated"] == 0.0, (V, r["every"])
    assert r["walled"]["frac_holds"] == 1.0, (V, r["walled"])
    assert abs(float(mc.mean.sum() - exact.sum())) < 4 * mc.total_sem, V
    assert float((z_map.abs() < 4).double().mean()) > 0.95, V
""")

code("""
fig, axes = plt.subplots(len(results), 3, figsize=(10, 3.2 * len(results)), squeeze=False)
for row, (V, r) in zip(axes, results.items()):
    mean, bound = r["mc"].mean.numpy(), r["bound"].numpy()
    ratio = np.where(bound > 0, mean / np.where(bound > 0, bound, 1), np.nan)
    vmax = float(mean.max())
    for ax, img, title, kw in (
            (row[0], mean, f"V={V}: mean GC over {r['mc'].n_draws} draws", dict(vmax=vmax)),
            (row[1], bound, "Theorem 3 bound", dict(vmax=vmax)),
            (row[2], ratio, "mean / bound (blank patches white)",
             dict(cmap="viridis", vmin=1, vmax=np.nanmax(ratio)))):
        im = ax.imshow(img, cmap=kw.pop("cmap", "magma"), vmin=kw.pop("vmin", 0), **kw)
        mark_dead_zone(ax, model.feature_dead_row, w, h, label=None, hatch="//")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
fig.suptitle("Theorem 3 on Fashion-MNIST: the unseen rows (red) get the same expected score")
fig.tight_layout()
plt.show()
""")

md(r"""
### The predicted class (the authors' code)

The authors' Figure 3 code explains the *predicted* class (`targets=None`). Then the explained
row of $W$ is chosen by the logits, so $\alpha$ is no longer independent of $B$ and the theorem's
argument does not apply; the same Monte Carlo shows what happens then (not a claim of the paper,
so only the measured numbers are shown).
""")

code("""
V_pred = cfg.v_predicted
mc_pred = walls.monte_carlo_gradcam(xi, V_pred, cfg.n_draws_predicted, target="predicted",
                                    seed=cfg.seed + 1, device=cfg.device)
bound_pred = walls.theorem3_bound(xi, V_pred)
check_pred = walls.bound_check(mc_pred, bound_pred)
display(pd.DataFrame([{
    "V": V_pred, "draws": mc_pred.n_draws, "target": "predicted class",
    "bound holds (all)": check_pred["frac_holds"],
    "violated (all)": check_pred["frac_violated"],
    "MC/exact (fixed-class Eq. 11), map-wide":
        float(mc_pred.mean.sum() / walls.theorem3_expectation(xi, V_pred).sum())}]))
""")

md(r"""
## Figure 3: one initialisation

The paper's Figure 3: the masked [CNN] ($V = 256$, $L = 1$, everything $\mathcal{N}(0,1)$) at one
random initialisation, Grad-CAM for the predicted class as the authors' code does, on the
$28 \times 28$ map $B$ (left: Definition 1, before up-sampling) and up-sampled onto the padded
image with pytorch-grad-cam's post-processing (right). The network cannot see the red part.
""")

code("""
fig3_model = mnist_cnn003(n_filters=256, generator=torch.Generator().manual_seed(cfg.seed)).double()
x1 = image[None, None]
signed = lib.cam.compute(fig3_model, x1, "relu", method="gradcam").detach()
gc = torch.relu(signed)[0]
shown = lib.cam.postprocess(signed, size=tuple(xi.shape), preset="pytorch-grad-cam")[0]
share = float(gc[model.feature_dead_row:].norm() / gc.norm())
predicted = int(fig3_model(x1).argmax())

fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
axes[0].imshow(xi, cmap="gray")
mark_dead_zone(axes[0], model.input_dead_row + model.padding[2], xi.shape[1], xi.shape[0], hatch="//")
axes[0].set_title(f"input ({CLASSES[int(labels[cfg.image_index])]}), padded to 29x29")
axes[1].imshow(gc, cmap="jet")
mark_dead_zone(axes[1], model.feature_dead_row, w, h, hatch="//")
axes[1].set_title(f"Grad-CAM on B (28x28), class {predicted}")
axes[2].imshow(xi, cmap="gray")
axes[2].imshow(shown, cmap="jet", alpha=0.6)
mark_dead_zone(axes[2], model.input_dead_row + model.padding[2], xi.shape[1], xi.shape[0], hatch="//")
axes[2].set_title("up-sampled, min-max (pytorch-grad-cam)")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()
print(f"share of the map's L2 norm in the unseen rows: {100 * share:.1f} %")
print(f"pixels with a positive score in the unseen rows: "
      f"{int((gc[model.feature_dead_row:] > 0).sum())} of {gc[model.feature_dead_row:].numel()}")
assert (gc[model.feature_dead_row:] > 0).any()  # Figure 3's claim: the wall does not stop it
""")

code("""
print(f"profile {cfg.profile}: notebook body ran in {time.perf_counter() - t_start:.0f} s")
""")

_nb.write("03_walls_theory.ipynb")
