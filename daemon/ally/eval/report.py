"""The face evaluation as Markdown tables and PNG plots (match rates per level; identification vs SSIMULACRA2)."""

from __future__ import annotations

from pathlib import Path

CURVE_CONDITION = "JPEG 75 + 1080 px"  # the curve's site condition (Instagram-like)


def _pair(q: dict, key: str) -> str:
    """'mean (worst)' of a visibility figure; '100 / 0 (original)' for the baseline; 'n/a' when unavailable."""
    worst = "max" if "butteraugli" in key else "min"
    mean, bad = q.get(f"{key}_mean"), q.get(f"{key}_{worst}")
    if q.get("ssim_mean") is None:  # level off: the original itself
        return "0 (original)" if "butteraugli" in key else "100 (original)"
    if mean is None:
        return "n/a"
    return f"{mean:.1f} ({bad:.1f})"


def visibility_table(result: dict) -> str:
    lines = ["| level | SSIMULACRA2 photo mean (min) | face mean (min) | Butteraugli photo mean (max) | "
             "face mean (max) | PSNR dB | SSIM mean (min) | s/photo |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for level, q in result["quality"].items():
        vis = " | ".join(_pair(q, k) for k in ("ssimulacra2", "face_ssimulacra2", "butteraugli", "face_butteraugli"))
        ssim = f"{q['ssim_mean']:.4f} ({q['ssim_min']:.4f})" if q["ssim_mean"] is not None else "1 (original)"
        psnr = f"{q['psnr_mean']:.1f}" if q["psnr_mean"] is not None else "∞"
        lines.append(f"| {level} | {vis} | {psnr} | {ssim} | {q['seconds_mean']:.1f} |")
    notes = {q.get("butteraugli_note") for q in result["quality"].values()} - {None}
    return "\n".join(lines + [f"\nButteraugli unavailable: {n}" for n in sorted(notes)])


def table(result: dict) -> str:
    lines = [
        "| level | threat | probes | condition | evaluator | faces | identified | match rate | not detected |"
        " pairs matched |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in result["cells"]:
        pairs = f"{c['pairs_matched']}/{c['pairs']}"
        lines.append(f"| {c['level']} | {c.get('threat', 'probe')} | {c.get('probe', 'all')} | {c['condition']} | "
                     f"{c['evaluator']} | {c['faces']} | {c['identified']} | {100 * c['match_rate']:.1f} % | "
                     f"{c['not_detected']} | {pairs} |")
    return "\n".join(lines)


def _all(result: dict, threat: str = "probe") -> list[dict]:
    return [c for c in result["cells"] if c.get("threat", "probe") == threat and c.get("probe", "all") == "all"]


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = _all(result)
    levels = list(dict.fromkeys(c["level"] for c in cells))
    conditions = result["conditions"]
    evaluators = [e["name"] for e in result["evaluators"]]
    fig, axes = plt.subplots(1, len(evaluators), figsize=(max(6, 1.2 * len(levels)) * len(evaluators), 4),
                             squeeze=False)
    width = 0.8 / len(conditions)
    for ax, ev in zip(axes[0], evaluators):
        for k, cond in enumerate(conditions):
            rates = [next((100 * c["match_rate"] for c in cells
                           if c["level"] == lv and c["condition"] == cond and c["evaluator"] == ev), 0.0)
                     for lv in levels]
            ax.bar([i + k * width for i in range(len(levels))], rates, width, label=cond)
        ax.axhline(10, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks([i + width * (len(conditions) - 1) / 2 for i in range(len(levels))], levels,
                      rotation=20, fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_ylabel("identified (%)")
        ax.set_title(f"held-out {ev}")
        ax.legend(fontsize=8)
    usable = max((c["faces"] for c in cells), default=0)  # faces the evaluators find in the originals
    fig.suptitle("Protected photo as probe, clean photos of the person as gallery "
                 f"({usable} of {result['probe_faces']} labelled faces usable by the evaluators)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def curve_condition(result: dict) -> str:
    """JPEG 75 + 1080 px when it was measured, else the last condition."""
    return CURVE_CONDITION if CURVE_CONDITION in result["conditions"] else result["conditions"][-1]


def curve_points(result: dict) -> list[dict]:
    """One point per (table, level, evaluator, threat): whole-photo SSIMULACRA2 mean and identification rate."""
    condition = curve_condition(result)
    points = []
    for threat in ("probe", "gallery"):
        for c in _all(result, threat):
            if c["condition"] != condition:
                continue
            q = result["quality"][c["level"]]
            x = q["ssimulacra2_mean"] if q["ssimulacra2_mean"] is not None else 100.0
            points.append({"table": c.get("table", "current") if c["level"] != "off" else "off",
                           "level": c["level"], "evaluator": c["evaluator"], "threat": threat,
                           "ssimulacra2": x, "ssimulacra2_min": q["ssimulacra2_min"],
                           "face_ssimulacra2": q["face_ssimulacra2_mean"], "butteraugli": q["butteraugli_mean"],
                           "identified": 100 * c["match_rate"], "faces": c["faces"], "condition": condition})
    return points


def curve_table(points: list[dict]) -> str:
    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    condition = points[0]["condition"] if points else CURVE_CONDITION
    lines = [f"Identification after {condition} against whole-photo SSIMULACRA2 (mean over the probe photos).",
             "", "| table | level | threat | evaluator | SSIMULACRA2 photo mean (min) | face mean | Butteraugli | "
             "identified | faces |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for p in points:
        lines.append(f"| {p['table']} | {p['level']} | {p['threat']} | {p['evaluator']} | {p['ssimulacra2']:.1f} "
                     f"({f(p['ssimulacra2_min'], '.1f')}) | {f(p['face_ssimulacra2'], '.1f')} | "
                     f"{f(p['butteraugli'], '.2f')} | {p['identified']:.1f} % | {p['faces']} |")
    return "\n".join(lines)


def plot_curve(points: list[dict], path: Path) -> None:
    """Identification rate (y) against SSIMULACRA2 (x): one line per level table; lower right is better."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluators = list(dict.fromkeys(p["evaluator"] for p in points))
    threats = list(dict.fromkeys(p["threat"] for p in points))
    fig, axes = plt.subplots(len(threats), len(evaluators), figsize=(6 * len(evaluators), 4.5 * len(threats)),
                             squeeze=False)
    styles = {"current": ("tab:green", "o"), "v1": ("tab:red", "s"), "fawkes": ("tab:blue", "^")}
    for r, threat in enumerate(threats):
        for k, ev in enumerate(evaluators):
            ax = axes[r][k]
            mine = [p for p in points if p["evaluator"] == ev and p["threat"] == threat]
            base = [p for p in mine if p["table"] == "off"]
            for table in dict.fromkeys(p["table"] for p in mine if p["table"] != "off"):
                pts = sorted((p for p in mine if p["table"] == table), key=lambda p: -p["ssimulacra2"])
                colour, marker = styles.get(table, ("tab:grey", "x"))
                ax.plot([p["ssimulacra2"] for p in pts], [p["identified"] for p in pts], marker=marker,
                        color=colour, label="new levels" if table == "current" else table)
                for p in pts:
                    ax.annotate(p["level"].split(" (")[0], (p["ssimulacra2"], p["identified"]), fontsize=7,
                                textcoords="offset points", xytext=(4, 4))
            for p in base:
                ax.plot([p["ssimulacra2"]], [p["identified"]], "k*", markersize=10, label="unprotected")
            for x, label in ((70, "good"), (80, "high quality"), (90, "visually lossless")):
                ax.axvline(x, color="grey", linewidth=0.6, linestyle=":")
                ax.text(x, 101, label, fontsize=7, ha="center")
            ax.set_xlim(min([p["ssimulacra2"] for p in mine] + [30]) - 5, 102)
            ax.set_ylim(0, 105)
            ax.set_xlabel("SSIMULACRA2, whole photo as written (higher: less visible)")
            ax.set_ylabel(f"identified after {mine[0]['condition']} (%)")
            ax.set_title(f"{ev}, threat: {threat}", fontsize=10)
            ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Identification vs visibility: lower right is better")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(result: dict, out: Path) -> str:
    text = visibility_table(result) + "\n\n" + table(result)
    (out / "faces.md").write_text(text + "\n")
    plot(result, out / "faces.png")
    points = curve_points(result)
    if points:
        (out / "curve.md").write_text(curve_table(points) + "\n")
        plot_curve(points, out / "curve.png")
    return text
