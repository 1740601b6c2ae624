"""The head: what a person looks at when they look at a face, and where the cloak's visibility is judged.

A detector's face box runs from the brows to the chin; people see the forehead, hairline and jaw too. The head
box is the face box grown by ``HEAD_PAD`` of its size on each side: the cloak may change pixels only inside it,
and its visibility floor, the receipt, ``ally eval faces`` and ``ally bench`` all measure it there.
"""

from __future__ import annotations

import math

HEAD_PAD = 0.25

Box = tuple[float, float, float, float]


def head_box(box: Box, shape: tuple[int, ...], pad: float = HEAD_PAD) -> tuple[int, int, int, int]:
    """Integer pixel bounds (x1, y1, x2, y2) of the face ``box`` grown by ``pad`` of its size on each side,
    clipped to an image of ``shape`` (H, W, …). Rounded outward, so the float box lies inside."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    height, width = shape[:2]
    return (max(0, math.floor(x1 - pad * w)), max(0, math.floor(y1 - pad * h)),
            min(width, math.ceil(x2 + pad * w)), min(height, math.ceil(y2 + pad * h)))
