"""The training losses (`aecluster.losses`) against values computed independently of them."""

import math

import numpy as np
import pytest
import torch

from aecluster.losses import (
    CodeDistillationLoss,
    FeatureRegressionLoss,
    NTXentLoss,
    ReconstructionLoss,
    SCANLoss,
    SimilarityDistillationLoss,
    Step,
    WeightedLosses,
    build_losses,
    code_distillation,
    map_distillation,
    nt_xent,
    similarity_distillation,
)
from aecluster.registry import TrainSettings


def step_of(codes=None, projection=None, clean=None, reconstruction=None, teacher=None):
    """A `Step` holding only what a test's loss reads."""
    return Step(encoder=None, batch=clean, clean=clean, codes=codes, reconstruction=reconstruction,
                projection=projection, teacher=teacher)


class FixedTeacher(torch.nn.Module):
    """A teacher whose codes of any views are fixed random vectors of `code_dim` dimensions."""

    code_dim = 24

    def encode_as_given(self, views):
        return torch.randn(len(views), self.code_dim, generator=torch.Generator().manual_seed(0))


def nt_xent_by_hand(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    """SimCLR's loss written out: each of the 2N rows' cross-entropy of its partner among the
    other 2N - 1 rows, on cosine similarities over the temperature."""
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n, total = len(z1), 0.0
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        others = [math.exp(z[i] @ z[j] / temperature) for j in range(2 * n) if j != i]
        total -= math.log(math.exp(z[i] @ z[partner] / temperature) / sum(others))
    return total / (2 * n)


def test_nt_xent_of_two_pairs_matches_the_formula():
    z1 = np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]])
    z2 = np.array([[1.0, 0.5, 1.5], [-0.5, -1.0, 0.5]])
    for temperature in (0.5, 0.1):
        value = nt_xent(torch.tensor(z1, dtype=torch.float32), torch.tensor(z2, dtype=torch.float32), temperature)
        assert float(value) == pytest.approx(nt_xent_by_hand(z1, z2, temperature), rel=1e-5)


def test_nt_xent_prefers_matching_views():
    z = torch.randn(16, 8)
    assert nt_xent(z, z, 0.5) < nt_xent(z, torch.randn(16, 8), 0.5)


def test_the_nt_xent_loss_holds_its_temperature_and_pairs_the_two_views():
    z1, z2 = torch.randn(4, 6), torch.randn(4, 6)
    loss = NTXentLoss(temperature=0.2)
    assert loss.temperature == 0.2
    assert torch.equal(loss(step_of(projection=torch.cat([z1, z2]))), nt_xent(z1, z2, 0.2))


def test_reconstruction_is_the_mean_squared_error():
    clean, reconstruction = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    expected = np.mean((reconstruction.numpy() - clean.numpy()) ** 2)
    value = ReconstructionLoss()(step_of(clean=clean, reconstruction=reconstruction))
    assert float(value) == pytest.approx(float(expected), rel=1e-6)


def test_similarity_distillation_of_identical_and_of_orthogonal_codes():
    codes = torch.randn(6, 5)
    assert float(similarity_distillation(codes, codes)) == pytest.approx(0.0, abs=1e-6)
    assert float(similarity_distillation(3 * codes, codes)) == pytest.approx(0.0, abs=1e-6)
    # Orthogonal student codes (similarities: the identity) against parallel teacher codes (all
    # ones): the two off-diagonal entries of four are 1 apart.
    student, teacher = torch.eye(2), torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    assert float(similarity_distillation(student, teacher)) == pytest.approx(0.5)
    # The teacher's codes may have another size than the student's.
    assert float(similarity_distillation(torch.eye(2), torch.eye(2, 7))) == pytest.approx(0.0)


def test_code_distillation_of_identical_orthogonal_and_opposite_codes():
    codes = torch.randn(8, 16)
    assert float(code_distillation(codes, codes)) == pytest.approx(0.0, abs=1e-6)
    assert float(code_distillation(3 * codes, codes)) == pytest.approx(0.0, abs=1e-6)
    assert float(code_distillation(torch.eye(4)[:2], torch.eye(4)[2:])) == pytest.approx(1.0)
    assert float(code_distillation(-codes, codes)) == pytest.approx(2.0)
    assert 0 < code_distillation(torch.randn(8, 16), codes) < 2


def test_map_distillation_compares_whole_maps_by_direction():
    maps = torch.rand(4, 8, 4, 4)
    assert map_distillation(5 * maps, maps) == pytest.approx(0.0, abs=1e-6)
    moved = maps.clone()
    moved[:, :, 0, 0], moved[:, :, 3, 3] = maps[:, :, 3, 3], maps[:, :, 0, 0]
    # The same pooled code, features in other places: map distillation tells them apart.
    assert torch.allclose(moved.mean(dim=(2, 3)), maps.mean(dim=(2, 3)))
    assert map_distillation(moved, maps) > 1e-3


