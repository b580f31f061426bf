"""Training losses: each an `nn.Module` that holds its hyper-parameters and computes in `forward`.

A loss reads what a training step computed (`Step`) and returns its unweighted value.
`build_losses` turns a run's `TrainSettings` into a `WeightedLosses`: the losses whose weight is
set (distillation ones only with a teacher), each with its weight. Adding a loss means one class
here, its line in `build_losses` and its weight field in `registry.TrainSettings`. A loss with
trainable parts (a projector) owns them as submodules and names them in `head`; they are trained
and snapshotted with the model, and not shipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from aecluster.distributed import gather_rows
from aecluster.errors import UserInputError
from aecluster.registry import TrainSettings


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy (Chen et al. 2020, arXiv:2002.05709).

    The 2B projections are scaled to unit length; each row's positive is the other view of its
    image (row i of `z1` with row i of `z2`), its negatives the other 2B - 2 rows.

    Parameters
    ----------
    z1 : torch.Tensor of shape (B, dim)
        The projections of the first view of each image.
    z2 : torch.Tensor of shape (B, dim)
        The projections of the second view, in the same order.
    temperature : float
        The softmax temperature the cosine similarities are divided by.

    Returns
    -------
    torch.Tensor of shape ()
        The mean cross-entropy over the 2B rows (float32).
    """
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

    Parameters
    ----------
    student_codes : torch.Tensor of shape (B, d_student)
        The student's codes.
    teacher_codes : torch.Tensor of shape (B, d_teacher)
        The teacher's codes of the same images, in the same order.

    Returns
    -------
    torch.Tensor of shape ()
        The mean squared difference of the two (B, B) cosine-similarity matrices (float32).
    """
    student = F.normalize(student_codes.float(), dim=1)
    teacher = F.normalize(teacher_codes.float(), dim=1)
    return F.mse_loss(student @ student.T, teacher @ teacher.T)


def code_distillation(student_codes: torch.Tensor, teacher_codes: torch.Tensor) -> torch.Tensor:
    """Feature distillation on the unit sphere: each image's L2-normalised code is pulled onto the
    teacher's, (1 - cosine) per image. Matching every code fixes the similarities of all pairs,
    not only of those that share a batch; it needs codes of the teacher's size.

    Parameters
    ----------
    student_codes : torch.Tensor of shape (B, dim)
        The student's codes.
    teacher_codes : torch.Tensor of shape (B, dim)
        The teacher's codes of the same images, in the same order.

    Returns
    -------
    torch.Tensor of shape ()
        The mean over images of 1 - cosine similarity, in [0, 2] (float32).
    """
    return (1 - F.cosine_similarity(student_codes.float(), teacher_codes.float(), dim=1)).mean()


def map_distillation(student_maps: torch.Tensor, teacher_maps: torch.Tensor) -> torch.Tensor:
    """Hint-based distillation of the latent map (FitNets, Romero et al. 2015, arXiv:1412.6550):
    each image's whole C x H x W map is pulled onto the direction of the teacher's. The pooled
    code that clustering reads is the map's mean, so this passes on where in the image each
    feature fires as well, 16 times the signal of the code alone at 4 x 4.

    Parameters
    ----------
    student_maps : torch.Tensor of shape (B, C, H, W)
        The student's latent maps.
    teacher_maps : torch.Tensor of shape (B, C, H, W)
        The teacher's latent maps of the same images (the same shape).

    Returns
    -------
    torch.Tensor of shape ()
        `code_distillation` of the flattened maps: the mean of 1 - cosine similarity.
    """
    return code_distillation(student_maps.flatten(1), teacher_maps.flatten(1))


@dataclass
class Step:
    """What one training step computed, shared by the losses.

    `clean` holds the augmented views (one block per view), `codes`, `reconstruction` and
    `projection` the model's outputs on them (as given, or with denoising noise added).
    `teacher_maps` are the teacher's latent maps of the first images of `batch` as given (full
    size, unaugmented: what clustering encodes). The teacher's codes of the views and the
    student's maps of those originals are computed on first use.

    Parameters
    ----------
    encoder : nn.Module
        The student's encoder (`feature_map` and `pool`).
    batch : torch.Tensor of shape (B, 3, 32, 32)
        The step's images as given, in [-1, 1].
    clean : torch.Tensor of shape (V * B, 3, S, S)
        The V augmented views of `batch`, one block of B per view, at `view_size` S.
    codes : torch.Tensor of shape (V * B, code_dim)
        The model's codes of the views (with the denoising noise, if any).
    reconstruction : torch.Tensor of shape (V * B, 3, S, S) or None
        The model's reconstruction of the views; None without a decoder.
    projection : torch.Tensor of shape (V * B, projection_dim) or None
        The projection head's output; None without a head.
    teacher : Autoencoder, optional
        The model distilled from.
    teacher_maps : torch.Tensor of shape (M, C, H, W), optional
        The teacher's latent maps of the first M images of `batch` (M at most B).
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
        """The teacher's codes of the views (no gradient), computed once per step.

        Returns
        -------
        torch.Tensor of shape (V * B, teacher_code_dim)
            The teacher's pooled codes of `clean` as given (`Autoencoder.encode_as_given`).
        """
        if "teacher_codes" not in self._cache:
            with torch.no_grad():
                self._cache["teacher_codes"] = self.teacher.encode_as_given(self.clean)
        return self._cache["teacher_codes"]

    def student_maps(self) -> torch.Tensor:
        """The student's latent maps of the originals the teacher's maps belong to, computed once.

        Returns
        -------
        torch.Tensor of shape (M, C, H, W)
            The student's latent maps of the first M images of `batch`, M = len(`teacher_maps`).
        """
        if "student_maps" not in self._cache:
            self._cache["student_maps"] = self.encoder.feature_map(self.batch[: len(self.teacher_maps)])
        return self._cache["student_maps"]

    def original_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(student, teacher) pooled codes of the originals.

        Returns
        -------
        student : torch.Tensor of shape (M, code_dim)
            The student's codes, pooled from `student_maps`.
        teacher : torch.Tensor of shape (M, teacher_code_dim)
            The teacher's codes, pooled from `teacher_maps` (float32).
        """
        return self.encoder.pool(self.student_maps()), self.teacher.encoder.pool(self.teacher_maps.float())


class Loss(nn.Module):
    """A loss term: `forward(step)` is its unweighted value; `needs_teacher` losses distil.

    Attributes
    ----------
    needs_teacher : bool
        Whether the loss reads a teacher (False here; True for the distillation losses).
    """

    needs_teacher = False

    def forward(self, step: Step) -> torch.Tensor:
        """The unweighted loss of one step.

        Parameters
        ----------
        step : Step
            What the training step computed.

        Returns
        -------
        torch.Tensor of shape ()
            The loss; each subclass implements it.
        """
        raise NotImplementedError

    def head(self) -> nn.Module | None:
        """The trainable part this loss adds to training (none by default).

        Returns
        -------
        nn.Module or None
            The module whose parameters the optimizer also trains; None here.
        """
        return None


class ReconstructionLoss(Loss):
    """The autoencoder's MSE between reconstruction and clean view (denoising with `noise`)."""

    def forward(self, step: Step) -> torch.Tensor:
        """The mean squared error between the reconstruction and the clean views.

        Parameters
        ----------
        step : Step
            What the training step computed; it must hold a `reconstruction`.

        Returns
        -------
        torch.Tensor of shape ()
            The MSE over every pixel and channel of the views, in [-1, 1] pixel units.
        """
        return F.mse_loss(step.reconstruction.float(), step.clean)


