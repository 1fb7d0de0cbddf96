"""Chapter "What an explanation costs": every method's time and its forward and backward passes,
counted with hooks, as a multiple of one no-grad forward pass, beside pytorch-grad-cam's and
Captum's, measured side by side in interleaved rounds (``lib.bench``'s protocol); what each
lever of the engine's fast path gives; why Grad-CAM costs about one forward pass, Score-CAM K,
and Ablation-CAM, split at its layer, little more than one."""

from __future__ import annotations

import re
import statistics
import warnings
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import tqdm
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .. import bench, cam, fast, outputs, verdict
from ..cam.engine import Above
from ..plot import method_label

__all__ = [
    "CHAPTER",
    "SIZES",
    "COST",
    "METHODS",
    "GRADIENT_CAMS",
    "REFERENCES",
    "cost_model",
    "method_kwargs",
    "count_passes",
    "measure",
    "count_layer",
    "second_layer",
    "per_channel",
    "lever_table",
    "layer_channels",
    "summary",
    "engine_verdicts",
    "targets",
    "claim_rows",
    "times_view",
    "passes_view",
    "levers_view",
    "compile_cost",
    "flops",
    "cost_figure",
    "GRADIENT_BOUND",
    "GRADIENT_PGC_TARGET",
    "SCORECAM_TARGET",
    "ABLATION_TARGET",
    "ABLATION_LOTS",
    "MAPS_TOLERANCE",
    "PAPER_PER_CHANNEL",
]

CHAPTER = "09_explanation_cost"

#: every method the engine has, in the order of the tables
METHODS = [
    "cam",
    "gradcam",
    "gradcam++",
    "xgradcam",
    "hirescam",
    "layercam",
    "counterfactual",
    "eigencam",
    "guidedbackprop",
    "guidedgradcam",
    "scorecam",
    "ablationcam",
    "occlusion",
    "integratedgradients",
    "gradientshap",
]
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
    # at least lib.verdict.MIN_UNITS (6) rounds: fewer decide nothing
    "repeats": {"smoke": 2, "default": 6, "full": 6},
    "cheap_repeats": {"smoke": 2, "default": 15, "full": 20},
    "methods": {
        "smoke": ["gradcam", "hirescam", "scorecam", "ablationcam", "occlusion"],
        "default": METHODS,
        "full": METHODS,
    },
    "cam_batch": {"smoke": 64, "default": 64, "full": 128},
    "ig_steps": {"smoke": 4, "default": 16, "full": 32},
    "lever_methods": {
        "smoke": ["scorecam"],
        "default": ["scorecam"],
        "full": ["scorecam", "occlusion"],
    },
    "lever_variants": {
        "smoke": ["fast path", "plain (no accelerator)"],
        "default": [v for v in bench.LEVER_VARIANTS if v != "with torch.compile"],
        "full": [v for v in bench.LEVER_VARIANTS if v != "with torch.compile"],
    },
    # torch.compile against the accelerator's copy on one batch of masked images (a
    # compilation costs tens of seconds: not on smoke)
    "compile_batch": {"smoke": 0, "default": 32, "full": 32},
    "lever_batches": {"smoke": [], "default": [], "full": [32, 512]},
    "lever_repeats": {"smoke": 1, "default": 3, "full": 5},
}
COST = {
    "smoke": "about 1.5 minutes on a 2-core CPU",
    "default": "about 2 minutes on a quiet 2-core CPU (Score-CAM and pytorch-grad-cam's "
    "Ablation-CAM: ~500 forward passes each, every round)",
    "full": "a few minutes on one GPU",
}

#: what the engine promises (issue #15; its own targets, not the papers'): gradient CAMs at
#: most this many forward passes ...
GRADIENT_BOUND = 1.3
#: ... at least this much faster than pytorch-grad-cam's (the slowest ratio) ...
GRADIENT_PGC_TARGET = 2.5
#: ... Score-CAM at least this much faster than pytorch-grad-cam's, Ablation-CAM this much
SCORECAM_TARGET = 1.5
ABLATION_TARGET = 10.0
#: ... and the same maps as pytorch-grad-cam's, to this much (after its post-processing)
MAPS_TOLERANCE = 1e-4
#: the engine's Ablation-CAM, split at its layer, costs fewer forward passes of time than this
#: ("lots of forward passes", as the old reading of the paper's words had it)
ABLATION_LOTS = 10.0
#: Taimeskhanov, Sicre, Garreau, Appendix A, Definitions 7 and 8: Score-CAM's beta_v needs
#: CNN(xi * H^(v)) and Ablation-CAM's y_v the output with B^(v) zeroed, for each of the V
#: channels: one evaluation of the network per channel (plus CNN(xi), once)
PAPER_PER_CHANNEL = 1.0


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
        raise ValueError(
            f"{type(model).__name__} has no nn.Linear: count_passes needs the "
            "classifier to count the passes of the layers above the target"
        )
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
        leaves = [t for t in outputs.leaves(output) if t.requires_grad]
        if leaves:  # one hook per pass: the first output tensor that autograd tracks
            leaves[0].register_hook(count_backward)

    def head(module, inputs, output):
        n["head_images"] += int(output.shape[0])

    handles = [
        model.register_forward_pre_hook(pre),
        model.register_forward_hook(post),
        _head(model).register_forward_hook(head),
    ]
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return n


