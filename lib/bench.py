"""Time the CAM engine against pytorch-grad-cam, side by side, on the same batch.

    python -m lib.bench --model resnet50 --layer layer4 --batch 16 --device cpu
    python -m lib.bench --methods scorecam,ablationcam --batch 1 --device cuda

Prints a table, then, as its last line, one JSON object: ``forward_ms`` (a no-grad forward of
the batch), and for each method ``lib_ms``, ``pgc_ms`` (medians of ``--repeats`` timed runs after
a warm-up) and ``max_abs_diff`` between both maps after the same post-processing
(pytorch-grad-cam's; Eigen-CAM with ``sign="svd"``, the sign pytorch-grad-cam's SVD gives).
``all_gradient_ms`` is every gradient-based method in one call (``cam.compute_many``); for
Score-CAM, ``forwards_ms`` is the bare cost of the N*K masked forward passes it needs (timed
before and after both libraries and averaged, since a single slow run is timed once).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

from lib import cam
from lib.notebook import resolve_device

DEFAULT_METHODS = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "eigencam")
PGC_CLASSES = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "xgradcam": "XGradCAM",
               "hirescam": "HiResCAM", "layercam": "LayerCAM", "eigencam": "EigenCAM",
               "scorecam": "ScoreCAM", "ablationcam": "AblationCAM"}


def _timer(fn, device, repeats, warmup=1):
    def once():
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1e3, out

    for _ in range(warmup):
        once()
    times, out = [], None
    for _ in range(repeats):
        t, out = once()
        times.append(t)
    return statistics.median(times), out


def run(model_name="resnet50", layer="layer4", batch=16, device="cpu", methods=DEFAULT_METHODS,
        repeats=5, size=224, seed=0, pgc=True, cam_batch=64):
    import pytorch_grad_cam
    import torchvision

    dev = resolve_device(device)
    torch.manual_seed(seed)
    model = getattr(torchvision.models, model_name)(weights=None).to(dev).eval()
    x = torch.randn(batch, 3, size, size, device=dev)
    module = cam.resolve_layer(model, layer)
    slow = {"scorecam", "ablationcam"}
    result = {"model": model_name, "layer": layer, "batch": batch, "device": str(dev),
              "size": size, "torch": torch.__version__, "threads": torch.get_num_threads()}

    def forward():
        with torch.no_grad():
            return model(x)

    # the no-grad forward is timed before and after the methods, pooled: a machine that warms up
    # or cools down during the run then biases no ratio one way
    fwd_times = [_timer(forward, dev, 1, warm)[0] for warm in [2] + [0] * (repeats - 1)]
    for method in methods:
        reps = 1 if method in slow else repeats
        warm = 0 if method in slow else 2
        if method == "scorecam":  # its N*K bare forward passes, timed before and after both
            channels = _channels(model, module, x)

            def score_forwards():
                with torch.no_grad():
                    for i in range(batch):
                        for lo in range(0, channels, cam_batch):
                            n = min(cam_batch, channels - lo)
                            model(x[i:i + 1].expand(n, -1, -1, -1) * 0.5)

            before, _ = _timer(score_forwards, dev, 1, 0)
        lib_ms, ours = _timer(lambda: cam.compute(model, x, layer, method, batch_size=cam_batch),
                              dev, reps, warm)
        row = {"lib_ms": lib_ms}
        if pgc:
            cls = getattr(pytorch_grad_cam, PGC_CLASSES[method])

            def ref_call():
                with cls(model=model, target_layers=[module]) as c:
                    if hasattr(c, "batch_size"):
                        c.batch_size = cam_batch
                    return c(x, targets=None)

            row["pgc_ms"], ref = _timer(ref_call, dev, reps, warm)
            if method == "eigencam":  # timed with our sign convention, compared with pgc's
                ours = cam.compute(model, x, layer, method, options={"eigencam": {"sign": "svd"}})
            post = cam.postprocess(ours, size, preset=cam.PGC_PRESET).cpu().numpy()
            row["max_abs_diff"] = float(np.abs(post - ref).max())
            row["speedup"] = row["pgc_ms"] / lib_ms
        row["over_forward"] = lib_ms  # divided by forward_ms below, once it is pooled
        if method == "scorecam":
            after, _ = _timer(score_forwards, dev, 1, 0)
            row["forwards_ms"] = (before + after) / 2
            row["forwards_before_after_ms"] = [before, after]
            row["over_forwards"] = lib_ms / row["forwards_ms"]
        result[method] = row
    fwd_times += [_timer(forward, dev, 1, 0)[0] for _ in range(repeats)]
    result["forward_ms"] = statistics.median(fwd_times)
    for method in methods:
        result[method]["over_forward"] /= result["forward_ms"]
    grad_methods = [m for m in methods if m in cam.GRADIENT_METHODS]
    if len(grad_methods) > 1:
        result["all_gradient_ms"], _ = _timer(
            lambda: cam.compute_many(model, x, layer, grad_methods), dev, repeats)
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--layer", default="layer4")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help="comma-separated; also scorecam, ablationcam (slow: try --batch 1)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--cam-batch", type=int, default=64,
                   help="batch of masked inputs / ablations (both libraries)")
    p.add_argument("--no-pgc", action="store_true", help="time this library only")
    a = p.parse_args(argv)
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in PGC_CLASSES]
    if unknown:
        p.error(f"unknown method(s) {unknown}; choose from {', '.join(PGC_CLASSES)}")
    res = run(a.model, a.layer, a.batch, a.device, methods, a.repeats, a.size, pgc=not a.no_pgc,
              cam_batch=a.cam_batch)
    print(f"{res['model']} {res['layer']} batch {res['batch']} on {res['device']} "
          f"({res['threads']} threads): no-grad forward {res['forward_ms']:.1f} ms", file=sys.stderr)
    for m in methods:
        r = res[m]
        line = f"  {m:12s} lib {r['lib_ms']:9.1f} ms  ({r['over_forward']:.2f}x forward)"
        if "pgc_ms" in r:
            line += (f"  pytorch-grad-cam {r['pgc_ms']:9.1f} ms  speed-up {r['speedup']:.2f}x"
                     f"  max|diff| {r['max_abs_diff']:.1e}")
        if "forwards_ms" in r:
            line += f"  its forwards {r['forwards_ms']:.1f} ms ({r['over_forwards']:.2f}x)"
        print(line, file=sys.stderr)
    if "all_gradient_ms" in res:
        print(f"  all {len(res['all_gradient_methods'])} gradient methods in one call: "
              f"{res['all_gradient_ms']:.1f} ms", file=sys.stderr)
    sys.stderr.flush()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
