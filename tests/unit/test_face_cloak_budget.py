"""The face cloak's budget and batch path, with a tiny random-weight recognizer (plumbing, not protection).

Pinned here: no pixel outside a face's head box changes; colour change stays small in flat areas; the visibility
floor (SSIMULACRA2 of each head — the face box grown by a quarter each side — on the pixels as written, through
the output encoder) holds exactly after the search; all faces in one batch give what one face at a time gives;
faces that match the user's references are pushed away from all of them, and "only me" leaves the others alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from ally.attacks.budgets import LumaChromaBudget, masked_caps
from ally.faces.align import face_template
from ally.faces.detect import Face
from ally.faces.head import head_box
from ally.eval.visibility import ssimulacra2 as reference_ssimulacra2
from ally.levels import FACE_CLOAK, Level
from ally.protect import face_cloak
from ally.protect.face_cloak import FaceCloak, region_for, region_mask
from ally.surrogates import AlignedRecognizer
from ally_models.recognizers import FaceRecognizer
from kornia.color import rgb_to_ycbcr


def _recognizer(seed: int) -> AlignedRecognizer:
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.Flatten(),
                             nn.LazyLinear(16))
    backbone(torch.zeros(1, 3, 32, 32))
    rec = FaceRecognizer(backbone, model_id=f"toy{seed}", family="toy", input_size=32, embedding_dim=16,
                         threshold=None).eval()
    return AlignedRecognizer(rec, face_template(0.0))


def _photo(h: int = 160, w: int = 240, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.5 + 0.2 * np.sin(xx / 9), 0.45 + 0.2 * np.cos(yy / 11), 0.4 + 0.1 * np.sin((xx + yy) / 13)], -1)
    img[:, : w // 3] = 0.55  # a flat wall on the left
    img[:, w // 3:] += rng.normal(0, 0.05, (h, w - w // 3, 3))  # texture elsewhere
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _face(cx: float, cy: float, side: float) -> Face:
    e = side * 0.2
    landmarks = np.array([[cx - e, cy - e], [cx + e, cy - e], [cx, cy], [cx - e * 0.8, cy + e * 1.2],
                          [cx + e * 0.8, cy + e * 1.2]])
    return Face((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), 0.99, landmarks)


SETTINGS = dataclasses.replace(FACE_CLOAK[Level.MEDIUM], steps=6, site_long_edges=(2048,), min_ssimulacra2=70.0)


def _cloak(**kw) -> FaceCloak:
    return FaceCloak([_recognizer(1), _recognizer(2)], kw.pop("settings", SETTINGS), **kw)


def test_no_pixel_outside_the_face_regions_changes():
    rgb = _photo()
    faces = [_face(150, 80, 50), _face(205, 60, 30)]
    out = _cloak().protect(rgb, faces).rgb
    changed = np.any(out != rgb, axis=-1)
    assert changed.any()
    inside = np.zeros_like(changed)
    for face in faces:
        region = region_for(face, rgb.shape[1], rgb.shape[0])
        mask = region_mask(region, *region.size, "ellipse")[0, 0].numpy() > 0
        inside[region.y0:region.y1, region.x0:region.x1] |= mask
    assert not (changed & ~inside).any()


def test_region_mask_fades_to_nothing_at_its_edge_and_is_full_at_the_face():
    region = region_for(_face(100, 100, 60), 400, 400)
    mask = region_mask(region, *region.size, "ellipse")[0, 0]
    for edge in (mask[0], mask[-1], mask[:, 0], mask[:, -1]):
        assert float(edge.max()) < 0.005  # no visible border: the last pixels inside carry < 0.5 % of the change
    h, w = region.size
    assert float(mask[h // 2, w // 2]) == pytest.approx(1.0)


def test_chroma_is_bounded_tighter_than_luma_and_small_in_flat_areas():
    x0 = torch.from_numpy(_photo()).permute(2, 0, 1)[None].float() / 255
    luma, chroma = masked_caps(x0, 0.06, 0.35, 0.25)
    budget = LumaChromaBudget(luma, chroma)
    wild = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)) * 0.5
    delta = budget.project(x0, wild)
    change = rgb_to_ycbcr(x0 + delta) - rgb_to_ycbcr(x0)
    flat = (slice(None), slice(None), slice(10, 150), slice(5, 70))  # inside the flat wall
    assert float(change[:, 1:][flat].abs().max()) <= 0.06 * 0.25 * 0.1 * 1.1  # float error in the local std
    assert float(change[:, :1][flat].abs().max()) <= 0.06 * 0.35 * 1.02
    assert float(change[:, 1:].abs().max()) <= 0.06 * 0.25 + 1e-5
    assert float(change[:, :1].abs().max()) <= 0.06 + 1e-5
    assert ((x0 + delta) >= 0).all() and ((x0 + delta) <= 1).all()


def _jpeg(quality: int):
    import io

    from PIL import Image

    def written(rgb: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=2)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

    return written


@pytest.mark.parametrize("calibrate", [False, True])
def test_the_visibility_floor_holds_on_every_head_as_written(calibrate: bool):
    from PIL import Image, ImageFilter

    # Smooth, like a photo (per-pixel noise is what JPEG throws away first).
    rgb = np.asarray(Image.fromarray(_photo(seed=3)).filter(ImageFilter.GaussianBlur(3)))
    faces = [_face(150, 80, 50), _face(205, 60, 30)]
    strong = dataclasses.replace(SETTINGS, eps=0.3, eps_floor=1.0, chroma_fraction=0.9, step_size=0.08,
                                 calibrate=calibrate)
    written = _jpeg(95)
    for face in faces:  # the encoder alone leaves room for the cloak on every head
        x1, y1, x2, y2 = head_box(face.box, rgb.shape)
        assert reference_ssimulacra2(rgb[y1:y2, x1:x2], written(rgb)[y1:y2, x1:x2]) > 80
    result = _cloak(settings=strong).protect(rgb, faces, written=written)
    shown = written(result.rgb)
    for report, face in zip(result.faces, faces):
        x1, y1, x2, y2 = head_box(face.box, rgb.shape)
        measured = reference_ssimulacra2(rgb[y1:y2, x1:x2], shown[y1:y2, x1:x2])  # PyPI's, on the file's pixels
        assert measured >= 70.0 - 0.05
        assert report.strength > 0
        assert report.ssimulacra2 == pytest.approx(measured, abs=0.1)  # what the receipt shows is what is there
    assert result.photo_ssimulacra2 is not None and result.photo_ssimulacra2 >= 70.0
    if not calibrate:
        assert min(r.strength for r in result.faces) < 1.0  # the floor had to scale this strong search down


def test_a_high_forehead_is_inside_the_checked_head_and_nothing_above_it_changes():
    # A bald head: flat, bright skin from the brows up to the top of the head, where change shows most.
    rgb = _photo(seed=4)
    rgb[:, 120:200] = 200
    face = _face(160, 95, 46)
    strong = dataclasses.replace(SETTINGS, eps=0.3, eps_floor=1.0, chroma_fraction=0.9, step_size=0.08)
    out = _cloak(settings=strong).protect(rgb, [face]).rgb
    x1, y1, x2, y2 = head_box(face.box, rgb.shape)
    changed = np.any(out != rgb, axis=-1)
    assert changed[y1:y2, x1:x2].any()
    changed[y1:y2, x1:x2] = False
    assert not changed.any()  # no pixel outside the head box
    assert reference_ssimulacra2(rgb[y1:y2, x1:x2], out[y1:y2, x1:x2]) >= 70.0 - 0.05


def test_all_faces_in_one_batch_match_one_face_at_a_time():
    rgb = _photo(seed=5)
    faces = [_face(120, 80, 40), _face(190, 70, 40)]
    quiet = dataclasses.replace(SETTINGS, jpeg_quality=(90.0, 90.0), min_ssimulacra2=None)
    batch = _cloak(settings=quiet, align_jitter=False).protect(rgb, faces).rgb.astype(int)
    single = rgb.astype(int)
    for face in faces:
        one = _cloak(settings=quiet, align_jitter=False).protect(rgb, [face]).rgb.astype(int)
        single = single + (one - rgb.astype(int))
    assert np.any(batch != rgb)
    diff = np.abs(batch - single)
    # Same search, same transform draws; what differs is the padding the batch adds around smaller regions.
    assert diff.mean() < 0.05 and np.percentile(diff, 99.9) <= 2


def test_faces_that_match_the_users_references_are_pushed_from_all_of_them(monkeypatch: pytest.MonkeyPatch):
    # Random toy models put every face close together: only the user's own face is at cosine 1.
    monkeypatch.setattr(face_cloak, "USER_MATCH", ("toy1", 0.999))
    rgb = _photo(seed=6)
    me, stranger = _face(120, 80, 44), _face(195, 75, 44)
    cloak = _cloak()
    clean = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    points = torch.tensor(np.stack([me.landmarks]), dtype=torch.float32)
    mine = [e.detach() for e in cloak.embed(clean, points)]  # the user's face as their reference photo
    other = [torch.nn.functional.normalize(torch.randn(3, 16, generator=torch.Generator().manual_seed(k)), dim=-1)
             for k in range(2)]
    refs = [torch.cat([m, o]) for m, o in zip(mine, other)]
    assert _cloak(references=refs).user_faces(rgb, [me, stranger]) == [True, False]
    # The anchor of the user's face is the mean of its clean embedding and every reference; a stranger keeps theirs.
    anchors = _cloak(references=refs)._anchors([torch.stack([m[0], m[0]]) for m in mine], [True, False])
    for a, m, r in zip(anchors, mine, refs):
        assert torch.allclose(a[0], (m[0] + r.sum(0)) / (1 + len(r)))
        assert torch.allclose(a[1], m[0])


def test_only_me_leaves_the_other_faces_untouched(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(face_cloak, "USER_MATCH", ("toy1", 0.999))
    rgb = _photo(seed=6)
    me, stranger = _face(120, 80, 44), _face(195, 75, 44)
    cloak = _cloak()
    clean = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    mine = [e.detach() for e in cloak.embed(clean, torch.tensor(np.stack([me.landmarks]), dtype=torch.float32))]
    result = _cloak(references=mine, only_me=True).protect(rgb, [me, stranger])
    assert result.skipped == 1 and len(result.faces) == 1 and result.faces[0].user
    x1, y1, x2, y2 = head_box(stranger.box, rgb.shape)
    mx1, _, mx2, _ = head_box(me.box, rgb.shape)
    changed = np.any(result.rgb != rgb, axis=-1)
    assert changed[:, mx1:mx2].any()
    assert not changed[y1:y2, max(x1, mx2):x2].any()  # the stranger's head (where it does not overlap mine)
    with pytest.raises(ValueError, match="reference photos"):
        _cloak(only_me=True)
