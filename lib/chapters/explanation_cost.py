"""Chapter "What an explanation costs": every method's time and its forward and backward passes,
counted with hooks, as a multiple of one no-grad forward pass, beside pytorch-grad-cam's and
Captum's, measured side by side in interleaved rounds (``lib.bench``'s protocol); what each
lever of the engine's fast path gives; why Grad-CAM costs about one forward pass, Score-CAM K,
and Ablation-CAM, split at its layer, little more than one."""
from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import bench, cam

__all__ = ["CHAPTER", "SIZES", "COST", "METHODS", "GRADIENT_CAMS", "REFERENCES",
           "cost_model", "method_kwargs", "count_passes", "measure", "lever_table",
           "layer_channels", "summary", "targets", "times_view", "passes_view", "levers_view",
           "flops", "cost_figure", "GRADIENT_BOUND", "SCORECAM_TARGET", "ABLATION_TARGET"]

CHAPTER = "09_explanation_cost"

#: every method the engine has, in the order of the tables
METHODS = ["cam", "gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "counterfactual",
           "eigencam", "guidedbackprop", "guidedgradcam", "scorecam", "ablationcam",
           "occlusion", "integratedgradients", "gradientshap"]
#: the layer methods that need one backward pass (``cam.GRADIENT_METHODS``)
GRADIENT_CAMS = list(cam.GRADIENT_METHODS)
#: which other library has each method, and as what (a class of pytorch-grad-cam or Captum)
REFERENCES = {
    **{m: [("pytorch-grad-cam", c)] for m, c in bench.PGC_CLASSES.items()},
    "gradcam": [("pytorch-grad-cam", "GradCAM"), ("Captum", "LayerGradCam")],
    "guidedbackprop": [("Captum", "GuidedBackprop")],
    "guidedgradcam": [("Captum", "GuidedGradCam")],
    **{m: [("Captum", c)] for m, c in bench.CAPTUM_CLASSES.items()},
}

#: per profile: the architecture (torchvision, random weights), image size, images per call,
#: target layer, interleaved rounds (of the methods bound by forward passes, of the others),
#: the methods, the batch of masked inputs / ablations /
#: occlusions, the steps of Integrated Gradients (half as many Gradient SHAP samples); the
#: lever table's methods, variants (``lib.bench.LEVER_VARIANTS``), batches and rounds
SIZES = {
    "model": {"smoke": "resnet18", "default": "resnet18", "full": "resnet50"},
    "size": {"smoke": 32, "default": 112, "full": 224},
    "n_images": {"smoke": 1, "default": 1, "full": 4},
    "layer": {"smoke": "layer2", "default": "layer4", "full": "layer4"},
    "repeats": {"smoke": 1, "default": 3, "full": 5},
    "cheap_repeats": {"smoke": 2, "default": 15, "full": 20},
    "methods": {"smoke": ["gradcam", "hirescam", "scorecam", "ablationcam", "occlusion"],
                "default": METHODS, "full": METHODS},
    "cam_batch": {"smoke": 64, "default": 64, "full": 128},
    "ig_steps": {"smoke": 4, "default": 16, "full": 32},
    "lever_methods": {"smoke": ["scorecam"], "default": ["scorecam"],
                      "full": ["scorecam", "occlusion"]},
    "lever_variants": {"smoke": ["fast path", "plain (no lever)"],
                       "default": [v for v in bench.LEVER_VARIANTS if v != "with inference_mode"],
                       "full": list(bench.LEVER_VARIANTS)},
    "lever_batches": {"smoke": [], "default": [], "full": [32, 512]},
    "lever_repeats": {"smoke": 1, "default": 3, "full": 5},
}
COST = {"smoke": "under a minute on a CPU",
        "default": "3 to 4 minutes on a quiet 2-core CPU (Score-CAM and pytorch-grad-cam's "
                   "Ablation-CAM: ~500 forward passes each, every round)",
        "full": "a few minutes on one GPU"}

#: what the engine promises (issue #15): gradient CAMs at most this many forward passes ...
GRADIENT_BOUND = 1.3
#: ... Score-CAM at least this much faster than pytorch-grad-cam's, Ablation-CAM this much
SCORECAM_TARGET = 1.5
ABLATION_TARGET = 10.0