class NTXentLoss(Loss):
    """SimCLR: the two views' projections pulled together, the whole batch's others pushed apart
    (gathered across processes).

    Parameters
    ----------
    temperature : float
        The softmax temperature of `nt_xent`.
    """

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, step: Step) -> torch.Tensor:
        """`nt_xent` of the first half of the projections against the second: the first view's
        against the second's (`TrainSettings` allows NT-Xent with two views only), each gathered
        from every process.

        Parameters
        ----------
        step : Step
            What the training step computed; its `projection` holds the views' blocks, row i of
            the first half paired with row i of the second.

        Returns
        -------
        torch.Tensor of shape ()
            The NT-Xent loss of the whole batch.
        """
        z1, z2 = step.projection.chunk(2)
        return nt_xent(gather_rows(z1), gather_rows(z2), self.temperature)


class RelationalDistillationLoss(Loss):
    """The student's codes compared with the teacher's (`compare`) on the views and, when the
    step holds the teacher's maps of the originals, on the originals too."""

    needs_teacher = True

    def compare(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The comparison of a block of student codes with the teacher's.

        Parameters
        ----------
        student : torch.Tensor of shape (B, d_student)
            The student's codes.
        teacher : torch.Tensor of shape (B, d_teacher)
            The teacher's codes of the same images.

        Returns
        -------
        torch.Tensor of shape ()
            The loss; each subclass implements it.
        """
        raise NotImplementedError

    def forward(self, step: Step) -> torch.Tensor:
        """`compare` on the views, plus `compare` on the originals when the step holds the
        teacher's maps.

        Parameters
        ----------
        step : Step
            What the training step computed, with its `teacher`.

        Returns
        -------
        torch.Tensor of shape ()
            The sum of the one or two comparisons.
        """
        loss = self.compare(step.codes, step.teacher_codes())
        if step.teacher_maps is not None:
            loss = loss + self.compare(*step.original_codes())
        return loss


class SimilarityDistillationLoss(RelationalDistillationLoss):
    """Similarity-preserving KD over the whole batch (gathered across processes)."""

    def compare(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """`similarity_distillation` of the codes gathered from every process.

        Parameters
        ----------
        student : torch.Tensor of shape (B, d_student)
            The student's codes.
        teacher : torch.Tensor of shape (B, d_teacher)
            The teacher's codes of the same images.

        Returns
        -------
        torch.Tensor of shape ()
            The loss.
        """
        return similarity_distillation(gather_rows(student), gather_rows(teacher))


class CodeDistillationLoss(RelationalDistillationLoss):
    """Each image's code pulled onto the teacher's direction (needs the teacher's code size)."""

    def compare(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """`code_distillation` of this process's codes.

        Parameters
        ----------
        student : torch.Tensor of shape (B, dim)
            The student's codes.
        teacher : torch.Tensor of shape (B, dim)
            The teacher's codes of the same images (the same width).

        Returns
        -------
        torch.Tensor of shape ()
            The loss.
        """
        return code_distillation(student, teacher)


class FeatureRegressionLoss(RelationalDistillationLoss):
    """Cosine regression of the student's codes, through a linear projector, onto the teacher's
    features, on the views and on the originals: codes of any size can follow a wider teacher's
    coordinates, not only its geometry.

    Parameters
    ----------
    student_dim, teacher_dim : int
        The sizes of the student's and the teacher's codes: the projector's input and output.
    """

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.projector = nn.Linear(student_dim, teacher_dim)

    def compare(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """`code_distillation` of the projected student codes onto the teacher's.

        Parameters
        ----------
        student : torch.Tensor of shape (B, student_dim)
            The student's codes.
        teacher : torch.Tensor of shape (B, teacher_dim)
            The teacher's codes of the same images.

        Returns
        -------
        torch.Tensor of shape ()
            The loss.
        """
        return code_distillation(self.projector(student.float()), teacher)

    def head(self) -> nn.Module | None:
        """The linear projector from the student's codes to the teacher's.

        Returns
        -------
        nn.Linear
            The projector, trained with the model.
        """
        return self.projector


class MapDistillationLoss(Loss):
    """Each original's whole latent map pulled onto the teacher's (needs the teacher's map shape);
    zero in a step without the teacher's maps."""

    needs_teacher = True

    def forward(self, step: Step) -> torch.Tensor:
        """`map_distillation` of the student's and the teacher's maps of the originals.

        Parameters
        ----------
        step : Step
            What the training step computed.

        Returns
        -------
        torch.Tensor of shape ()
            The loss; a zero without gradient when the step holds no teacher maps.
        """
        if step.teacher_maps is None:
            return step.codes.new_zeros(())
        return map_distillation(step.student_maps(), step.teacher_maps.float())


class SCANLoss(nn.Module):
    """SCAN's clustering loss (Van Gansbeke et al. 2020, arXiv:2005.12320), for one head or a
    stack of them: minus the mean log-probability that an anchor and its neighbour share a group,
    minus `entropy_weight` times the entropy of the mean group assignment (which keeps every
    group in use).

    Parameters
    ----------
    entropy_weight : float, default=5.0
        The weight of the entropy term (SCAN's published value).
    """

    def __init__(self, entropy_weight: float = 5.0) -> None:
        super().__init__()
        self.entropy_weight = entropy_weight

    def forward(self, anchor_logits: torch.Tensor, partner_logits: torch.Tensor) -> torch.Tensor:
        """The loss of each head.

        Parameters
        ----------
        anchor_logits : Tensor of shape (..., n, K)
            Each head's group scores of n anchors.
        partner_logits : Tensor of shape (..., n, K)
            The same heads' scores of one neighbour of each anchor.

        Returns
        -------
        Tensor of shape (...)
            One loss per head.
        """
        anchor_probs = torch.softmax(anchor_logits, dim=-1)
        partner_probs = torch.softmax(partner_logits, dim=-1)
        consistency = -torch.log((anchor_probs * partner_probs).sum(dim=-1).clamp_min(1e-7)).mean(dim=-1)
        usage = anchor_probs.mean(dim=-2)
        return consistency + self.entropy_weight * (usage * torch.log(usage.clamp_min(1e-7))).sum(dim=-1)


class WeightedLosses(nn.Module):
    """Named losses, each with its weight: `forward(step)` is the weighted sum and each loss's value.

    Parameters
    ----------
    terms : list of (str, float, Loss)
        Each loss's name (its key in the values and in `heads`), weight and module, in the
        order they are computed.
    """

    def __init__(self, terms: list[tuple[str, float, Loss]]) -> None:
        super().__init__()
        self.losses = nn.ModuleDict({name: loss for name, _, loss in terms})
        self.weights = {name: weight for name, weight, _ in terms}

    @property
    def names(self) -> list[str]:
        """The losses' names, in order."""
        return list(self.losses)

    @property
    def needs_teacher(self) -> bool:
        """Whether any of the losses distils a teacher."""
        return any(loss.needs_teacher for loss in self.losses.values())

    def heads(self) -> nn.ModuleDict:
        """The losses' trainable parts by loss name, for the optimizer and the snapshots.

        Returns
        -------
        nn.ModuleDict
            Each `head` that is not None, by its loss's name (empty when no loss has one).
        """
        return nn.ModuleDict({name: head for name, loss in self.losses.items() if (head := loss.head()) is not None})

    def forward(self, step: Step) -> tuple[torch.Tensor, dict[str, float]]:
        """(weighted total, each loss's unweighted value) of one step.

        Parameters
        ----------
        step : Step
            What the training step computed.

        Returns
        -------
        tuple of (torch.Tensor, dict of str to float)
            The total to back-propagate, and each loss's value by name for the progress and history.
        """
        parts = {name: loss(step) for name, loss in self.losses.items()}
        total = sum(self.weights[name] * value for name, value in parts.items())
        return total, {name: float(value.detach()) for name, value in parts.items()}


DISTILLATIONS: dict[str, tuple[str, type[RelationalDistillationLoss]]] = {
    "similarity": ("similarity_distillation", SimilarityDistillationLoss),
    "codes": ("code_distillation", CodeDistillationLoss),
}


def build_losses(settings: TrainSettings, student: nn.Module, teacher: nn.Module | None = None) -> WeightedLosses:
    """The losses `settings` switches on, with their weights and hyper-parameters.

    Parameters
    ----------
    settings : TrainSettings
        The run's settings: a loss takes part where its weight is > 0; `distill_loss` picks the
        relational distillation, `temperature` is NT-Xent's.
    student : nn.Module
        The model being trained (its `code_dim` sizes the feature-regression projector).
    teacher : nn.Module, optional
        The trained model distilled from; without one, the distillation losses are off.

    Returns
    -------
    WeightedLosses
        The active losses in a fixed order: reconstruction, NT-Xent, relational, map and
        feature distillation. Building a projector draws from torch's global generator.

    Raises
    ------
    UserInputError
        When no loss is switched on: settings that only distil, without a `teacher`.
    """
    terms: list[tuple[str, float, Loss]] = []
    if settings.reconstruction_weight > 0:
        terms.append(("reconstruction", settings.reconstruction_weight, ReconstructionLoss()))
    if settings.contrastive_weight > 0:
        terms.append(("nt_xent", settings.contrastive_weight, NTXentLoss(settings.temperature)))
    if teacher is not None:
        if settings.distill_weight > 0:
            name, relational = DISTILLATIONS[settings.distill_loss]
            terms.append((name, settings.distill_weight, relational()))
        if settings.distill_maps > 0:
            terms.append(("map_distillation", settings.distill_maps, MapDistillationLoss()))
        if settings.feature_regression > 0:
            terms.append(("feature_regression", settings.feature_regression,
                          FeatureRegressionLoss(student.code_dim, teacher.code_dim)))
    if not terms:
        raise UserInputError("no loss is switched on: `reconstruction_weight` and `contrastive_weight` are 0 and "
                             "the distillation losses have no teacher; expected a teacher or one of them above 0")
    return WeightedLosses(terms)
