"""``ally bench``: seconds per photo, peak memory and visibility, per level, for 1 MP / 12 MP photos, 1 / 5 faces.

Visibility is SSIMULACRA2 and Butteraugli of the protected photo as written (the output encoder's round trip)
against the original at the size that was cloaked, whole and per head (eval/visibility.py: the face box grown by
a quarter each side), measured after the timing and outside it. ``--site NAME`` first brings the photo to what the
site serves and writes it as the site's profile says (``ally.imaging.serve``), inside the timing. The held-out
receipt is inside the timing too.

The photos are made from the real sample photos in the model cache: a crop around one face (or five) resized
to the target pixel count. Each case runs in a fresh subprocess so that its peak memory is its own
(``ru_maxrss`` on the CPU; ``torch.cuda.max_memory_allocated`` on a GPU).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

CASES = {  # name: (megapixels, faces)
    "1MP-1face": (1.0, 1),
    "1MP-5faces": (1.0, 5),
    "12MP-1face": (12.0, 1),
    "12MP-5faces": (12.0, 5),
}
ASPECT = 4 / 3


def make_case_photo(megapixels: float, faces: int) -> np.ndarray:
    """A real photo cropped to ``faces`` faces and resized to ``megapixels`` (4:3)."""
    from ally_models.cache import default_cache

    from .engine import Engine
    from .config import load_config

    cache = default_cache()
    # sample5 is a group of six (MTCNN finds all six): its five largest make the five-face case; sample1's
    # largest face alone makes the one-face case.
    path = cache.files("faceapi-samples", pull=True)["sample1.jpg" if faces == 1 else "sample5.jpg"]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    detected = Engine(load_config(), cache).detector.detect(rgb)
    chosen = sorted(detected, key=lambda f: f.area, reverse=True)[:faces]
    if len(chosen) < faces:
        raise RuntimeError(f"the sample photo has {len(detected)} faces, fewer than {faces}")
    boxes = np.array([f.box for f in chosen])
    x1, y1 = boxes[:, :2].min(0)
    x2, y2 = boxes[:, 2:].max(0)
    pad = 0.6 * (y2 - y1) if faces == 1 else 0.3 * (x2 - x1)
    x1, y1, x2, y2 = x1 - pad, y1 - pad, x2 + pad, y2 + pad
    w, h = x2 - x1, y2 - y1
    if w / h < ASPECT:  # widen to 4:3
        cx = (x1 + x2) / 2
        x1, x2 = cx - h * ASPECT / 2, cx + h * ASPECT / 2
    else:
        cy = (y1 + y2) / 2
        y1, y2 = cy - w / ASPECT / 2, cy + w / ASPECT / 2
    crop = Image.fromarray(rgb).crop((int(x1), int(y1), int(x2), int(y2)))
    height = int(round((megapixels * 1e6 / ASPECT) ** 0.5))
    return np.asarray(crop.resize((int(round(height * ASPECT)), height), Image.Resampling.LANCZOS))


def _child(case: str, level: str, device: str, repeat: int, table: str = "current", vis: bool = True,
           protect: str = "faces,metadata", site_name: str = "") -> dict:
    """Runs inside the subprocess: one case, one level."""
    import resource

    import torch

    from .config import load_config
    from .engine import Engine
    from .eval import visibility
    from .eval.tables import level_table
    from .imaging.io import load_image
    from .imaging.serve import prepare, round_trip
    from .levels import Level
    from .protections import parse_protections
    from .sites import profile

    protections = parse_protections(protect)
    megapixels, faces = CASES[case]
    rgb = make_case_photo(megapixels, faces)
    engine = Engine(load_config(), device=torch.device(device) if device != "auto" else None,
                    levels=level_table(table))
    engine.warm_up()
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, "PNG")
    image = load_image(png.getvalue())
    site = profile(site_name) if site_name else None
    times = []
    found = 0
    for _ in range(repeat):
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()  # the resize to the site's size is part of the job
        served = prepare(image, site=site)
        written = round_trip(served)
        result = engine.protect(served.image, Level.parse(level), protections=protections, site=site, written=written)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        found = len(result.faces)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the visibility measures
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if engine.device.type == "cuda" else None
    # Visibility on the file as written (the site's size and encoder), against the photo at that size.
    seen = visibility.measure(served.image.rgb, written(result.rgb), [f.box for f in result.faces]).to_dict() \
        if vis else None
    return {"case": case, "level": level, "table": table, "protect": protect, "device": str(engine.device),
            "site": site_name or None, "served": [served.image.width, served.image.height],
            "faces_found": found,
            "visibility": seen,
            "pixels": int(rgb.shape[0] * rgb.shape[1]), "seconds": min(times), "seconds_all": times,
            "peak_rss_mb": round(peak_mb), "peak_gpu_mb": gpu_mb, "threads": torch.get_num_threads()}


def _vis_columns(v: dict | None) -> str:
    if v is None:
        return f"{'-':>7} {'-':>8} {'-':>7}"
    faces = [f["ssimulacra2"] for f in v["faces"]]
    ba = v["whole"]["butteraugli"]
    return (f"{v['whole']['ssimulacra2']:>7.1f} {min(faces) if faces else float('nan'):>8.1f} "
            f"{ba if ba is not None else float('nan'):>7.2f}")


def run_bench(args: argparse.Namespace) -> int:
    levels = [lv.strip() for lv in args.levels.split(",") if lv.strip()]
    device = args.device or "auto"
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    table = getattr(args, "table", "current")
    vis = not getattr(args, "no_visibility", False)
    protect = getattr(args, "protect", None) or "faces,metadata"
    print(f"{'case':12} {'level':7} {'device':6} {'faces':>5} {'seconds':>8} {'peak MB':>8} {'SSIMU2':>7} "
          f"{'face min':>8} {'Butter.':>7}")
    cases = [c for c in (getattr(args, "cases", None) or ",".join(CASES)).split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        print(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    for case in cases:
        for level in levels:
            cmd = [sys.executable, "-m", "ally.bench", case, level, device, str(args.repeat), table, str(int(vis)),
                   protect, getattr(args, "site", None) or ""]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{case:12} {level:7} failed:\n{proc.stderr}", file=sys.stderr)
                return 1
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            mem = row["peak_gpu_mb"] if row["peak_gpu_mb"] is not None else row["peak_rss_mb"]
            print(f"{case:12} {level:7} {row['device']:6} {row['faces_found']:>5} {row['seconds']:>8.2f} {mem:>8.0f} "
                  f"{_vis_columns(row['visibility'])}")
    out = args.out / "bench.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    case, level, device, repeat, table, vis, protect, site_arg = sys.argv[1:9]
    print(json.dumps(_child(case, level, device, int(repeat), table, vis == "1", protect, site_arg)))