def _counted(model: nn.Module, fn: Callable, method: str, library: str, n: int) -> dict:
    """One row of passes per image of ``fn`` (:func:`count_passes`): whole forward passes, passes
    of the layers above the target only, backward passes, calls of the model."""
    c = count_passes(model, fn)
    return {
        "method": method,
        "library": library,
        "forward passes": c["forward_images"] / n,
        "passes above the layer": (c["head_images"] - c["forward_images"]) / n,
        "backward passes": c["backward_calls"],
        "calls of the model": c["forward_calls"],
    }


def count_layer(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    methods: Sequence[str],
    cam_batch: int,
    ig_steps: int,
    libraries: Sequence[str] = ("ours", "pytorch-grad-cam"),
) -> pd.DataFrame:
    """The passes per image of one call of each method explaining ``layer``, by each of
    ``libraries`` that has it, counted with :func:`count_passes` (untimed): the rows of
    :func:`measure`'s ``passes``, with the layer."""
    module = cam.resolve_layer(model, layer)
    rows = []
    for m in methods:
        kw = method_kwargs(m, x.shape[-1], ig_steps)
        calls = {
            "ours": bench.our_call(model, x, layer, m, cam_batch, kw),
            **{
                lib: _quiet(fn)
                for lib, fn in _references(m, model, module, x, cam_batch, kw).items()
            },
        }
        for lib in libraries:
            if lib in calls:
                rows.append({**_counted(model, calls[lib], m, lib, len(x)), "layer": layer})
    return pd.DataFrame(rows)


def second_layer(layer: str) -> str:
    """The layer whose passes are counted beside ``layer``'s to give the passes per channel: a
    ResNet's stage below (``layer4`` -> ``layer3``, half the channels), or above for
    ``layer1``."""
    m = re.fullmatch(r"layer(\d)", layer)
    if m is None:
        raise ValueError(
            f"no second layer known for {layer!r}: give a ResNet stage, layer1 to layer4"
        )
    n = int(m.group(1))
    return f"layer{n - 1 if n > 1 else 2}"


def per_channel(passes: pd.DataFrame, k: int, second: pd.DataFrame, k_second: int) -> pd.DataFrame:
    """Passes per channel of the explained layer, from the passes counted at two layers with
    ``k`` and ``k_second`` channels (``passes``: :func:`measure`'s; ``second``:
    :func:`count_layer`'s): per (method, library) in both, the evaluations of the network's
    output (images through its classifier: whole passes and passes of the layers above the
    layer alike) and the whole passes at each layer, and their differences over the
    difference of channels. What a call does once (a first pass, a check) cancels."""
    if k == k_second:
        raise ValueError(f"the two layers have the same channels ({k}): no slope to measure")
    a = passes.set_index(["method", "library"])
    b = second.set_index(["method", "library"])
    rows = []
    for key in [i for i in b.index if i in a.index]:
        out = {}
        for name, t in (("", a.loc[key]), (" (second)", b.loc[key])):
            out[f"outputs{name}"] = float(t["forward passes"] + t["passes above the layer"])
            out[f"whole passes{name}"] = float(t["forward passes"])
        rows.append(
            {
                "method": key[0],
                "library": key[1],
                "K": k,
                "K (second)": k_second,
                **out,
                "outputs per channel": (out["outputs"] - out["outputs (second)"]) / (k - k_second),
                "whole passes per channel": (out["whole passes"] - out["whole passes (second)"])
                / (k - k_second),
            }
        )
    return pd.DataFrame(rows)


def _captum_reference(
    method: str, model: nn.Module, module: nn.Module, x: torch.Tensor, kwargs: dict, cam_batch: int
) -> Callable[[], torch.Tensor]:
    """Captum's own call of a method the engine computes itself (Grad-CAM, Guided Backprop,
    Guided Grad-CAM) or takes from Captum (``lib.bench.reference_call``)."""
    if method in bench.CAPTUM_CLASSES:
        return bench.reference_call(method, model, module, x, cam_batch, kwargs)
    # lazy: captum costs ~0.6 s to import; only this method needs it
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
            return (
                ca.GuidedGradCam(model, module)
                .attribute(x, target=target, interpolate_mode="bilinear")
                .detach()
            )

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