def cost_model(name: str, seed: int = 0, device="cpu") -> nn.Module:
    """torchvision's ``name`` with random weights and random batch-norm statistics, in eval mode
    (``lib.bench.bench_model``): a pass costs the same whatever the weights."""
    return bench.bench_model(name, seed, device)


def method_kwargs(method: str, size: int, ig_steps: int) -> dict:
    """The Captum arguments of a method, the same for the engine and for Captum: occlusion
    windows of 1/8 of the image, stride half a window (the windows per pass: the engine's own,
    ``cam_batch // N`` for Captum); ``ig_steps`` steps of Integrated Gradients, half as many
    Gradient SHAP samples."""
    kw = bench.captum_kwargs(method, size)
    if method == "integratedgradients":
        kw["n_steps"] = ig_steps
    if method == "gradientshap":
        kw["n_samples"] = max(1, ig_steps // 2)
    return kw


def _head(model: nn.Module) -> nn.Module:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear: count_passes needs the "
                         "classifier to count the passes of the layers above the target")
    return linears[-1]


def count_passes(model: nn.Module, fn: Callable[[], object]) -> dict[str, int]:
    """Run ``fn`` once and count, with hooks, what it asked of ``model``: ``forward_calls`` and
    ``forward_images`` (calls of the whole model, images in them: a forward hook on the model),
    ``head_images`` (images through its last linear layer: whole passes and passes of the
    layers above a target layer alike), ``backward_calls`` (backward passes that start at the
    model's output: a hook on the output tensor)."""
    n = {"forward_calls": 0, "forward_images": 0, "head_images": 0, "backward_calls": 0}

    def count_backward(grad):
        n["backward_calls"] += 1

    def pre(module, inputs):
        n["forward_calls"] += 1
        n["forward_images"] += int(inputs[0].shape[0])

    def post(module, inputs, output):
        leaves = [t for t in cam._leaves(output) if t.requires_grad]
        if leaves:  # one hook per pass: the first output tensor that autograd tracks
            leaves[0].register_hook(count_backward)

    def head(module, inputs, output):
        n["head_images"] += int(output.shape[0])

    handles = [model.register_forward_pre_hook(pre), model.register_forward_hook(post),
               _head(model).register_forward_hook(head)]
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return n


def _captum_reference(method: str, model: nn.Module, module: nn.Module, x: torch.Tensor,
                      kwargs: dict, cam_batch: int) -> Callable[[], torch.Tensor]:
    """Captum's own call of a method the engine computes itself (Grad-CAM, Guided Backprop,
    Guided Grad-CAM) or takes from Captum (``lib.bench.reference_call``)."""
    if method in bench.CAPTUM_CLASSES:
        return bench.reference_call(method, model, module, x, cam_batch, kwargs)
    import captum.attr as ca

    with torch.no_grad():  # the predicted class, computed once, outside the timed call
        target = model(x).argmax(1)

    def call():
        if method == "gradcam":
            return ca.LayerGradCam(model, module).attribute(x, target=target)[:, 0].detach()
        with warnings.catch_warnings():  # Captum's notes on the hooks it sets, at every call
            warnings.simplefilter("ignore", UserWarning)
            if method == "guidedbackprop":
                return ca.GuidedBackprop(model).attribute(x, target=target).detach()
            return ca.GuidedGradCam(model, module).attribute(
                x, target=target, interpolate_mode="bilinear").detach()
    return call


def _references(method, model, module, x, cam_batch, kwargs) -> dict[str, Callable]:
    out = {}
    for lib, _ in REFERENCES.get(method, []):
        if lib == "pytorch-grad-cam":
            out[lib] = bench.reference_call(method, model, module, x, cam_batch, kwargs)
        else:
            out[lib] = _captum_reference(method, model, module, x, kwargs, cam_batch)
    return out


def _quiet(fn):
    """``fn`` with pytorch-grad-cam's progress bars off (they would fill the page)."""
    def call():
        import tqdm

        init = tqdm.tqdm.__init__

        def silent(self, *a, **k):
            k["disable"] = True
            init(self, *a, **k)
        tqdm.tqdm.__init__ = silent
        try:
            return fn()
        finally:
            tqdm.tqdm.__init__ = init
    return call


