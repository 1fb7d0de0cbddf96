"""``python -m lib.rf MODEL``: the theoretical RF of every feature map of a model of
:func:`lib.models.zoo.build` (untrained, on the meta device); ``python -m lib.rf deadzone``: the
dead rows of Taimeskhanov et al.'s masked VGG16."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from lib.models.masked_vgg import MaskedVGG
from lib.models.zoo import build

from .dead_zone import dead_zone
from .fields import _fmt, rf_table

CLI_MODELS = (
    "resnet50",
    "densenet121",
    "efficientnet_b0",
    "vgg16",
    "alexnet",
    "masked_vgg16",
    "efficientnet_lite0",
)


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["deadzone"]:
        p = argparse.ArgumentParser(
            prog="python -m lib.rf deadzone",
            description="Dead rows of Taimeskhanov et al.'s masked VGG16.",
        )
        p.add_argument("--mask-rows", type=int, default=9)
        p.add_argument("--input-size", type=int, default=224)
        a = p.parse_args(argv[1:])

        # The RF does not depend on the channel widths: a narrow VGG16 traces and runs faster.
        with torch.device("meta"):
            features = MaskedVGG(
                num_classes=2, input_size=a.input_size, masked_rows=0, hidden=2
            ).features
        dz = dead_zone(features, a.input_size, a.mask_rows)
        span = f"rows {dz.rows[0]}..{dz.rows[-1]}" if dz.rows else "none"
        print(
            f"{dz.n} dead rows ({100 * dz.fraction:.1f} %): {span}; input {a.input_size} px, "
            f"{a.mask_rows} of {dz.rf.out_h} feature rows masked, RF {_fmt(dz.rf.y.rf_max)}, "
            f"jump {_fmt(dz.rf.y.jump)}"
        )
        return 0
    p = argparse.ArgumentParser(
        prog="python -m lib.rf", description="Theoretical receptive field of every feature map."
    )
    p.add_argument(
        "model",
        help=f"one of {', '.join(CLI_MODELS)} or any torchvision model name;"
        " or 'deadzone --mask-rows K --input-size S'",
    )
    p.add_argument("--input-size", type=int, default=224)
    a = p.parse_args(argv)
    with torch.device("meta"):  # shapes only: no weight initialisation, no arithmetic
        model = build(a.model)
    prefix = ""
    if a.model == "masked_vgg16":  # its forward checks shapes in Python: trace .features
        model, prefix = model.features, "features."
    df = rf_table(model, a.input_size)
    print(f"# name rf_min rf_max stride   ({a.model}, input {a.input_size} px)")
    for r in df.itertuples():
        name = prefix + r.name if r.name else (prefix.rstrip(".") or "<output>")
        print(f"{name} {_fmt(r.rf_min)} {_fmt(r.rf_max)} {_fmt(r.jump)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
