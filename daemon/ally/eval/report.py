"""The face evaluation as a Markdown table and a PNG plot."""

from __future__ import annotations

from pathlib import Path


def _pair(q: dict, key: str) -> str:
    """'mean (worst)' of a visibility figure; '100 / 0 (original)' for the baseline; 'n/a' when unavailable."""
    worst = "max" if "butteraugli" in key else "min"
    mean, bad = q.get(f"{key}_mean"), q.get(f"{key}_{worst}")
    if q.get("ssim_mean") is None:  # level off: the original itself
        return "0 (original)" if "butteraugli" in key else "100 (original)"
    if mean is None:
        return "n/a"
    return f"{mean:.1f} ({bad:.1f})"


def table(result: dict) -> str:
    q = result["quality"]
    lines = [
        "| level | condition | evaluator | faces | identified | match rate | not detected | pairs matched |"
        " SSIMULACRA2 photo mean (min) | face mean (min) | Butteraugli photo mean (max) | face mean (max) |"
        " PSNR dB | SSIM mean (min) | s/photo |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in result["cells"]:
        lq = q[c["level"]]
        ssim = f"{lq['ssim_mean']:.4f} ({lq['ssim_min']:.4f})" if lq["ssim_mean"] is not None else "1 (original)"
        psnr = f"{lq['psnr_mean']:.1f}" if lq["psnr_mean"] is not None else "∞"
        pairs = f"{c['pairs_matched']}/{c['pairs']}"
        vis = " | ".join(_pair(lq, k) for k in ("ssimulacra2", "face_ssimulacra2", "butteraugli", "face_butteraugli"))
        lines.append(f"| {c['level']} | {c['condition']} | {c['evaluator']} | {c['faces']} | {c['identified']} | "
                     f"{100 * c['match_rate']:.1f} % | {c['not_detected']} | {pairs} | {vis} | {psnr} | {ssim} | "
                     f"{lq['seconds_mean']:.1f} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = list(dict.fromkeys(c["level"] for c in result["cells"]))
    conditions = result["conditions"]
    evaluators = [e["name"] for e in result["evaluators"]]
    fig, axes = plt.subplots(1, len(evaluators), figsize=(6 * len(evaluators), 4), squeeze=False)
    width = 0.8 / len(conditions)
    for ax, ev in zip(axes[0], evaluators):
        for k, cond in enumerate(conditions):
            rates = [next((100 * c["match_rate"] for c in result["cells"]
                           if c["level"] == lv and c["condition"] == cond and c["evaluator"] == ev), 0.0)
                     for lv in levels]
            ax.bar([i + k * width for i in range(len(levels))], rates, width, label=cond)
        ax.axhline(10, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks([i + width * (len(conditions) - 1) / 2 for i in range(len(levels))], levels)
        ax.set_ylim(0, 100)
        ax.set_ylabel("identified (%)")
        ax.set_title(f"held-out {ev}")
        ax.legend(fontsize=8)
    usable = max((c["faces"] for c in result["cells"]), default=0)  # faces the evaluators find in the originals
    fig.suptitle("Face recognition match rate against other photos of the same person "
                 f"({usable} of {result['probe_faces']} labelled faces usable by the evaluators)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(result: dict, out: Path) -> str:
    text = table(result)
    (out / "faces.md").write_text(text + "\n")
    plot(result, out / "faces.png")
    return text