def test_relational_distillation_losses_compare_the_codes_with_the_teachers():
    teacher = FixedTeacher()
    target = teacher.encode_as_given(torch.zeros(5))
    assert float(CodeDistillationLoss()(step_of(codes=2 * target, clean=torch.zeros(5), teacher=teacher))) \
        == pytest.approx(0.0, abs=1e-6)
    codes = torch.randn(5, 3)
    assert torch.equal(SimilarityDistillationLoss()(step_of(codes=codes, clean=torch.zeros(5), teacher=teacher)),
                       similarity_distillation(codes, target))


def test_weighted_losses_sum_each_value_times_its_weight():
    clean, reconstruction, projection = torch.rand(4, 3, 2, 2), torch.rand(4, 3, 2, 2), torch.randn(4, 5)
    combined = WeightedLosses([("reconstruction", 2.0, ReconstructionLoss()), ("nt_xent", 0.5, NTXentLoss(0.5))])
    total, values = combined(step_of(clean=clean, reconstruction=reconstruction, projection=projection))
    mse = float(np.mean((reconstruction.numpy() - clean.numpy()) ** 2))
    contrastive = nt_xent_by_hand(projection[:2].numpy(), projection[2:].numpy(), 0.5)
    assert values == pytest.approx({"reconstruction": mse, "nt_xent": contrastive}, rel=1e-5)
    assert float(total) == pytest.approx(2.0 * mse + 0.5 * contrastive, rel=1e-5)
    assert combined.names == ["reconstruction", "nt_xent"] and not combined.needs_teacher
    assert len(combined.heads()) == 0


def test_build_losses_takes_weights_and_hyper_parameters_from_the_settings():
    student = torch.nn.Module()
    student.code_dim = 8
    settings = TrainSettings(contrastive_weight=2.0, temperature=0.3, distill_weight=5.0, distill_maps=1.0,
                             feature_regression=0.5)
    alone = build_losses(settings, student)
    assert alone.names == ["reconstruction", "nt_xent"] and alone.weights == {"reconstruction": 1.0, "nt_xent": 2.0}
    assert alone.losses["nt_xent"].temperature == 0.3
    distilled = build_losses(settings, student, FixedTeacher())
    assert distilled.names == ["reconstruction", "nt_xent", "similarity_distillation", "map_distillation",
                               "feature_regression"]
    assert distilled.needs_teacher and distilled.weights["similarity_distillation"] == 5.0
    head = distilled.heads()["feature_regression"]
    assert (head.in_features, head.out_features) == (8, 24)
    codes = build_losses(TrainSettings(reconstruction_weight=0.0, distill_weight=1.0, distill_loss="codes"),
                         student, FixedTeacher())
    assert codes.names == ["code_distillation"] and isinstance(codes.losses["code_distillation"],
                                                               CodeDistillationLoss)


def test_feature_regression_fits_the_teachers_codes_through_its_head_and_trains_the_codes():
    torch.manual_seed(0)
    teacher = FixedTeacher()
    loss_of = FeatureRegressionLoss(student_dim=8, teacher_dim=teacher.code_dim)
    codes = torch.nn.Parameter(torch.randn(32, 8))
    optimizer = torch.optim.Adam([codes, *loss_of.head().parameters()], lr=0.05)
    views = torch.zeros(32, 3, 32, 32)
    values = []
    for _ in range(200):
        loss = loss_of(step_of(codes=codes, clean=views, teacher=teacher))
        optimizer.zero_grad()
        loss.backward()
        assert codes.grad.abs().sum() > 0
        optimizer.step()
        values.append(loss.item())
    assert values[0] > 0.5 and values[-1] < 0.25 * values[0]


def test_build_losses_refuses_settings_that_only_distil_without_a_teacher():
    from aecluster.errors import UserInputError

    student = torch.nn.Module()
    student.code_dim = 8
    settings = TrainSettings(reconstruction_weight=0.0, distill_weight=1.0, feature_regression=1.0)
    with pytest.raises(UserInputError) as error:
        build_losses(settings, student)
    assert str(error.value) == ("no loss is switched on: `reconstruction_weight` and `contrastive_weight` are 0 and "
                                "the distillation losses have no teacher; expected a teacher or one of them above 0")
    assert build_losses(settings, student, FixedTeacher()).names == ["similarity_distillation", "feature_regression"]


@pytest.mark.parametrize("groups", [2, 3])
def test_scan_loss_of_heads_that_cannot_tell_codes_apart(groups):
    """Equal scores: every code is in each of K groups with probability 1/K, so an anchor and its
    neighbour share a group with probability K / K^2 (loss log K), and the mean assignment is
    uniform (entropy term -log K, weighted)."""
    flat = torch.zeros(4, 6, groups)  # 4 heads, 6 anchors
    expected = math.log(groups) - 5.0 * math.log(groups)
    torch.testing.assert_close(SCANLoss(5.0)(flat, flat), torch.full((4,), expected))
    torch.testing.assert_close(SCANLoss(0.0)(flat, flat), torch.full((4,), math.log(groups)))


def test_scan_loss_of_a_head_that_puts_every_pair_in_one_group():
    """Group 0 for certain: the pairs agree (no consistency loss) and the mean assignment has zero
    entropy."""
    certain = torch.tensor([100.0, -100.0]).repeat(3, 5, 1)
    torch.testing.assert_close(SCANLoss()(certain, certain), torch.zeros(3), atol=1e-5, rtol=0)
