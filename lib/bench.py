"""Time the CAM engine against pytorch-grad-cam (and Captum), side by side, on the same batch.

    python -m lib.bench --model resnet50 --layer layer4 --batch 16 --device cpu
    python -m lib.bench --model resnet18 --layer layer4 --batch 1 --size 112 --device cpu \\
        --methods scorecam,ablationcam
    python -m lib.bench --methods scorecam --batch 1 --size 112 --levers
    python -m lib.bench --model resnet18 --size 112 --cam-batch 32 --compile

The repeats are interleaved, so that a change of the machine's load hits every timing alike:
each round times, per method, a no-grad forward of the batch, (for Score-CAM) its bare forward
passes, then ours and the reference library's call, in alternating order from round to round.
Every ratio is taken within a round (paired) and reported as the median over the rounds with
its range; a ratio of medians from different moments would mix loads.

Prints a table, then, as its last line, one JSON object: ``forward_ms`` (median no-grad forward
of the batch), and for each method ``lib_ms``, ``pgc_ms`` (medians of ``--repeats`` rounds after
a warm-up; Captum's call for the Captum methods, under ``captum_ms`` too), ``speedup`` (median of
the paired ratios reference / ours), ``over_forward`` (median of ours / the forward of the same
round), their ranges ``*_range`` = [min, max] and the paired ratios themselves (``speedups``,
``over_forwards_each``), and ``max_abs_diff`` between both maps after the same post-processing
(pytorch-grad-cam's; Eigen-CAM with ``sign="svd"``, the sign pytorch-grad-cam's SVD gives; the
raw attributions for Captum's methods). For Score-CAM, ``forwards_ms`` is the median bare cost of
the N*K masked forward passes it needs (the model as it is, no-grad, batches of ``--cam-batch``),
``over_forwards`` the paired ratio to it and ``forwards_before_after_ms`` its first and last
timing. ``all_gradient_ms`` is every gradient-based method in one call (``cam.compute_many``).
``--levers`` adds ``levers``: per method bound by forward passes, its time with each setting of
the accelerator (``lib.fast.Settings``) switched, without an accelerator, and (Score-CAM,
Ablation-CAM, occlusion) with other batch sizes and no CPU cap on them, each as a paired ratio
to the default accelerator ("fast path"). ``--compile`` times, instead, ``torch.compile`` of the
accelerator's copy against the copy itself on one batch of masked images.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from lib import cam, fast
from lib.notebook import resolve_device

DEFAULT_METHODS = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam")
PGC_CLASSES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "hirescam": "HiResCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
}
#: Captum's own classes for the methods the engine takes from Captum (the same arguments)
CAPTUM_CLASSES = {
    "integratedgradients": "IntegratedGradients",
    "occlusion": "Occlusion",
    "gradientshap": "GradientShap",
}
SLOW = ("scorecam", "ablationcam", "occlusion", "integratedgradients", "gradientshap")
#: the variants ``--levers`` times: the accelerator's settings (``lib.fast.Settings``), or None
#: for the engine without an accelerator
LEVER_VARIANTS: dict[str, fast.Settings | None] = {
    "fast path": fast.Settings(),
    "without channels_last": replace(fast.Settings(), channels_last=False),
    "without fold_batchnorm": replace(fast.Settings(), fold_batchnorm=False),
    "without the CPU batch cap": replace(fast.Settings(), pixels_per_pass=None),
    "with torch.compile": replace(fast.Settings(), compile=True),
    "plain (no accelerator)": None,
}
#: the batch variants of ``--levers`` run without the CPU cap, so that the batch is the one asked
NO_CAP = replace(fast.Settings(), pixels_per_pass=None)


def clock(device: torch.device, kind: str = "wall") -> Callable[[Callable], tuple[float, object]]:
    """``timed(fn) -> (milliseconds, fn's result)``, synchronising CUDA around the call.
    ``kind="cpu"`` counts the CPU time of this process (all its threads) instead of the wall
    clock: on a CPU shared with other jobs it leaves out the time spent waiting for a core (with
    one thread; with several, time spent spinning for a descheduled partner is counted)."""
    if kind not in ("wall", "cpu"):
        raise ValueError(f"clock kind must be 'wall' or 'cpu', got {kind!r}")
    if kind == "cpu" and device.type != "cpu":
        raise ValueError(f"a CPU-time clock cannot time work on {device}; use kind='wall'")
    now = time.perf_counter if kind == "wall" else time.process_time

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = now()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (now() - t0) * 1e3, out

    return timed


def interleave(
    rounds: Sequence[Sequence[str]], tasks: dict[str, Callable], repeats: int, timed: Callable
) -> list[dict[str, list[float]]]:
    """Time every round's tasks in turn, all rounds, ``repeats`` times over: a change of load
    hits the tasks of a round alike. Every other repeat runs a round's tasks after its first
    (the forward the others are paired with) in reverse order, so that no task always follows
    the same one. Returns, per round, each task's timings in repeat order."""
    out = [{name: [] for name in rnd} for rnd in rounds]
    for r in range(repeats):
        for j, rnd in enumerate(rounds):
            order = list(rnd) if r % 2 == 0 else [rnd[0], *reversed(rnd[1:])]
            for name in order:
                out[j][name].append(timed(tasks[name])[0])
    return out


def paired(num: Sequence[float], den: Sequence[float]) -> dict[str, object]:
    """The ratios num[i] / den[i] of timings from the same round: their median, [min, max] and
    the list."""
    if len(num) != len(den) or not num:
        raise ValueError(
            f"paired ratios need timings from the same rounds, got {len(num)} and {len(den)}"
        )
    ratios = [a / b for a, b in zip(num, den)]
    return {
        "median": statistics.median(ratios),
        "range": [min(ratios), max(ratios)],
        "each": ratios,
    }


def spread(times: Sequence[float]) -> list[float]:
    """[min, max] of a list of timings."""
    return [min(times), max(times)]


def bench_model(model_name: str, seed: int = 0, device="cpu"):
    """A torchvision architecture with random weights and batch-norm statistics drawn at random
    (fresh batch-norm is the identity, which makes maps flat), in eval mode. The cost of a pass
    does not depend on the weights."""
    import torchvision

    torch.manual_seed(seed)
    model = getattr(torchvision.models, model_name)(weights=None)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.to(resolve_device(device)).eval()


def captum_kwargs(method: str, size: int) -> dict:
    """The arguments both the engine and Captum get for a Captum method: occlusion with windows
    of 1/8 of the image and a stride of half a window; 32 steps of Integrated Gradients; 8
    samples of Gradient SHAP. (Occlusion's windows per pass: the engine picks them from its
    ``batch_size``; Captum gets ``cam_batch // N``, see :func:`reference_call`.)"""
    if method == "occlusion":
        w = max(1, size // 8)
        return {"sliding_window_shapes": (3, w, w), "strides": max(1, w // 2)}
    if method == "integratedgradients":
        return {"n_steps": 32}
    if method == "gradientshap":
        return {"n_samples": 8, "stdevs": 0.1}
    return {}


def reference_call(
    method: str, model, module, x, cam_batch: int, kwargs: dict | None = None
) -> Callable[[], np.ndarray]:
    """A call of the reference library for ``method``: pytorch-grad-cam's class (its batch of
    masked inputs / ablations set to ``cam_batch``, its post-processing), or Captum's class with
    ``kwargs`` (raw attributions; occlusion with ``cam_batch // N`` windows a pass unless
    ``kwargs`` says otherwise); ``None`` if neither library has the method."""
    if method in PGC_CLASSES:
        import pytorch_grad_cam

        cls = getattr(pytorch_grad_cam, PGC_CLASSES[method])

        def ref_call():
            with cls(model=model, target_layers=[module]) as c:
                if hasattr(c, "batch_size"):
                    c.batch_size = cam_batch
                return c(x, targets=None)

        return ref_call
    if method in CAPTUM_CLASSES:
        import captum.attr as ca

        cls = getattr(ca, CAPTUM_CLASSES[method])
        kw = dict(kwargs or {})
        if method == "gradientshap":
            kw.setdefault("baselines", torch.zeros_like(x[:1]))
        if method == "occlusion":
            kw.setdefault("perturbations_per_eval", max(1, cam_batch // len(x)))

        with torch.no_grad():  # the predicted class, as pytorch-grad-cam's targets=None
            target = model(x).argmax(1)

        def ref_call():
            if method == "gradientshap":
                torch.manual_seed(0)
                np.random.seed(0)
            return cls(model).attribute(x, target=target, **kw).detach()

        return ref_call
    return None


def our_call(
    model,
    x,
    layer,
    method,
    cam_batch: int,
    kwargs: dict | None = None,
    settings: fast.Settings | None | str = "default",
) -> Callable[[], torch.Tensor]:
    """``cam.compute`` of one method with an accelerator of these ``settings`` (``"default"``:
    ``lib.fast.Settings()``; None: no accelerator), a new one per call, as a user's call makes."""
    settings = fast.Settings() if isinstance(settings, str) else settings

    def call():
        acc = None if settings is None else fast.Accelerator(settings)
        return cam.compute(
            model,
            x,
            layer,
            method,
            batch_size=cam_batch,
            captum_kwargs=kwargs or None,
            accelerator=acc,
        )

    return call


def agreement(method, model, x, layer, ours, ref, size) -> float:
    """max |ours - reference| after the reference's post-processing (pytorch-grad-cam's) or on
    the raw attributions (Captum's)."""
    if method in CAPTUM_CLASSES:
        return float((ours.detach().cpu() - ref.detach().cpu()).abs().max())
    if method == "eigencam":  # timed with our sign convention, compared with pgc's
        ours = cam.compute(model, x, layer, method, options={"eigencam": {"sign": "svd"}})
    post = cam.postprocess(ours, size, preset=cam.PGC_PRESET).cpu().numpy()
    return float(np.abs(post - ref).max())


def run(
    model_name="resnet50",
    layer="layer4",
    batch=16,
    device="cpu",
    methods=DEFAULT_METHODS,
    repeats=5,
    size=224,
    seed=0,
    pgc=True,
    cam_batch=64,
    levers=False,
    lever_batches=(16, 32, 128),
    clock_kind="wall",
):
    """The measurements behind the CLI, as the JSON object it prints (see the module doc)."""
    dev = resolve_device(device)
    model = bench_model(model_name, seed, dev)
    torch.manual_seed(seed)
    x = torch.randn(batch, 3, size, size, device=dev)
    module = cam.resolve_layer(model, layer)
    result = {
        "model": model_name,
        "layer": layer,
        "batch": batch,
        "device": str(dev),
        "size": size,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "cam_batch": cam_batch,
        "clock": clock_kind,
    }

    def forward():
        with torch.no_grad():
            return model(x)

    tasks: dict[str, Callable] = {"forward": forward}
    rounds, warmup, refs, kwargs = [], ["forward", "forward"], {}, {}
    for method in methods:
        kwargs[method] = captum_kwargs(method, size)
        tasks[f"lib:{method}"] = our_call(model, x, layer, method, cam_batch, kwargs[method])
        rnd = ["forward"]
        if method == "scorecam":
            channels = _channels(model, module, x)

            def score_forwards(channels=channels):
                with torch.no_grad():
                    for i in range(batch):
                        for lo in range(0, channels, cam_batch):
                            n = min(cam_batch, channels - lo)
                            model(x[i : i + 1].expand(n, -1, -1, -1) * 0.5)

            tasks["forwards:scorecam"] = score_forwards
            rnd.append("forwards:scorecam")
        rnd.append(f"lib:{method}")
        ref = reference_call(method, model, module, x, cam_batch, kwargs[method]) if pgc else None
        if ref is not None:
            refs[method] = ref
            tasks[f"ref:{method}"] = ref
            rnd.append(f"ref:{method}")
        if levers and method in SLOW:
            for name, lv in LEVER_VARIANTS.items():
                if name != "fast path":
                    tasks[f"lever:{method}:{name}"] = our_call(
                        model, x, layer, method, cam_batch, kwargs[method], lv
                    )
                    rnd.append(f"lever:{method}:{name}")
            if method in ("scorecam", "ablationcam", "occlusion"):
                for b in lever_batches:
                    name = f"lever:{method}:batch {b}, no cap"
                    tasks[name] = our_call(model, x, layer, method, b, kwargs[method], NO_CAP)
                    rnd.append(name)
        if method not in SLOW:
            warmup += [name for name in rnd if name != "forward"]
        rounds.append(rnd)
    grad_methods = [m for m in methods if m in cam.GRADIENT_METHODS]
    if len(grad_methods) > 1:
        tasks["all_gradient"] = lambda: cam.compute_many(model, x, layer, grad_methods)
        rounds.append(["forward", "all_gradient"])
        warmup.append("all_gradient")

    for name in warmup:
        tasks[name]()
    timings = interleave(rounds, tasks, repeats, clock(dev, clock_kind))
    # each ratio pairs a method's timings with the forward of its own round
    per_round_forward = {j: t.pop("forward") for j, t in enumerate(timings)}
    times = {name: ts for t in timings for name, ts in t.items()}
    forwards = [t for ts in per_round_forward.values() for t in ts]
    result["forward_ms"] = statistics.median(forwards)
    result["forward_ms_range"] = spread(forwards)

    for j, method in enumerate(methods):
        fwd = per_round_forward[j]
        lib = times[f"lib:{method}"]
        over = paired(lib, fwd)
        row = {
            "lib_ms": statistics.median(lib),
            "lib_ms_range": spread(lib),
            "over_forward": over["median"],
            "over_forward_range": over["range"],
            "over_forwards_each": over["each"],
        }
        if method in refs:
            ref_t = times[f"ref:{method}"]
            ours = tasks[f"lib:{method}"]()
            ref_map = refs[method]()
            sp = paired(ref_t, lib)
            row.update(
                {
                    "pgc_ms": statistics.median(ref_t),
                    "pgc_ms_range": spread(ref_t),
                    "speedup": sp["median"],
                    "speedup_range": sp["range"],
                    "speedups": sp["each"],
                    "reference": "captum" if method in CAPTUM_CLASSES else "pytorch-grad-cam",
                    "max_abs_diff": agreement(method, model, x, layer, ours, ref_map, size),
                }
            )
            if method in CAPTUM_CLASSES:
                row["captum_ms"] = row["pgc_ms"]
        if method == "scorecam":
            bare = times["forwards:scorecam"]
            ob = paired(lib, bare)
            row.update(
                {
                    "forwards_ms": statistics.median(bare),
                    "forwards_before_after_ms": [bare[0], bare[-1]],
                    "over_forwards": ob["median"],
                    "over_forwards_range": ob["range"],
                }
            )
        lever_rows = {}
        for name in [n for n in times if n.startswith(f"lever:{method}:")]:
            lv = paired(times[name], lib)
            lever_rows[name.split(":", 2)[2]] = {
                "ms": statistics.median(times[name]),
                "over_fast_path": lv["median"],
                "over_fast_path_range": lv["range"],
            }
        if lever_rows:
            result.setdefault("levers", {})[method] = {
                "fast path": {
                    "ms": row["lib_ms"],
                    "over_fast_path": 1.0,
                    "over_fast_path_range": [1.0, 1.0],
                },
                **lever_rows,
            }
        result[method] = row
    if len(grad_methods) > 1:
        allg = paired(times["all_gradient"], per_round_forward[len(rounds) - 1])
        result["all_gradient_ms"] = statistics.median(times["all_gradient"])
        result["all_gradient_over_forward"] = allg["median"]
        result["all_gradient_methods"] = grad_methods
    return result


def _channels(model, module, x):
    out = {}

    def hook(m, i, o):
        out["k"] = o.shape[1]

    h = module.register_forward_hook(hook)
    with torch.no_grad():
        model(x[:1])
    h.remove()
    return out["k"]


def _range(r) -> str:
    return f"[{r[0]:.3g}-{r[1]:.3g}]"


def report(res: dict, methods: Sequence[str], file=sys.stderr) -> None:
    """The human-readable table."""
    print(
        f"{res['model']} {res['layer']} batch {res['batch']} at {res['size']} px on "
        f"{res['device']} ({res['threads']} threads), {res['repeats']} interleaved rounds, "
        f"{res['clock']} clock: "
        f"no-grad forward {res['forward_ms']:.1f} ms {_range(res['forward_ms_range'])}",
        file=file,
    )
    for m in methods:
        r = res[m]
        line = (
            f"  {m:19s} lib {r['lib_ms']:9.1f} ms {_range(r['lib_ms_range']):>15s}  "
            f"({r['over_forward']:.2f}x forward {_range(r['over_forward_range'])})"
        )
        if "pgc_ms" in r:
            who = "captum" if r["reference"] == "captum" else "pytorch-grad-cam"
            line += (
                f"  {who} {r['pgc_ms']:9.1f} ms  speed-up {r['speedup']:.2f}x "
                f"{_range(r['speedup_range'])}  max|diff| {r['max_abs_diff']:.1e}"
            )
        if "forwards_ms" in r:
            line += (
                f"  its forwards {r['forwards_ms']:.1f} ms ({r['over_forwards']:.2f}x "
                f"{_range(r['over_forwards_range'])})"
            )
        print(line, file=file)
    if "all_gradient_ms" in res:
        print(
            f"  all {len(res['all_gradient_methods'])} gradient methods in one call: "
            f"{res['all_gradient_ms']:.1f} ms ({res['all_gradient_over_forward']:.2f}x forward)",
            file=file,
        )
    for m, rows in res.get("levers", {}).items():
        print(f"  levers of {m} (time / the fast path's, paired):", file=file)
        for name, v in rows.items():
            print(
                f"    {name:24s} {v['ms']:9.1f} ms  {v['over_fast_path']:.2f}x "
                f"{_range(v['over_fast_path_range'])}",
                file=file,
            )
    file.flush()


def compile_row(model, x: torch.Tensor, repeats: int = 5) -> dict:
    """``torch.compile`` (inductor) against the accelerator's copy, on one batch ``x`` of masked
    images, no-grad: the first call's time (``compile_s``: compilation and one pass), then
    ``repeats`` interleaved rounds of both (``compiled_ms``, ``copy_ms``, the paired ratio
    ``speedup`` copy / compiled and its range) and max |difference| of their outputs."""
    acc = fast.Accelerator(fast.Settings(pixels_per_pass=None))
    with torch.no_grad():
        expected = model(x)
        copy = acc.prepare(model, (x,), expected)
        if copy is None:
            raise ValueError("the accelerator prepared no copy of this model to compile")
        compiled = fast.Accelerator(fast.Settings(pixels_per_pass=None, compile=True))
        t0 = time.perf_counter()
        fast_c = compiled.prepare(model, (x,), expected)
        compile_s = time.perf_counter() - t0
        if fast_c is None:
            raise ValueError(f"torch.compile's copy did not check out: {compiled.log[-1]}")

        def once(fn):
            return lambda: fn(x)

        timings = interleave(
            [["copy", "compiled"]],
            {"copy": once(copy), "compiled": once(fast_c)},
            repeats,
            clock(x.device),
        )[0]
        diff = float((fast_c(x) - expected).abs().max())
    r = paired(timings["copy"], timings["compiled"])
    return {
        "compile_s": compile_s,
        "compiled_ms": statistics.median(timings["compiled"]),
        "copy_ms": statistics.median(timings["copy"]),
        "speedup": r["median"],
        "speedup_range": r["range"],
        "max_abs_diff": diff,
        "batch": len(x),
        "path": str(compiled.log[-1]),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--layer", default="layer4")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated; also scorecam, ablationcam (slow: try --batch 1) and "
        "Captum's integratedgradients, occlusion, gradientshap",
    )
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    p.add_argument("--size", type=int, default=224)
    p.add_argument(
        "--cam-batch",
        type=int,
        default=64,
        help="batch of masked inputs / ablations / occlusions (both libraries)",
    )
    p.add_argument("--no-pgc", action="store_true", help="time this library only")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's); on a machine shared with other jobs "
        "one thread avoids threads spinning for a core",
    )
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (with --threads 1, "
        "robust to other jobs on a shared CPU)",
    )
    p.add_argument(
        "--levers",
        action="store_true",
        help="also time the slow methods with each lever of lib.fast.Settings "
        "switched, and without an accelerator",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="time only torch.compile against the accelerator's copy, on one batch "
        "of --cam-batch images of --size px",
    )
    a = p.parse_args(argv)
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    if a.compile:
        model = bench_model(a.model, 0, resolve_device(a.device))
        torch.manual_seed(0)
        x = torch.randn(a.cam_batch, 3, a.size, a.size, device=resolve_device(a.device))
        res = compile_row(model, x, a.repeats)
        print(
            f"torch.compile: first call {res['compile_s']:.1f} s; then "
            f"{res['compiled_ms']:.1f} ms a pass against the copy's {res['copy_ms']:.1f} ms "
            f"({res['speedup']:.2f}x {_range(res['speedup_range'])}), max|diff| "
            f"{res['max_abs_diff']:.1e}",
            file=sys.stderr,
        )
        print(json.dumps(res))
        return
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    known = {**PGC_CLASSES, **CAPTUM_CLASSES}
    unknown = [m for m in methods if m not in known]
    if unknown:
        p.error(f"unknown method(s) {unknown}; choose from {', '.join(known)}")
    if a.repeats < 1:
        p.error(f"--repeats must be at least 1, got {a.repeats}")
    res = run(
        a.model,
        a.layer,
        a.batch,
        a.device,
        methods,
        a.repeats,
        a.size,
        pgc=not a.no_pgc,
        cam_batch=a.cam_batch,
        levers=a.levers,
        clock_kind=a.clock,
    )
    report(res, methods)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