def measure(model: nn.Module, x: torch.Tensor, layer: str, methods: Sequence[str],
            repeats: int, cam_batch: int, ig_steps: int, clock: str = "wall",
            cheap_repeats: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Each method's passes and time, ours beside pytorch-grad-cam's and Captum's.

    One untimed call of each (the warm-up) counts its passes with :func:`count_passes`; then
    interleaved rounds (``lib.bench.interleave``) time, per round and method, a no-grad forward
    of ``x``, our call and each other library's, in alternating order: ``repeats`` rounds of
    the methods bound by forward passes (``lib.bench.SLOW``), ``cheap_repeats`` (default
    ``repeats``) of the others, which cost a few forward passes, so that more rounds are cheap
    and a moment of load weighs less in their medians. Returns

    - ``times``: one row per method: our median time, its paired ratio to the forward of the
      same round (median and range), each library's median time, its paired ratio to ours
      (median and range) and max |difference| of the maps (after pytorch-grad-cam's
      post-processing against it, raw against Captum);
    - ``passes``: one row per method and library, per image: whole forward passes, passes of
      the layers above the target only (images through the classifier that did not go through
      the whole model), backward passes, and the calls of the model;
    - the forward's median time and range (ms).
    """
    module = cam.resolve_layer(model, layer)
    size, n = x.shape[-1], len(x)

    def forward():
        with torch.no_grad():
            return model(x)

    tasks: dict[str, Callable] = {"forward": forward}
    rounds, refs, counted = [], {}, []
    for m in methods:
        kw = method_kwargs(m, size, ig_steps)
        tasks[f"ours:{m}"] = bench.our_call(model, x, layer, m, cam_batch, kw)
        refs[m] = {lib: _quiet(fn) for lib, fn in
                   _references(m, model, module, x, cam_batch, kw).items()}
        for lib, fn in refs[m].items():
            tasks[f"{lib}:{m}"] = fn
        rounds.append(["forward", f"ours:{m}", *[f"{lib}:{m}" for lib in refs[m]]])
    forward()
    forward()
    for m in methods:  # the warm-up: one call each, its passes counted
        for lib in ["ours", *refs[m]]:
            c = count_passes(model, tasks[f"{lib}:{m}"])
            counted.append({"method": m, "library": lib,
                            "forward passes": c["forward_images"] / n,
                            "passes above the layer": (c["head_images"] - c["forward_images"]) / n,
                            "backward passes": c["backward_calls"],
                            "calls of the model": c["forward_calls"]})
    timed = bench.clock(x.device, clock)
    slow = [j for j, m in enumerate(methods) if m in bench.SLOW]
    cheap = [j for j, m in enumerate(methods) if m not in bench.SLOW]
    timings: list[dict] = [{} for _ in methods]
    for group, n_rounds in ((cheap, cheap_repeats or repeats), (slow, repeats)):
        for j, t in zip(group, bench.interleave([rounds[j] for j in group], tasks, n_rounds,
                                                timed)):
            timings[j] = t
    rows = []
    for m, t in zip(methods, timings):
        ours = t[f"ours:{m}"]
        over = bench.paired(ours, t["forward"])
        row = {"method": m, "ours (ms)": statistics.median(ours),
               "ours / forward": over["median"], "ours / forward range": over["range"]}
        result = tasks[f"ours:{m}"]()
        for lib, fn in refs[m].items():
            sp = bench.paired(t[f"{lib}:{m}"], ours)
            row[f"{lib} (ms)"] = statistics.median(t[f"{lib}:{m}"])
            row[f"{lib} / ours"] = sp["median"]
            row[f"{lib} / ours range"] = sp["range"]
            row[f"{lib} max |diff|"] = _difference(m, lib, model, x, layer, result, fn())
        rows.append(row)
    fwd = [v for t in timings for v in t["forward"]]
    return (pd.DataFrame(rows), pd.DataFrame(counted),
            {"median": statistics.median(fwd), "range": bench.spread(fwd)})


def _difference(method, lib, model, x, layer, ours, ref) -> float:
    """max |ours - reference|: after pytorch-grad-cam's post-processing against
    pytorch-grad-cam, on the raw maps against Captum."""
    if lib == "pytorch-grad-cam":
        return bench.agreement(method, model, x, layer, ours, ref, x.shape[-1])
    return float((ours.detach().cpu() - ref.detach().cpu()).abs().max())


def lever_table(model: nn.Module, x: torch.Tensor, layer: str, methods: Sequence[str],
                repeats: int, cam_batch: int, ig_steps: int,
                batches: Sequence[int] = (16, 128), clock: str = "wall",
                variants: Sequence[str] = tuple(bench.LEVER_VARIANTS)) -> pd.DataFrame:
    """Per method bound by forward passes, its time with the fast path and with the other
    ``variants`` of ``lib.bench.LEVER_VARIANTS`` (a lever switched, or none), and with other
    batches of masked inputs / occlusions (``batches``, without the CPU cap; occlusion also with
    Captum's default, one window a pass), as paired ratios to the fast path in interleaved
    rounds (no warm-up: every variant pays its first call alike)."""
    if "fast path" not in variants:
        raise ValueError(f"variants must include 'fast path' (the reference), got {variants}")
    unknown = [v for v in variants if v not in bench.LEVER_VARIANTS]
    if unknown:
        raise ValueError(f"unknown lever variants {unknown}; known: {list(bench.LEVER_VARIANTS)}")
    size = x.shape[-1]
    tasks, rounds, names = {}, [], []
    for m in methods:
        kw = method_kwargs(m, size, ig_steps)
        chosen = {name: bench.LEVER_VARIANTS[name] for name in variants}
        variants_m = {name: bench.our_call(model, x, layer, m, cam_batch, kw, lv)
                      for name, lv in chosen.items()}
        if m in ("scorecam", "ablationcam", "occlusion"):
            for b in batches:
                variants_m[f"batch {b}, no cap"] = bench.our_call(model, x, layer, m, b, kw,
                                                                  bench.NO_CAP)
        if m == "occlusion":
            variants_m["one window a pass (Captum's default)"] = bench.our_call(
                model, x, layer, m, cam_batch, {**kw, "perturbations_per_eval": 1})
        tasks.update({f"{m}:{v}": fn for v, fn in variants_m.items()})
        rounds.append([f"{m}:{v}" for v in variants_m])
        names.append((m, list(variants_m)))
    timings = bench.interleave(rounds, tasks, repeats, bench.clock(x.device, clock))
    rows = []
    for (m, variants), t in zip(names, timings):
        fast = t[f"{m}:fast path"]
        for v in variants:
            r = bench.paired(t[f"{m}:{v}"], fast)
            rows.append({"method": m, "variant": v, "ms": statistics.median(t[f"{m}:{v}"]),
                         "time / fast path": r["median"], "range": r["range"]})
    return pd.DataFrame(rows, columns=["method", "variant", "ms", "time / fast path", "range"])


def layer_channels(model: nn.Module, x: torch.Tensor, layer: str) -> dict[str, float]:
    """The target layer's channels K, its live channels per image (not zero everywhere: each
    costs Score-CAM a pass; the dead ones share one all-zero mask), averaged over the images,
    and its resolution h x w."""
    acts = {}
    h = cam.resolve_layer(model, layer).register_forward_hook(
        lambda m, i, o: acts.setdefault("a", o.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        h.remove()
    a = acts["a"].flatten(2)
    live = ((a.amax(2) != 0) | (a.amin(2) != 0)).sum(1).float()
    return {"K": int(a.shape[1]), "live": float(live.mean()),
            "hw": f"{acts['a'].shape[2]} x {acts['a'].shape[3]}"}


def _row(df: pd.DataFrame, method: str, library: str | None = None) -> pd.Series:
    sel = df["method"] == method
    if library is not None:
        sel &= df["library"] == library
    if not sel.any():
        raise KeyError(f"no row for {method!r}" + (f" / {library!r}" if library else "")
                       + ": add it to the profile's methods")
    return df[sel].iloc[0]


def summary(times: pd.DataFrame, passes: pd.DataFrame, forward: dict, channels: dict,
            ops: dict[str, float]) -> dict[str, float]:
    """The numbers the chapter's prose and claims use (glued, never typed), from the tables of
    :func:`measure`, :func:`layer_channels` and :func:`flops`."""
    grads = [m for m in GRADIENT_CAMS if m in set(times["method"])]
    if not grads:
        raise KeyError("the profile's methods hold no gradient CAM (e.g. gradcam)")
    ratios = {m: float(_row(times, m)["ours / forward"]) for m in grads}
    worst = max(ratios, key=ratios.get)
    one_pass = all(_row(passes, m, "ours")["forward passes"] == 1
                   and _row(passes, m, "ours")["backward passes"] == 1 for m in grads)
    pgc = [float(_row(times, m)["pytorch-grad-cam / ours"]) for m in grads
           if "pytorch-grad-cam / ours" in times and not np.isnan(_row(times, m)[
               "pytorch-grad-cam / ours"])]
    sc, ab, occ = (_row(times, m) for m in ("scorecam", "ablationcam", "occlusion"))
    out = {
        "K": channels["K"], "live": channels["live"], "dead": channels["K"] - channels["live"],
        "hw": channels["hw"], "forward-ms": forward["median"],
        "grad-worst": ratios[worst], "grad-worst-method": worst,
        "grad-best": min(ratios.values()), "grad-n": len(grads), "grad-one-pass": one_pass,
        "grad-pgc-min": min(pgc) if pgc else float("nan"),
        "scorecam-passes": float(_row(passes, "scorecam", "ours")["forward passes"]),
        "scorecam-pgc-passes": float(_row(passes, "scorecam", "pytorch-grad-cam")[
            "forward passes"]),
        "scorecam-cost": float(sc["ours / forward"]),
        "scorecam-speedup": float(sc["pytorch-grad-cam / ours"]),
        "scorecam-diff": float(sc["pytorch-grad-cam max |diff|"]),
        "ablation-above": float(_row(passes, "ablationcam", "ours")["passes above the layer"]),
        "ablation-forward": float(_row(passes, "ablationcam", "ours")["forward passes"]),
        "ablation-pgc-passes": float(_row(passes, "ablationcam", "pytorch-grad-cam")[
            "forward passes"]),
        "ablation-cost": float(ab["ours / forward"]),
        "ablation-speedup": float(ab["pytorch-grad-cam / ours"]),
        "ablation-diff": float(ab["pytorch-grad-cam max |diff|"]),
        "flops-full": ops["full"] / 1e9, "flops-above": ops["above"] / 1e6,
        "above-share": ops["above"] / ops["full"],
        "ablation-predicted": 1 + channels["K"] * ops["above"] / ops["full"],
        "occlusion-passes": float(_row(passes, "occlusion", "ours")["forward passes"]),
        "occlusion-cost": float(occ["ours / forward"]),
        "occlusion-speedup": float(occ["Captum / ours"]),
    }
    return out


def targets(s: dict) -> pd.DataFrame:
    """The engine's promises (issue #15) against this run's measurements."""
    rows = [
        (f"every gradient CAM costs at most {GRADIENT_BOUND}x a no-grad forward",
         s["grad-worst"], s["grad-worst"] <= GRADIENT_BOUND),
        ("gradient CAMs at least 2.5x faster than pytorch-grad-cam (slowest ratio)",
         s["grad-pgc-min"], bool(s["grad-pgc-min"] >= 2.5)),
        (f"Score-CAM at least {SCORECAM_TARGET}x faster than pytorch-grad-cam",
         s["scorecam-speedup"], s["scorecam-speedup"] >= SCORECAM_TARGET),
        (f"Ablation-CAM at least {ABLATION_TARGET:g}x faster than pytorch-grad-cam",
         s["ablation-speedup"], s["ablation-speedup"] >= ABLATION_TARGET),
        ("Score-CAM's and Ablation-CAM's maps equal pytorch-grad-cam's to 1e-4",
         max(s["scorecam-diff"], s["ablation-diff"]),
         max(s["scorecam-diff"], s["ablation-diff"]) < 1e-4),
    ]
    out = pd.DataFrame(rows, columns=["the engine promises", "measured", "holds"])
    out["measured"] = [f"{v:.0e}" if v < 1e-3 else f"{v:.3g}" for v in out["measured"]]
    return out


def _fmt_range(value: float, r) -> str:
    return f"{value:.3g} ({r[0]:.3g}–{r[1]:.3g})"


def times_view(times: pd.DataFrame) -> pd.DataFrame:
    """The timing table for the page: display names, each ratio with its range over the
    rounds in brackets, empty cells where a library lacks the method."""
    from ..plot import method_label

    out = pd.DataFrame({"method": [method_label(m) for m in times["method"]],
                        "ours (ms)": times["ours (ms)"],
                        "ours / forward": [_fmt_range(v, r) for v, r in zip(
                            times["ours / forward"], times["ours / forward range"])]})
    for lib in ("pytorch-grad-cam", "Captum"):
        if f"{lib} (ms)" not in times:
            continue
        have = times[f"{lib} (ms)"].notna()
        out[f"{lib} (ms)"] = times[f"{lib} (ms)"]
        out[f"{lib} / ours"] = [_fmt_range(v, r) if h else "—" for v, r, h in zip(
            times[f"{lib} / ours"], times[f"{lib} / ours range"], have)]
        out[f"{lib}: max |diff|"] = [f"{v:.0e}" if h else "—" for v, h in zip(
            times[f"{lib} max |diff|"], have)]
    return out


def passes_view(passes: pd.DataFrame) -> pd.DataFrame:
    """The counted passes for the page: one row per method, one column group per library."""
    from ..plot import method_label

    wide = passes.pivot(index="method", columns="library",
                        values=["forward passes", "passes above the layer", "backward passes"])
    order = [m for m in dict.fromkeys(passes["method"])]
    wide = wide.loc[order]
    out = pd.DataFrame({"method": [method_label(m) for m in order]})
    for lib in [lib for lib in ("ours", "pytorch-grad-cam", "Captum")
                if lib in set(passes["library"])]:
        f = wide[("forward passes", lib)].to_numpy()
        a = wide[("passes above the layer", lib)].to_numpy()
        b = wide[("backward passes", lib)].to_numpy()
        out[lib] = [("—" if np.isnan(fi) else
                     f"{fi:g} fwd" + (f" + {ai:g} above" if ai else "")
                     + (f" + {bi:g} bwd" if bi else "")) for fi, ai, bi in zip(f, a, b)]
    return out


def levers_view(levers: pd.DataFrame) -> pd.DataFrame:
    """The lever table for the page."""
    from ..plot import method_label

    return pd.DataFrame({"method": [method_label(m) for m in levers["method"]],
                         "variant": levers["variant"], "ms": levers["ms"],
                         "time / fast path": [_fmt_range(v, r) for v, r in zip(
                             levers["time / fast path"], levers["range"])]})


def flops(model: nn.Module, x: torch.Tensor, layer: str) -> dict[str, float]:
    """Floating-point operations of one forward pass of ``x[:1]`` (``full``) and of the part of
    the model above ``layer`` that Ablation-CAM runs (``above``: the torch.fx split of
    ``cam._Tail``), counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    x1 = x[:1]
    acts = {}
    h = cam.resolve_layer(model, layer).register_forward_hook(
        lambda m, i, o: acts.setdefault("a", o.detach()))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as full:
            out = model(x1)
    finally:
        h.remove()
    with cam.fast_path(False, False, False), torch.no_grad():
        tail = cam._Tail(model, layer, x1, acts["a"], out)
        if tail.graph_module is None:
            raise ValueError(f"the model cannot be split at {layer!r}: no part above it to count")
        with FlopCounterMode(display=False) as above:
            tail(acts["a"], 0)
    return {"full": float(full.get_total_flops()), "above": float(above.get_total_flops())}


def cost_figure(times: pd.DataFrame, libraries: Sequence[str] = ("pytorch-grad-cam", "Captum")):
    """Cost per method in no-grad forward passes, log scale: ours (bars, with the range over the
    rounds) and each other library's (markers, its time over the same round's forward: ours /
    forward x its paired ratio to ours)."""
    import matplotlib.pyplot as plt

    from ..plot import method_label

    t = times.iloc[::-1].reset_index(drop=True)
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(t) + 1.2))
    lo = t["ours / forward range"].map(lambda r: r[0])
    hi = t["ours / forward range"].map(lambda r: r[1])
    ax.barh(y, t["ours / forward"], color="#4c72b0", height=0.6, label="this book's engine")
    ax.errorbar(t["ours / forward"], y, xerr=[t["ours / forward"] - lo, hi - t["ours / forward"]],
                fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    markers = {"pytorch-grad-cam": ("o", "#dd8452"), "Captum": ("D", "#55a868")}
    for lib in libraries:
        col = f"{lib} / ours"
        if col not in t:
            continue
        have = t[col].notna()
        mk, colour = markers[lib]
        ax.scatter((t["ours / forward"] * t[col])[have], y[have], marker=mk, color=colour,
                   zorder=3, s=28, label=lib)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, [method_label(m) for m in t["method"]])
    ax.set_xlabel("time of one call, in no-grad forward passes of the same images (log scale)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    return fig
