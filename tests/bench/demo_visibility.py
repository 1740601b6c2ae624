"""How visible the cloak is on the demo photo (face-api's sample1.jpg), next to JPEG re-encodes for scale.

Protects the photo at each level of a level table (``--table current|v1|fawkes``), writes it as `ally protect`
would, and reports SSIMULACRA2 and Butteraugli against the original — whole photo and each face region, at
native resolution — beside the same photo re-encoded as JPEG at quality 95 / 75 / 50 / 30. 1:1 crops
(original | protected | amplified difference) of every face go to ``--out``.

    .venv/bin/python tests/bench/demo_visibility.py --table v1 --levels low,medium,high
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ally.config import load_config
from ally.engine import Engine
from ally.eval import visibility
from ally.eval.tables import level_table
from ally.imaging.io import load_image, save_image
from ally.levels import Level
from ally_models.cache import default_cache

JPEG_QUALITIES = (95, 75, 50, 30)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _print_row(r: dict) -> None:
    fs = [f["ssimulacra2"] for f in r["faces"]]
    fb = [f["butteraugli"] for f in r["faces"] if f["butteraugli"] is not None]
    ba = r["whole"]["butteraugli"]
    print(f"| {r['what']} | {r['whole']['ssimulacra2']:.1f} | {np.mean(fs):.1f} ({min(fs):.1f}) | "
          f"{'n/a' if ba is None else f'{ba:.2f}'} | {f'{np.mean(fb):.2f} ({max(fb):.2f})' if fb else 'n/a'} |",
          flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", default="current")
    ap.add_argument("--levels", default="low,medium,high")
    ap.add_argument("--photo", type=Path, help="default: faceapi-samples/sample1.jpg from the model cache")
    ap.add_argument("--out", type=Path, default=Path("artifacts/eval/demo"))
    args = ap.parse_args()
    cache = default_cache()
    path = args.photo or cache.files("faceapi-samples", pull=True)["sample1.jpg"]
    image = load_image(path)
    engine = Engine(load_config(), cache, levels=level_table(args.table))
    engine.warm_up()
    boxes = [f.box for f in engine.detector.detect(image.rgb)]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    print("| what | SSIMULACRA2 photo | faces mean (min) | Butteraugli photo | faces mean (max) |")
    print("|---|---:|---:|---:|---:|", flush=True)
    for q in JPEG_QUALITIES:
        v = visibility.measure(image.rgb, _jpeg(image.rgb, q), boxes)
        rows.append({"what": f"JPEG q{q}", **v.to_dict()})
        _print_row(rows[-1])
    for name in args.levels.split(","):
        level = Level.parse(name)
        protected = engine.protect(image, level).rgb
        buf = io.BytesIO()
        save_image(protected, image, buf)  # as `ally protect` writes it
        written = load_image(buf.getvalue()).rgb
        v = visibility.measure(image.rgb, written, boxes)
        rows.append({"what": f"{args.table} {level.value}", **v.to_dict()})
        _print_row(rows[-1])
        for i, box in enumerate(boxes):
            Image.fromarray(visibility.side_by_side(image.rgb, written, box)).save(
                args.out / f"{args.table}-{level.value}-face{i}.png")
    (args.out / f"demo-{args.table}.json").write_text(json.dumps({"photo": str(path), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
