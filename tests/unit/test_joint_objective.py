"""Objective terms under one budget, chained searches, and the face cloak with an expression term — plumbing
with tiny random-weight models (protection itself is pinned by the real-model tests)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from ally.attacks.base import Problem
from ally.attacks.budgets import LinfBudget
from ally.attacks.objectives import ExpressionAway, Terms
from ally.attacks.search import PGD, Chain, SmoothPGD
from ally.expressions import BoxReader, box_crops, square_boxes
from ally.faces.align import face_template
from ally.faces.detect import Face
from ally.levels import FACE_CLOAK, Level
from ally.protect.face_cloak import FaceCloak, region_for
from ally.surrogates import AlignedRecognizer
from ally_models.recognizers import FaceRecognizer


class ToyReader(nn.Module):
    """A random 7-class expression reader on 16-px crops."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.model_id, self.input_size = f"toy-reader{seed}", 16
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(7))
        self.net(torch.zeros(1, 3, 16, 16))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * 30


def _recognizer(seed: int) -> AlignedRecognizer:
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(16))
    backbone(torch.zeros(1, 3, 32, 32))
    rec = FaceRecognizer(backbone, model_id=f"toy{seed}", family="toy", input_size=32, embedding_dim=16,
                         threshold=None).eval()
    return AlignedRecognizer(rec, face_template(0.0))


