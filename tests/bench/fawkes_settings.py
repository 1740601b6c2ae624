"""Side by side with Fawkes' published settings, on the same photos and held-out evaluators as `ally eval faces`.

Fawkes itself cannot run here (its packaged build downloads its feature extractors from a university mirror at
run time, and needs TensorFlow), so this runs *our* optimiser under Fawkes 1.0's published budgets — DSSIM
≤ 0.012 at 75 steps ("mid") and ≤ 0.017 at 150 steps ("high"), 224 px crops (the ``fawkes`` table of
ally/eval/tables.py, which says why the rows keep an L∞ cap) — next to our own medium, and reports the
held-out match rates under both threat models, SSIMULACRA2 and Butteraugli (whole photo and face regions),
PSNR, SSIM and seconds per photo of each, plus the identification-vs-SSIMULACRA2 curve.

    .venv/bin/python tests/bench/fawkes_settings.py --per-identity 1 --probes 5 --fawkes mid --split report
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ally.config import load_config
from ally.eval.dataset import load_eval_set
from ally.eval.evaluators import load_evaluators
from ally.eval.faces import evaluate_tables
from ally.eval.report import write_report
from ally.eval.tables import FAWKES, FAWKES_NAMES
from ally.levels import Level
from ally_models.cache import default_cache


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-identity", type=int, default=1)
    ap.add_argument("--evaluators", default="dlib-resnet,faceapi-resnet")
    ap.add_argument("--probes", type=int, default=0, help="only the first N probe photos (0: all)")
    ap.add_argument("--fawkes", default="mid", help="which Fawkes settings: mid, high or mid,high")
    ap.add_argument("--ours", default="medium", help="our levels beside them (current table), e.g. medium,high")
    ap.add_argument("--split", choices=["tune", "report", "all"], default="all")
    ap.add_argument("--out", type=Path, default=Path("artifacts/eval/fawkes"))
    args = ap.parse_args()
    cache = default_cache()
    data = load_eval_set(cache)
    identities = data.split(args.split)
    probes = data.probes(args.per_identity or None, identities)
    probes = probes[:args.probes] if args.probes else probes
    slots = {"mid": Level.LOW, "high": Level.HIGH}
    levels = {"fawkes": [slots[name] for name in args.fawkes.split(",")],
              "current": [Level.parse(v) for v in args.ours.split(",") if v]}
    args.out.mkdir(parents=True, exist_ok=True)
    result = evaluate_tables(load_config(), cache, data, load_evaluators(cache, args.evaluators.split(",")),
                             levels, probes, crops=args.out / "crops", identities=identities)
    result["settings"] = {"fawkes": {FAWKES_NAMES[k]: vars(v) for k, v in FAWKES.items()},
                          "per_identity": args.per_identity, "split": args.split}
    (args.out / "faces.json").write_text(json.dumps(result, indent=2, default=list))
    print(write_report(result, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
