"""Training objectives: one small class each, in the `OBJECTIVES` table.

An objective reads what a training step computed (`Step`) and returns its loss; its weight is
the `TrainSettings` field named by `weight`, and it takes part where that weight is > 0. Adding
an objective means one class here, its entry in the table and its weight field in
`registry.TrainSettings`. An objective with trainable parts (a projector) builds them in `head`;
they are trained and snapshotted with the model, and not shipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from aecluster.distributed import gather_rows
from aecluster.registry import TrainSettings


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy (Chen et al. 2020, arXiv:2002.05709)."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    size = z1.shape[0]
    targets = torch.cat([torch.arange(size, 2 * size), torch.arange(size)]).to(z.device)
    return F.cross_entropy(logits, targets)


def similarity_distillation(student_codes: torch.Tensor, teacher_codes: torch.Tensor) -> torch.Tensor:
    """Relational knowledge distillation: match the batch's pairwise cosine-similarity matrices.

    Similarity-preserving KD (Tung & Mori 2019, arXiv:1907.09682): clustering only reads the
    geometry of the codes, so the student copies that geometry rather than the teacher's
    coordinates, and student and teacher codes may have different sizes.
    """
    student = F.normalize(student_codes.float(), dim=1)
    teacher = F.normalize(teacher_codes.float(), dim=1)
    return F.mse_loss(student @ student.T, teacher @ teacher.T)


def code_distillation(student_codes: torch.Tensor, teacher_codes: torch.Tensor) -> torch.Tensor:
    """Feature distillation on the unit sphere: each image's L2-normalised code is pulled onto the
    teacher's, (1 - cosine) per image. Matching every code fixes the similarities of all pairs,
    not only of those that share a batch; it needs codes of the teacher's size."""
    return (1 - F.cosine_similarity(student_codes.float(), teacher_codes.float(), dim=1)).mean()


def map_distillation(student_maps: torch.Tensor, teacher_maps: torch.Tensor) -> torch.Tensor:
    """Hint-based distillation of the latent map (FitNets, Romero et al. 2015, arXiv:1412.6550):
    each image's whole C x H x W map is pulled onto the direction of the teacher's. The pooled
    code that clustering reads is the map's mean, so this passes on where in the image each
    feature fires as well, 16 times the signal of the code alone at 4 x 4."""
    return code_distillation(student_maps.flatten(1), teacher_maps.flatten(1))


@dataclass
class Step:
    """What one training step computed, shared by the objectives.

    `clean` holds the augmented views (one block per view), `codes`, `reconstruction` and
    `projection` the model's outputs on them (as given, or with denoising noise added).
    `teacher_maps` are the teacher's latent maps of the first images of `batch` as given (full
    size, unaugmented: what clustering encodes). The teacher's codes of the views and the
    student's maps of those originals are computed on first use.
    """

    encoder: nn.Module
    batch: torch.Tensor
    clean: torch.Tensor
    codes: torch.Tensor
    reconstruction: torch.Tensor | None
    projection: torch.Tensor | None
    teacher: nn.Module | None = None
    teacher_maps: torch.Tensor | None = None
    _cache: dict[str, torch.Tensor] = field(default_factory=dict)

    def teacher_codes(self) -> torch.Tensor:
        """The teacher's codes of the views (no gradient), computed once per step."""
        if "teacher_codes" not in self._cache:
            with torch.no_grad():
                self._cache["teacher_codes"] = self.teacher.encode_as_given(self.clean)
        return self._cache["teacher_codes"]

    def student_maps(self) -> torch.Tensor:
        """The student's latent maps of the originals the teacher's maps belong to, computed once."""
        if "student_maps" not in self._cache:
            self._cache["student_maps"] = self.encoder.feature_map(self.batch[: len(self.teacher_maps)])
        return self._cache["student_maps"]

    def original_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(student, teacher) pooled codes of the originals."""
        return self.encoder.pool(self.student_maps()), self.teacher.encoder.pool(self.teacher_maps.float())


class Objective:
    """A loss term: `weight` names its TrainSettings field; `needs_teacher` objectives distil."""

    weight: str = ""
    needs_teacher = False

    def active(self, settings: TrainSettings, distilling: bool) -> bool:
        """Whether this run trains with the objective: its weight is set (and a teacher is there if needed)."""
        return getattr(settings, self.weight) > 0 and (distilling or not self.needs_teacher)

    def head(self, student: nn.Module, teacher: nn.Module | None) -> nn.Module | None:
        """Trainable parts the objective adds to training (none by default)."""
        return None

    def __call__(self, step: Step, settings: TrainSettings, head: nn.Module | None) -> torch.Tensor:
        """The unweighted loss of one step (`head`: the module `head` added, if any)."""
        raise NotImplementedError


class Reconstruction(Objective):
    """The autoencoder's MSE between reconstruction and clean view (denoising with `noise`)."""

    weight = "reconstruction_weight"

    def __call__(self, step: Step, settings: TrainSettings, head: nn.Module | None) -> torch.Tensor:
        return F.mse_loss(step.reconstruction.float(), step.clean)