def _photo(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (np.clip(0.5 + rng.normal(0, 0.12, (h, w, 3)), 0, 1) * 255).astype(np.uint8)


def _face(cx: float, cy: float, side: float) -> Face:
    e = side * 0.2
    landmarks = np.array([[cx - e, cy - e], [cx + e, cy - e], [cx, cy], [cx - e * 0.8, cy + e * 1.2],
                          [cx + e * 0.8, cy + e * 1.2]])
    return Face((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), 0.99, landmarks)


SETTINGS = dataclasses.replace(FACE_CLOAK[Level.MEDIUM], steps=8, site_long_edges=(2048,), min_ssimulacra2=None,
                               eps=0.2, eps_floor=1.0, chroma_fraction=1.0, step_size=0.05, jpeg_quality=(90.0, 90.0))


# -- terms --------------------------------------------------------------------------------------------------
def test_terms_weigh_their_parts_and_skip_a_zero_weight():
    def boom(_v: float) -> torch.Tensor:
        raise AssertionError("a term with weight 0 must not run")

    terms = Terms({"a": (2.0, lambda v: torch.tensor(v)), "b": (0.5, lambda v: torch.tensor(v * v)), "c": (0.0, boom)})
    assert float(terms(3.0)) == pytest.approx(2 * 3 + 0.5 * 9)
    assert float(terms.only("b")(3.0)) == pytest.approx(0.5 * 9)
    with pytest.raises(ValueError):
        Terms({"a": (0.0, boom)})


def test_expression_away_lowers_the_clean_class_odds_and_stops_at_kappa():
    clean = torch.softmax(torch.tensor([[4.0, 1.0, 0, 0, 0, 0, 0]]), -1)
    away = ExpressionAway([clean], kappa=6.0)
    same, moved, far = (torch.tensor([[4.0, 1, 0, 0, 0, 0, 0]]), torch.tensor([[0.0, 1, 4, 0, 0, 0, 0]]),
                        torch.tensor([[-50.0, -50, 9, 0, 0, 0, 0]]))
    assert float(away([moved])) < float(away([same]))
    assert float(away([far])) == pytest.approx(-6.0)  # clamped: the budget left goes to the other terms
    to_neutral = ExpressionAway([clean], target=0)
    assert float(to_neutral([same])) < float(to_neutral([moved]))  # class 0 is the target here
    assert int(away.clean_labels()[0]) == 0


def test_expression_away_still_has_a_gradient_on_a_saturated_reading():
    z = torch.tensor([[30.0, 0, 0, 0, 0, 0, 0]], requires_grad=True)  # p(clean) = 1 - 1e-12
    ExpressionAway([torch.softmax(z.detach(), -1)])([z]).backward()
    assert float(z.grad[0, 0]) == pytest.approx(1.0, abs=1e-3)  # log p would give ~1e-12 here


# -- searches that start from a previous result, and chains -------------------------------------------------
def _quadratic(target: torch.Tensor):
    return lambda x: ((x - target) ** 2).sum()


def test_a_search_starts_from_the_problems_start():
    x0 = torch.full((1, 3, 4, 4), 0.5)
    start = torch.full_like(x0, 0.1)
    problem = Problem(x0, _quadratic(x0), LinfBudget(0.2), start=start)
    out = SmoothPGD(steps=0, step_size=0.01).run(problem, lambda *_: None)
    assert torch.allclose(out, start)
    out = PGD(steps=0, step_size=0.01).run(problem, lambda *_: None)
    assert torch.allclose(out, start)  # no random start when a start is given


def test_a_chain_runs_each_stage_from_the_previous_stages_result():
    x0 = torch.full((1, 3, 4, 4), 0.5)
    first, second = _quadratic(x0 + 0.1), _quadratic(x0 - 0.1)
    problem = Problem(x0, second, LinfBudget(0.3))
    steps: list[tuple[int, int]] = []
    chain = Chain([(SmoothPGD(steps=30, step_size=0.02), first), (SmoothPGD(steps=30, step_size=0.02), None)])
    out = chain(problem, callback=lambda step, total, _loss: steps.append((step, total)))
    assert steps[0] == (1, 60) and steps[-1] == (60, 60)
    alone = SmoothPGD(steps=30, step_size=0.02)(Problem(x0, first, LinfBudget(0.3)))
    then = SmoothPGD(steps=30, step_size=0.02)(Problem(x0, second, LinfBudget(0.3), start=alone))
    assert torch.allclose(out, then, atol=1e-6)
    assert float(out.mean()) == pytest.approx(-0.1, abs=0.02)  # the last stage's objective (None: the problem's)


# -- box crops ----------------------------------------------------------------------------------------------
def test_box_crops_take_the_squared_box_with_its_margin():
    img = torch.zeros(1, 3, 60, 80)
    img[..., 20:40, 30:50] = 1.0  # a white 20-px square, continuous box (30, 20)-(50, 40)
    squares = square_boxes(torch.tensor([[30.0, 25.0, 50.0, 35.0]]), margin=0.0)  # wide box → square on 20
    assert squares.tolist() == [[40.0, 30.0, 20.0]]
    crop = box_crops(img, squares, 10)
    assert torch.allclose(crop, torch.ones_like(crop))
    wide = box_crops(img, square_boxes(torch.tensor([[30.0, 20.0, 50.0, 40.0]]), margin=0.5), 20)
    assert float(wide[..., 5:15, 5:15].min()) == 1.0 and float(wide[..., :4, :].max()) == 0.0


# -- the face cloak with an expression term -----------------------------------------------------------------
def _cloak(**kw) -> FaceCloak:
    readers = kw.pop("readers", [BoxReader(ToyReader(3), 0.1)])
    return FaceCloak(kw.pop("surrogates", [_recognizer(1)]), kw.pop("settings", SETTINGS), readers=readers, **kw)


def test_hiding_the_expression_alone_lowers_the_surrogate_readers_clean_class_inside_the_region():
    rgb = _photo()
    faces = [_face(80, 60, 48)]
    result = _cloak(surrogates=[], identity=False, expression="away").protect(rgb, faces)
    (label, after), = result.faces[0].expression.values()
    reader = BoxReader(ToyReader(3), 0.1)
    before = reader.read(rgb, [faces[0].box])[0]
    assert after < float(before.max()) / 2
    region = region_for(faces[0], rgb.shape[1], rgb.shape[0])
    outside = np.ones(rgb.shape[:2], bool)
    outside[region.y0:region.y1, region.x0:region.x1] = False
    assert np.array_equal(result.rgb[outside], rgb[outside])
    assert result.faces[0].similarity == {}


def test_joint_protection_reports_both_terms_and_a_chained_schedule_runs_the_same_steps():
    rgb = _photo(seed=1)
    faces = [_face(60, 60, 40), _face(115, 55, 40)]
    counts: dict[str, int] = {}
    for schedule in ("joint", "chained"):
        settings = dataclasses.replace(SETTINGS, expression_steps=4, expression_schedule=schedule)
        seen: list[int] = []
        result = _cloak(settings=settings, expression="away").protect(rgb, faces, lambda _f, _n, step, total: seen.append(total))
        counts[schedule] = seen[-1]
        for report in result.faces:
            assert set(report.similarity) == {"toy1"} and set(report.expression) == {"toy-reader3"}
    assert counts == {"joint": 12, "chained": 12}


def test_the_cloak_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="expression reader"):
        FaceCloak([_recognizer(1)], SETTINGS, expression="away")
    with pytest.raises(ValueError, match="nothing to protect"):
        FaceCloak([], SETTINGS, identity=False)
    with pytest.raises(ValueError, match="expression goal"):
        _cloak(expression="sad")


def test_toward_neutral_raises_the_surrogate_readers_neutral_probability():
    rgb = _photo(seed=2)
    faces = [_face(80, 60, 48)]
    reader = BoxReader(ToyReader(3), 0.1)
    before = reader.read(rgb, [faces[0].box])[0]
    result = _cloak(surrogates=[], identity=False, expression="neutral").protect(rgb, faces)
    after = reader.read(result.rgb, [faces[0].box])[0]
    assert after[0] > before[0] + 0.2  # EXPRESSIONS[0] is "neutral"
