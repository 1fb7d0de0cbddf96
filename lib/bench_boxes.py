"""How fast ``lib.metrics.gradcam_boxes`` turns maps into boxes, on one CPU core.

    python -m lib.bench_boxes                 # 2000 maps at 224 px, 7 x 7 maps up-sampled
    python -m lib.bench_boxes --n 5000 --low 14 --repeats 5

The maps look like Grad-CAM's: random non-negative ``low x low`` maps (cubed, so several peaks),
bilinearly up-sampled to ``size`` and min-max normalised, as ``lib.cam.postprocess`` gives them.
Torch and OpenCV are held to one thread. Prints one line per repeat, then, as its last line, one
JSON object with ``maps_per_cpu_s`` (maps per second of this process's CPU time, the figure that
does not depend on what else the machine runs), ``maps_per_s`` (per wall-clock second), both the
median repeat, and the settings. Nagy et al.'s full profile needs at least 500 maps/s at 224 px on
one core to keep up with a GPU (issue #11).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import cv2
import torch

from lib import cam, metrics


def maps_like_gradcam(n: int, size: int = 224, low: int = 7, seed: int = 0) -> torch.Tensor:
    """``n`` Grad-CAM-like maps (n, size, size) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    raw = torch.rand(n, low, low, generator=g) ** 3
    return cam.postprocess(raw, size)


def run(
    n: int = 2000,
    size: int = 224,
    low: int = 7,
    repeats: int = 3,
    threshold: float = 0.15,
    seed: int = 0,
    verbose: bool = True,
) -> dict:
    """Time ``metrics.gradcam_boxes`` on ``n`` maps, ``repeats`` times, torch and OpenCV held to
    one thread (their thread counts are restored afterwards)."""
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        maps = maps_like_gradcam(n, size, low, seed)
        metrics.gradcam_boxes(maps[:50], threshold)  # warm-up (imports, allocations)
        rates, cpu_rates = [], []
        for r in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            boxes = metrics.gradcam_boxes(maps, threshold)
            dt, dc = time.perf_counter() - t0, max(time.process_time() - c0, 1e-9)
            rates.append(n / dt)
            cpu_rates.append(n / dc)
            if verbose:
                print(
                    f"repeat {r + 1}: {n} maps in {dt:.3f} s wall, {dc:.3f} s CPU = "
                    f"{n / dc:,.0f} maps per CPU second ({n / dt:,.0f} per wall second)",
                    file=sys.stderr,
                )
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    rate, cpu_rate = statistics.median(rates), statistics.median(cpu_rates)
    return {
        "maps_per_cpu_s": round(cpu_rate, 1),
        "maps_per_s": round(rate, 1),
        "ms_cpu_per_map": round(1e3 / cpu_rate, 4),
        "n": n,
        "size": size,
        "low": low,
        "threshold": threshold,
        "repeats": repeats,
        "no_box": int((boxes[:, 0] == metrics.NO_BOX).sum()),
        "threads": 1,
        "opencv": cv2.__version__,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="maps per repeat")
    p.add_argument("--size", type=int, default=224, help="map side (px)")
    p.add_argument("--low", type=int, default=7, help="side of the map before up-sampling")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threshold", type=float, default=0.15)
    args = p.parse_args(argv)
    if args.n < 1 or args.size < 2 or args.low < 1 or args.repeats < 1:
        p.error("--n, --size, --low and --repeats must be positive")
    print(json.dumps(run(args.n, args.size, args.low, args.repeats, args.threshold)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