class NTXent(Objective):
    """SimCLR: the two views' projections pulled together, the whole batch's others pushed apart."""

    weight = "contrastive_weight"

    def __call__(self, step: Step, settings: TrainSettings, head: nn.Module | None) -> torch.Tensor:
        z1, z2 = step.projection.chunk(2)
        return nt_xent(gather_rows(z1), gather_rows(z2), settings.temperature)


class RelationalDistillation(Objective):
    """The student's codes compared with the teacher's (`compare`) on the views and, with
    `distill_originals`, on the originals; `distill_loss` picks which comparison."""

    weight = "distill_weight"
    needs_teacher = True
    loss_name = ""
    batch_wide = False

    def active(self, settings: TrainSettings, distilling: bool) -> bool:
        return super().active(settings, distilling) and settings.distill_loss == self.loss_name

    def compare(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The `distill_loss` comparison of codes, over the whole batch of every process if batch-wide."""
        if self.batch_wide:
            student, teacher = gather_rows(student), gather_rows(teacher)
        return COMPARISONS[self.loss_name](student, teacher)

    def __call__(self, step: Step, settings: TrainSettings, head: nn.Module | None) -> torch.Tensor:
        loss = self.compare(step.codes, step.teacher_codes())
        if step.teacher_maps is not None:
            loss = loss + self.compare(*step.original_codes())
        return loss


class SimilarityDistillation(RelationalDistillation):
    """Similarity-preserving KD over the whole batch (gathered across processes)."""

    loss_name = "similarity"
    batch_wide = True


class CodeDistillation(RelationalDistillation):
    """Each image's code pulled onto the teacher's direction (needs the teacher's code size)."""

    loss_name = "codes"


class MapDistillation(Objective):
    """Each original's whole latent map pulled onto the teacher's (needs the teacher's map shape)."""

    weight = "distill_maps"
    needs_teacher = True

    def __call__(self, step: Step, settings: TrainSettings, head: nn.Module | None) -> torch.Tensor:
        if step.teacher_maps is None:
            return step.codes.new_zeros(())
        return map_distillation(step.student_maps(), step.teacher_maps.float())


class FeatureRegression(Objective):
    """Cosine regression of the student's codes, through a linear projector, onto the teacher's
    features, on the views and on the originals: codes of any size can follow a wider teacher's
    coordinates, not only its geometry."""

    weight = "feature_regression"
    needs_teacher = True

    def head(self, student: nn.Module, teacher: nn.Module | None) -> nn.Module | None:
        """The linear projector from the student's codes to the teacher's."""
        return nn.Linear(student.code_dim, teacher.code_dim)

    def __call__(self, step: Step, settings: TrainSettings, head: nn.Module | None) -> torch.Tensor:
        loss = code_distillation(head(step.codes.float()), step.teacher_codes())
        if step.teacher_maps is not None:
            student, teacher = step.original_codes()
            loss = loss + code_distillation(head(student.float()), teacher)
        return loss


COMPARISONS = {"similarity": similarity_distillation, "codes": code_distillation}

OBJECTIVES: dict[str, Objective] = {
    "reconstruction": Reconstruction(),
    "nt_xent": NTXent(),
    "similarity_distillation": SimilarityDistillation(),
    "code_distillation": CodeDistillation(),
    "map_distillation": MapDistillation(),
    "feature_regression": FeatureRegression(),
}


def active_objectives(settings: TrainSettings, distilling: bool) -> list[str]:
    """Names of the objectives `settings` switches on (distillation ones only with a teacher)."""
    return [name for name, objective in OBJECTIVES.items() if objective.active(settings, distilling)]