def measure(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    methods: Sequence[str],
    repeats: int,
    cam_batch: int,
    ig_steps: int,
    clock: str = "wall",
    cheap_repeats: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Each method's passes and time, ours beside pytorch-grad-cam's and Captum's.

    One untimed call of each (the warm-up) counts its passes with :func:`count_passes`; then
    interleaved rounds (``lib.bench.interleave``) time, per round and method, a no-grad forward
    of ``x``, our call and each other library's, in alternating order: ``repeats`` rounds of
    the methods bound by forward passes (``lib.bench.SLOW``), ``cheap_repeats`` (default
    ``repeats``) of the others, which cost a few forward passes, so that more rounds are cheap
    and a moment of load weighs less in their medians. Returns

    - ``times``: one row per method: our median time, its paired ratio to the forward of the
      same round (median, range and the list, one per round: ``... each``), each library's
      median time, its paired ratio to ours (median, range, list) and max |difference| of the
      maps (after pytorch-grad-cam's post-processing against it, raw against Captum);
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
        refs[m] = {
            lib: _quiet(fn) for lib, fn in _references(m, model, module, x, cam_batch, kw).items()
        }
        for lib, fn in refs[m].items():
            tasks[f"{lib}:{m}"] = fn
        rounds.append(["forward", f"ours:{m}", *[f"{lib}:{m}" for lib in refs[m]]])
    forward()
    forward()
    for m in methods:  # the warm-up: one call each, its passes counted
        for lib in ["ours", *refs[m]]:
            counted.append(_counted(model, tasks[f"{lib}:{m}"], m, lib, n))
    timed = bench.clock(x.device, clock)
    slow = [j for j, m in enumerate(methods) if m in bench.SLOW]
    cheap = [j for j, m in enumerate(methods) if m not in bench.SLOW]
    timings: list[dict] = [{} for _ in methods]
    for group, n_rounds in ((cheap, cheap_repeats or repeats), (slow, repeats)):
        for j, t in zip(
            group, bench.interleave([rounds[j] for j in group], tasks, n_rounds, timed)
        ):
            timings[j] = t
    rows = []
    for m, t in zip(methods, timings):
        ours = t[f"ours:{m}"]
        over = bench.paired(ours, t["forward"])
        row = {
            "method": m,
            "ours (ms)": statistics.median(ours),
            "ours / forward": over["median"],
            "ours / forward range": over["range"],
            "ours / forward each": over["each"],
        }
        result = tasks[f"ours:{m}"]()
        for lib, fn in refs[m].items():
            sp = bench.paired(t[f"{lib}:{m}"], ours)
            row[f"{lib} (ms)"] = statistics.median(t[f"{lib}:{m}"])
            row[f"{lib} / ours"] = sp["median"]
            row[f"{lib} / ours range"] = sp["range"]
            row[f"{lib} / ours each"] = sp["each"]
            row[f"{lib} max |diff|"] = _difference(m, lib, model, x, layer, result, fn())
        rows.append(row)
    fwd = [v for t in timings for v in t["forward"]]
    return (
        pd.DataFrame(rows),
        pd.DataFrame(counted),
        {"median": statistics.median(fwd), "range": bench.spread(fwd)},
    )


def _difference(method, lib, model, x, layer, ours, ref) -> float:
    """max |ours - reference|: after pytorch-grad-cam's post-processing against
    pytorch-grad-cam, on the raw maps against Captum."""
    if lib == "pytorch-grad-cam":
        return bench.agreement(method, model, x, layer, ours, ref, x.shape[-1])
    return float((ours.detach().cpu() - ref.detach().cpu()).abs().max())


def lever_table(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    methods: Sequence[str],
    repeats: int,
    cam_batch: int,
    ig_steps: int,
    batches: Sequence[int] = (16, 128),
    clock: str = "wall",
    variants: Sequence[str] = tuple(bench.LEVER_VARIANTS),
) -> pd.DataFrame:
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
        variants_m = {
            name: bench.our_call(model, x, layer, m, cam_batch, kw, lv)
            for name, lv in chosen.items()
        }
        if m in ("scorecam", "ablationcam", "occlusion"):
            for b in batches:
                variants_m[f"batch {b}, no cap"] = bench.our_call(
                    model, x, layer, m, b, kw, bench.NO_CAP
                )
        if m == "occlusion":
            variants_m["one window a pass (Captum's default)"] = bench.our_call(
                model, x, layer, m, cam_batch, {**kw, "perturbations_per_eval": 1}
            )
        tasks.update({f"{m}:{v}": fn for v, fn in variants_m.items()})
        rounds.append([f"{m}:{v}" for v in variants_m])
        names.append((m, list(variants_m)))
    timings = bench.interleave(rounds, tasks, repeats, bench.clock(x.device, clock))
    rows = []
    for (m, variants), t in zip(names, timings):
        fast = t[f"{m}:fast path"]
        for v in variants:
            r = bench.paired(t[f"{m}:{v}"], fast)
            rows.append(
                {
                    "method": m,
                    "variant": v,
                    "ms": statistics.median(t[f"{m}:{v}"]),
                    "time / fast path": r["median"],
                    "range": r["range"],
                }
            )
    return pd.DataFrame(rows, columns=["method", "variant", "ms", "time / fast path", "range"])


def compile_cost(
    model: nn.Module, x: torch.Tensor, batch: int, repeats: int, summary_values: dict
) -> dict:
    """The accelerator's path for ``model`` on ``x`` (``path``, in words), and, where ``batch``
    > 0 (``measured``), ``torch.compile`` of its copy against the copy on ``batch`` masked
    copies of the first image (:func:`lib.bench.compile_row`), with ``saved_s``: what the
    compiled copy would save on this chapter's Score-CAM call, (copy - compiled) per pass times
    the call's masked passes (``summary_values["scorecam-passes"]`` per image) / ``batch``."""
    acc = fast.Accelerator()
    with torch.no_grad():
        acc.prepare(model, (x,), model(x))
    out = {"measured": batch > 0, "path": str(acc.log[-1])}
    if batch:
        masked = (x[:1] * 0.5).expand(batch, *x.shape[1:]).contiguous()
        row = bench.compile_row(model, masked, repeats)
        passes = summary_values["scorecam-passes"] * len(x)
        out.update(row, saved_s=(row["copy_ms"] - row["compiled_ms"]) / 1000 * passes / batch)
    return out


def layer_channels(model: nn.Module, x: torch.Tensor, layer: str) -> dict[str, float]:
    """The target layer's channels K, its live channels per image (not zero everywhere: each
    costs Score-CAM a pass; the dead ones share one all-zero mask), averaged over the images,
    and its resolution h x w."""
    acts = {}
    h = cam.resolve_layer(model, layer).register_forward_hook(
        lambda m, i, o: acts.setdefault("a", o.detach())
    )
    try:
        with torch.no_grad():
            model(x)
    finally:
        h.remove()
    a = acts["a"].flatten(2)
    live = ((a.amax(2) != 0) | (a.amin(2) != 0)).sum(1).float()
    return {
        "K": int(a.shape[1]),
        "live": float(live.mean()),
        "hw": f"{acts['a'].shape[2]} x {acts['a'].shape[3]}",
    }


def _row(df: pd.DataFrame, method: str, library: str | None = None) -> pd.Series:
    sel = df["method"] == method
    if library is not None:
        sel &= df["library"] == library
    if not sel.any():
        raise KeyError(
            f"no row for {method!r}"
            + (f" / {library!r}" if library else "")
            + ": add it to the profile's methods"
        )
    return df[sel].iloc[0]


def summary(
    times: pd.DataFrame, passes: pd.DataFrame, forward: dict, channels: dict, ops: dict[str, float]
) -> dict[str, float]:
    """The numbers the chapter's prose and claims use (glued, never typed), from the tables of
    :func:`measure`, :func:`layer_channels` and :func:`flops`."""
    grads = [m for m in GRADIENT_CAMS if m in set(times["method"])]
    if not grads:
        raise KeyError("the profile's methods hold no gradient CAM (e.g. gradcam)")
    ratios = {m: float(_row(times, m)["ours / forward"]) for m in grads}
    worst = max(ratios, key=ratios.get)
    one_pass = all(
        _row(passes, m, "ours")["forward passes"] == 1
        and _row(passes, m, "ours")["backward passes"] == 1
        for m in grads
    )
    pgc = [
        float(_row(times, m)["pytorch-grad-cam / ours"])
        for m in grads
        if "pytorch-grad-cam / ours" in times
        and not np.isnan(_row(times, m)["pytorch-grad-cam / ours"])
    ]
    sc, ab, occ = (_row(times, m) for m in ("scorecam", "ablationcam", "occlusion"))
    out = {
        "K": channels["K"],
        "live": channels["live"],
        "dead": channels["K"] - channels["live"],
        "hw": channels["hw"],
        "forward-ms": forward["median"],
        "grad-worst": ratios[worst],
        "grad-worst-method": worst,
        "grad-best": min(ratios.values()),
        "grad-n": len(grads),
        "grad-one-pass": one_pass,
        "grad-pgc-min": min(pgc) if pgc else float("nan"),
        "scorecam-passes": float(_row(passes, "scorecam", "ours")["forward passes"]),
        "scorecam-pgc-passes": float(
            _row(passes, "scorecam", "pytorch-grad-cam")["forward passes"]
        ),
        "scorecam-cost": float(sc["ours / forward"]),
        "scorecam-speedup": float(sc["pytorch-grad-cam / ours"]),
        "scorecam-diff": float(sc["pytorch-grad-cam max |diff|"]),
        "ablation-above": float(_row(passes, "ablationcam", "ours")["passes above the layer"]),
        "ablation-forward": float(_row(passes, "ablationcam", "ours")["forward passes"]),
        "ablation-pgc-passes": float(
            _row(passes, "ablationcam", "pytorch-grad-cam")["forward passes"]
        ),
        "ablation-cost": float(ab["ours / forward"]),
        "ablation-speedup": float(ab["pytorch-grad-cam / ours"]),
        "ablation-diff": float(ab["pytorch-grad-cam max |diff|"]),
        "flops-full": ops["full"] / 1e9,
        "flops-above": ops["above"] / 1e6,
        "above-share": ops["above"] / ops["full"],
        "ablation-predicted": 1 + channels["K"] * ops["above"] / ops["full"],
        "occlusion-passes": float(_row(passes, "occlusion", "ours")["forward passes"]),
        "occlusion-cost": float(occ["ours / forward"]),
        "occlusion-speedup": float(occ["Captum / ours"]),
    }
    return out


def _each(times: pd.DataFrame, method: str, column: str) -> list[float]:
    """The per-round paired ratios of ``column`` (``"ours / forward"``, ``"pytorch-grad-cam /
    ours"``) for ``method``: one per interleaved round."""
    row = _row(times, method)
    each = row.get(f"{column} each")
    if not isinstance(each, (list, tuple, np.ndarray)) or len(each) == 0:
        raise KeyError(f"no per-round ratios {column!r} for {method!r}: take times from measure()")
    return [float(v) for v in each]


def engine_verdicts(times: pd.DataFrame, passes: pd.DataFrame) -> dict:
    """The engine's own targets (issue #15; not the papers' claims), each a rule fixed before
    the run on the per-round paired ratios of :func:`measure` (the mean over the rounds, its
    BCa bootstrap interval from ``lib.verdict``), or a measured error for the checks:

    - ``grad-forward``: every gradient CAM's time / the same round's no-grad forward below
      GRADIENT_BOUND (holds if each one's interval lies below; ``grad-forward-deciding``
      names the CAM that decides);
    - ``grad-pgc``: every gradient CAM at least GRADIENT_PGC_TARGET times faster than
      pytorch-grad-cam's (``grad-pgc-deciding``);
    - ``scorecam-pgc``, ``ablation-pgc``: Score-CAM and Ablation-CAM at least SCORECAM_TARGET
      and ABLATION_TARGET times faster than pytorch-grad-cam's;
    - ``ablation-cost``: our Ablation-CAM below ABLATION_LOTS forward passes of time;
    - ``maps-equal`` (a check): the larger max |difference| of Score-CAM's and Ablation-CAM's
      maps against pytorch-grad-cam's, against MAPS_TOLERANCE;
    - ``grad-passes`` (a check): every gradient CAM of ours makes one forward and one backward
      pass per call (the counted passes' distance from that, summed).
    """
    grads = [m for m in GRADIENT_CAMS if m in set(times["method"])]
    if not grads:
        raise KeyError("the profile's methods hold no gradient CAM (e.g. gradcam)")
    unit = "interleaved rounds"
    fwd = {
        method_label(m): verdict.mean_below(
            _each(times, m, "ours / forward"),
            GRADIENT_BOUND,
            unit=unit,
            rule=f"mean {method_label(m)} time / no-grad forward < {GRADIENT_BOUND}",
        )
        for m in grads
    }
    out = {}
    out["grad-forward-deciding"], out["grad-forward"] = verdict.all_of(
        fwd, f"every gradient CAM below {GRADIENT_BOUND} forward passes", "<"
    )
    pgc_col = "pytorch-grad-cam / ours"
    have = [m for m in grads if pgc_col in times and not np.isnan(_row(times, m)[pgc_col])]
    if have:
        out["grad-pgc-deciding"], out["grad-pgc"] = verdict.all_of(
            {
                method_label(m): verdict.mean_above(
                    _each(times, m, pgc_col),
                    GRADIENT_PGC_TARGET,
                    unit=unit,
                    rule=f"mean pytorch-grad-cam / ours, {method_label(m)} > {GRADIENT_PGC_TARGET}",
                )
                for m in have
            },
            f"every gradient CAM at least {GRADIENT_PGC_TARGET}x faster than pytorch-grad-cam",
        )
    out["scorecam-pgc"] = verdict.mean_above(
        _each(times, "scorecam", pgc_col),
        SCORECAM_TARGET,
        unit=unit,
        rule=f"mean pytorch-grad-cam / ours, Score-CAM > {SCORECAM_TARGET}",
    )
    out["ablation-pgc"] = verdict.mean_above(
        _each(times, "ablationcam", pgc_col),
        ABLATION_TARGET,
        unit=unit,
        rule=f"mean pytorch-grad-cam / ours, Ablation-CAM > {ABLATION_TARGET:g}",
    )
    out["ablation-cost"] = verdict.mean_below(
        _each(times, "ablationcam", "ours / forward"),
        ABLATION_LOTS,
        unit=unit,
        rule=f"mean Ablation-CAM time / no-grad forward < {ABLATION_LOTS:g}",
    )
    diff = max(
        float(_row(times, m)["pytorch-grad-cam max |diff|"]) for m in ("scorecam", "ablationcam")
    )
    out["maps-equal"] = verdict.check(
        diff,
        MAPS_TOLERANCE,
        rule="max |ours − pytorch-grad-cam| of Score-CAM's and Ablation-CAM's maps",
    )
    err = max(
        abs(float(_row(passes, m, "ours")["forward passes"]) - 1)
        + abs(float(_row(passes, m, "ours")["backward passes"]) - 1)
        for m in grads
    )
    out["grad-passes"] = verdict.check(
        err, 0, rule="counted passes of each gradient CAM minus one forward and one backward"
    )
    return out


def targets(v: dict) -> pd.DataFrame:
    """The engine's promises (issue #15) against this run's measurements: each with the mean of
    its per-round ratios and 95 % interval, and the outcome of its rule (``v``:
    :func:`engine_verdicts`). These are findings about this engine, not the papers' claims."""
    rows = [
        (
            f"every gradient CAM costs at most {GRADIENT_BOUND}x a no-grad forward "
            f"(deciding: {v['grad-forward-deciding']})",
            v["grad-forward"],
        ),
    ]
    if "grad-pgc" in v:
        rows.append(
            (
                f"gradient CAMs at least {GRADIENT_PGC_TARGET}x faster than "
                f"pytorch-grad-cam (deciding: {v['grad-pgc-deciding']})",
                v["grad-pgc"],
            )
        )
    rows += [
        (f"Score-CAM at least {SCORECAM_TARGET}x faster than pytorch-grad-cam", v["scorecam-pgc"]),
        (
            f"Ablation-CAM at least {ABLATION_TARGET:g}x faster than pytorch-grad-cam",
            v["ablation-pgc"],
        ),
        (
            "Score-CAM's and Ablation-CAM's maps equal pytorch-grad-cam's to "
            f"{MAPS_TOLERANCE:g} (max |difference|)",
            v["maps-equal"],
        ),
    ]
    return pd.DataFrame(
        {
            "the engine promises": [r[0] for r in rows],
            "measured (95 % interval)": [
                f"{r[1].estimate:.0e}" if r[1] is v["maps-equal"] else r[1].interval_text(2)
                for r in rows
            ],
            "outcome": [r[1].outcome for r in rows],
            "how": [r[1].method for r in rows],
        }
    )


def claim_rows(s: dict, engine: dict, channels: pd.DataFrame, model_name: str) -> list[dict]:
    """The chapter's claim rows (keyword arguments of ``lib.report.Claims.add``), each with a
    rule fixed here before the run: the papers' claims on the count of passes (Taimeskhanov,
    Sicre, Garreau, Appendix A), exact counts against Definitions 7 and 8 (``channels``:
    :func:`per_channel`); the engine's own targets and checks as findings and checks of this
    book (``engine``: :func:`engine_verdicts`; ``s``: :func:`summary`)."""
    ch = channels.set_index(["method", "library"])

    def counted(method, library, what):
        r = ch.loc[(method, library)]
        return (
            f"{r[what]:g} per image at K = {int(r['K'])}, {r[what + ' (second)']:g} at "
            f"K = {int(r['K (second)'])}"
        )

    net = f"the {model_name} stand-in (random weights)"
    rows = []
    sc = ch.loc[("scorecam", "pytorch-grad-cam")]
    rows.append(
        dict(
            claim_id="scorecam-passes",
            paper="taimeskhanov",
            where="Appendix A, Definition 7",
            statement="Score-CAM requires lots of forward passes through the network: one per "
            "channel (CNN of the image masked by each channel). Counted with hooks on "
            f"pytorch-grad-cam's ScoreCAM, which runs the definition as written, on {net}: "
            "whole passes per channel, from the counts at two layers.",
            paper_value=PAPER_PER_CHANNEL,
            ours=(
                f"{sc['whole passes per channel']:g} per channel "
                f"({counted('scorecam', 'pytorch-grad-cam', 'whole passes')})"
            ),
            kind="paper",
            tier="stand-in",
            verdict=verdict.exact(
                sc["whole passes per channel"],
                PAPER_PER_CHANNEL,
                rule="whole passes per channel = 1 (Definition 7)",
                method="passes counted with hooks at two layers, nothing sampled",
            ),
            section="Why Score-CAM costs K forward passes",
        )
    )
    ab = ch.loc[("ablationcam", "pytorch-grad-cam")]
    ours_ab = ch.loc[("ablationcam", "ours")] if ("ablationcam", "ours") in ch.index else None
    extra = (
        ""
        if ours_ab is None
        else f"; this engine: {ours_ab['outputs']:g} and {ours_ab['outputs (second)']:g} "
        f"outputs, of them {ours_ab['whole passes']:g} and "
        f"{ours_ab['whole passes (second)']:g} whole passes"
    )
    rows.append(
        dict(
            claim_id="ablation-passes",
            paper="taimeskhanov",
            where="Appendix A, Definition 8",
            statement="Ablation-CAM, like Score-CAM, requires lots of forward passes through the "
            "network: one evaluation of its output per channel (with that channel "
            "zeroed). Counted with hooks on pytorch-grad-cam's AblationCAM, on "
            f"{net}: outputs evaluated per channel, from the counts at two layers.",
            paper_value=PAPER_PER_CHANNEL,
            ours=(
                f"{ab['outputs per channel']:g} per channel "
                f"({counted('ablationcam', 'pytorch-grad-cam', 'outputs')}){extra}"
            ),
            kind="paper",
            tier="stand-in",
            verdict=verdict.exact(
                ab["outputs per channel"],
                PAPER_PER_CHANNEL,
                rule="evaluations of the output per channel = 1 (Definition 8)",
                method="passes counted with hooks at two layers, nothing sampled",
            ),
            section="How the split makes Ablation-CAM cheap",
        )
    )
    g = engine["grad-forward"]
    rows.append(
        dict(
            claim_id="grad-one-forward",
            paper="selvaraju",
            where="Eq. 1",
            statement=f"This engine's own target, not the paper's (Selvaraju et al. state no cost; "
            "Eq. 1 needs one backward pass, from the score to the layer): every gradient "
            f"CAM costs less than {GRADIENT_BOUND} no-grad forward passes of the same "
            "image (mean of the ratios paired within each round).",
            ours=f"{engine['grad-forward-deciding']}: {g.interval_text(2)}",
            kind="finding",
            verdict=g,
            section="Why Grad-CAM costs about one forward pass",
            digits=2,
        )
    )
    rows.append(
        dict(
            claim_id="grad-passes",
            paper="selvaraju",
            where="Eq. 1",
            statement="Every gradient CAM of this engine makes one forward and one backward pass "
            "(counted with hooks): the backward pass of Eq. 1, shared.",
            ours=f"{s['grad-n']} gradient CAMs counted",
            kind="check",
            verdict=engine["grad-passes"],
            section="Why Grad-CAM costs about one forward pass",
        )
    )
    a = engine["ablation-cost"]
    rows.append(
        dict(
            claim_id="ablation-cost",
            paper="taimeskhanov",
            where="Appendix A",
            statement=f"Split at its layer, this engine's Ablation-CAM costs fewer than "
            f"{ABLATION_LOTS:g} no-grad forward passes of time (mean of the per-round "
            "ratios): 'lots of forward passes' holds for its count, not for its cost.",
            ours=f"{a.interval_text(2)} forward passes ({s['ablation-above']:g} passes of the layers "
            f"above the layer, {s['ablation-forward']:g} whole)",
            kind="finding",
            verdict=a,
            section="How the split makes Ablation-CAM cheap",
            digits=2,
        )
    )
    return rows


def _fmt_range(value: float, r) -> str:
    return f"{value:.3g} ({r[0]:.3g}–{r[1]:.3g})"


def times_view(times: pd.DataFrame) -> pd.DataFrame:
    """The timing table for the page: display names, each ratio with its range over the
    rounds in brackets, empty cells where a library lacks the method."""
    out = pd.DataFrame(
        {
            "method": [method_label(m) for m in times["method"]],
            "ours (ms)": times["ours (ms)"],
            "ours / forward": [
                _fmt_range(v, r)
                for v, r in zip(times["ours / forward"], times["ours / forward range"])
            ],
        }
    )
    for lib in ("pytorch-grad-cam", "Captum"):
        if f"{lib} (ms)" not in times:
            continue
        have = times[f"{lib} (ms)"].notna()
        out[f"{lib} (ms)"] = times[f"{lib} (ms)"]
        out[f"{lib} / ours"] = [
            _fmt_range(v, r) if h else "—"
            for v, r, h in zip(times[f"{lib} / ours"], times[f"{lib} / ours range"], have)
        ]
        out[f"{lib}: max |diff|"] = [
            f"{v:.0e}" if h else "—" for v, h in zip(times[f"{lib} max |diff|"], have)
        ]
    return out


def passes_view(passes: pd.DataFrame) -> pd.DataFrame:
    """The counted passes for the page: one row per method, one column group per library."""
    wide = passes.pivot(
        index="method",
        columns="library",
        values=["forward passes", "passes above the layer", "backward passes"],
    )
    order = [m for m in dict.fromkeys(passes["method"])]
    wide = wide.loc[order]
    out = pd.DataFrame({"method": [method_label(m) for m in order]})
    for lib in [
        lib for lib in ("ours", "pytorch-grad-cam", "Captum") if lib in set(passes["library"])
    ]:
        f = wide[("forward passes", lib)].to_numpy()
        a = wide[("passes above the layer", lib)].to_numpy()
        b = wide[("backward passes", lib)].to_numpy()
        out[lib] = [
            (
                "—"
                if np.isnan(fi)
                else f"{fi:g} fwd"
                + (f" + {ai:g} above" if ai else "")
                + (f" + {bi:g} bwd" if bi else "")
            )
            for fi, ai, bi in zip(f, a, b)
        ]
    return out


def levers_view(levers: pd.DataFrame) -> pd.DataFrame:
    """The lever table for the page."""
    return pd.DataFrame(
        {
            "method": [method_label(m) for m in levers["method"]],
            "variant": levers["variant"],
            "ms": levers["ms"],
            "time / fast path": [
                _fmt_range(v, r) for v, r in zip(levers["time / fast path"], levers["range"])
            ],
        }
    )


def flops(model: nn.Module, x: torch.Tensor, layer: str) -> dict[str, float]:
    """Floating-point operations of one forward pass of ``x[:1]`` (``full``) and of the part of
    the model above ``layer`` that Ablation-CAM runs (``above``: the torch.fx split of
    ``lib.cam.engine.Above``), counted by ``torch.utils.flop_counter``."""
    x1 = x[:1]
    acts = {}
    h = cam.resolve_layer(model, layer).register_forward_hook(
        lambda m, i, o: acts.setdefault("a", o.detach())
    )
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as full:
            out = model(x1)
    finally:
        h.remove()
    with torch.no_grad():
        module = cam.resolve_layer(model, layer)
        tail = Above(model, layer, module, x1, acts["a"], out)
        if tail.upper is None:
            raise ValueError(f"the model cannot be split at {layer!r}: no part above it to count")
        with FlopCounterMode(display=False) as above:
            tail(acts["a"], 0)
    return {"full": float(full.get_total_flops()), "above": float(above.get_total_flops())}


def cost_figure(times: pd.DataFrame, libraries: Sequence[str] = ("pytorch-grad-cam", "Captum")):
    """Cost per method in no-grad forward passes, log scale: ours (bars, with the range over the
    rounds) and each other library's (markers, its time over the same round's forward: ours /
    forward x its paired ratio to ours). One panel, so its text is 10.5 pt: ~7 px on a phone."""
    t = times.iloc[::-1].reset_index(drop=True)
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(7.3, 0.36 * len(t) + 1.3))
    lo = t["ours / forward range"].map(lambda r: r[0])
    hi = t["ours / forward range"].map(lambda r: r[1])
    ax.barh(y, t["ours / forward"], color="#4c72b0", height=0.6, label="this book's engine")
    ax.errorbar(
        t["ours / forward"],
        y,
        xerr=[t["ours / forward"] - lo, hi - t["ours / forward"]],
        fmt="none",
        ecolor="black",
        elinewidth=0.8,
        capsize=2,
    )
    markers = {"pytorch-grad-cam": ("o", "#dd8452"), "Captum": ("D", "#55a868")}
    for lib in libraries:
        col = f"{lib} / ours"
        if col not in t:
            continue
        have = t[col].notna()
        mk, colour = markers[lib]
        ax.scatter(
            (t["ours / forward"] * t[col])[have],
            y[have],
            marker=mk,
            color=colour,
            zorder=3,
            s=28,
            label=lib,
        )
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, [method_label(m) for m in t["method"]])
    ax.tick_params(labelsize=10.5)
    ax.tick_params(which="minor", labelsize=10.5)
    ax.set_xlabel("time of one call, in no-grad forward passes (log scale)", fontsize=10.5)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=10.5)
    fig.tight_layout()
    return fig
