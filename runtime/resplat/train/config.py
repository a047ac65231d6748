"""Training hyper-parameters (:class:`TrainConfig`), defaults from the paper where it gives them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ResplatError

STAGES = ("initial", "update", "metagrad")
#: peak learning rate of each stage when none is given (paper: 2e-4 stage 1, 1e-4 stage 2;
#: metagrad fine-tunes a trained head, lower).
STAGE_LR = {"initial": 2e-4, "update": 1e-4, "metagrad": 5e-5}


class TrainConfigError(ResplatError, ValueError):
    """A training setting out of range (one line naming the setting)."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    Attributes:
        stage: "initial" (depth network + Gaussian head; paper stage 1) or "update" (the
            recurrent updater, initial model frozen; paper stage 2) or "metagrad" (the initial
            model's Gaussian head fine-tuned by first-order gradients along a short polish,
            ForeSplat's MetaGrad, arXiv 2605.22020; :mod:`resplat.train.metagrad`).
        steps: optimiser steps of the run (the one-cycle schedule spans them).
        lr: peak learning rate (paper: 2e-4 stage 1, 1e-4 stage 2).
        weight_decay: AdamW weight decay.
        warmup: fraction of ``steps`` of linear warm-up (paper: 1%).
        clip: gradient-norm clip (paper: 0.5).
        l1_weight, ssim_weight: image loss weights, L1 (paper: 1) and 1 - SSIM (our default
            0.2 instead of the paper's VGG perceptual 0.5, which needs weights the user supplies).
        perceptual_weight: LPIPS-VGG weight, used only with ``perceptual_weights`` (a file of
            LPIPS VGG16 weights; paper 0.5).
        depth_weight: L1 of log depth against ground-truth depth of the context views (stage
            "initial", samples that carry depth; 0 disables). Default 0.1.
        depth_prior_prob: probability that a sample with depth maps feeds its exact context
            depth to the model (``forward_initial(depths=...)``), so that the model learns to
            use Blender's depth pass when a scene gives it. Default 0 (RGB only).
        max_iterations: T is drawn uniformly in 1..max_iterations (paper: 4) in stage "update".
        recurrence_stages: a staged recurrence depth instead (a curriculum of T = 2, then up to
            4, then up to 6; training practice around ReSplat, arXiv 2510.08575, not part of its
            paper, which draws T in 1..4): ((first step, max T), ...) with first steps
            increasing from 0, e.g. ((0, 2), (200, 4), (400, 6)); empty: ``max_iterations``
            throughout (:meth:`max_iterations_at`).
        stability_weight: weight of the recurrence-stability term in stage "update": the mean
            absolute change of the Gaussians' parameters (:meth:`UpdateState.as_vector
            <resplat.model.update_state.UpdateState.as_vector>`, model frame) made by each
            iteration, averaged over the T iterations (a recurrence loss that penalises large
            changes of the splats between iterations; same training practice, not in the paper).
            0 disables.
        metagrad_steps: stage "metagrad": K, the polish steps unrolled from each prediction
            (default 20; 0 trains on the zero-step loss alone).
        metagrad_anchors: stage "metagrad": anchor states along the K steps, 0 and K
            included (default 4; :func:`anchor_steps`).
        gamma: iteration t of T weighs gamma^(T-1-t) (paper: 0.9).
        seed: seeds the model init, scene/T sampling (rank added under DDP).
        checkpoint_every: steps between resumable checkpoints (0: only at the end).
        bf16: bf16 autocast of the networks on CUDA.
        bf16_cpu: bf16 autocast of the networks on the CPU too (:func:`resplat.model.amp.cpu_bf16`;
            for processors with AVX512-BF16, measured in benchmarks/train_step.py).
    """

    stage: str = "initial"
    steps: int = 1000
    lr: float = 2e-4
    weight_decay: float = 0.01
    warmup: float = 0.01
    clip: float = 0.5
    l1_weight: float = 1.0
    ssim_weight: float = 0.2
    perceptual_weight: float = 0.5
    perceptual_weights: str | None = None
    depth_weight: float = 0.1
    depth_prior_prob: float = 0.0
    max_iterations: int = 4
    recurrence_stages: tuple[tuple[int, int], ...] = ()
    stability_weight: float = 0.0
    metagrad_steps: int = 20
    metagrad_anchors: int = 4
    gamma: float = 0.9
    seed: int = 0
    checkpoint_every: int = 500
    bf16: bool = True
    bf16_cpu: bool = False

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise TrainConfigError(f"training stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        for name in ("steps", "max_iterations"):
            if getattr(self, name) < 1:
                raise TrainConfigError(f"training setting {name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.warmup < 1:
            raise TrainConfigError(f"training setting warmup must be in [0, 1), got {self.warmup}")
        if not 0 <= self.depth_prior_prob <= 1:
            raise TrainConfigError(f"training setting depth_prior_prob must be in [0, 1], got {self.depth_prior_prob}")
        stages = self.recurrence_stages
        if stages and (stages[0][0] != 0 or any(b[0] <= a[0] for a, b in zip(stages, stages[1:]))
                       or any(t < 1 for _, t in stages)):
            raise TrainConfigError(f"training setting recurrence_stages must start at step 0 with increasing steps "
                                   f"and T >= 1, got {stages}")
        if self.stability_weight < 0:
            raise TrainConfigError(f"training setting stability_weight must be >= 0, got {self.stability_weight}")
        try:
            anchor_steps(self.metagrad_steps, self.metagrad_anchors)
        except ValueError as exc:
            raise TrainConfigError(f"training settings metagrad_steps, metagrad_anchors: {exc}") from None
        if self.lr <= 0 or self.clip <= 0:
            raise TrainConfigError(f"training settings lr and clip must be > 0, got {self.lr}, {self.clip}")

    def max_iterations_at(self, step: int) -> int:
        """The largest T drawn at optimiser step ``step`` (0-based): the last recurrence stage
        that has started, else ``max_iterations``."""
        if not self.recurrence_stages:
            return self.max_iterations
        return [t for first, t in self.recurrence_stages if first <= step][-1]

    def to_dict(self) -> dict:
        """Plain JSON-able dict (stored in checkpoints and exported weights)."""
        return asdict(self)


def anchor_steps(steps: int, anchors: int) -> list[int]:
    """The inner-loop steps whose states are anchors: ``anchors`` values from 0 to ``steps``
    evenly spaced (rounded, duplicates dropped), always 0 and ``steps``; [0] when steps is 0.

    Raises:
        ValueError: steps < 0 or anchors < 1 (or anchors < 2 with steps > 0).
    """
    if steps < 0 or anchors < 1 or (steps > 0 and anchors < 2):
        raise ValueError(f"anchor_steps: need steps >= 0 and anchors >= 2 (1 when steps is 0), got {steps}, {anchors}")
    if steps == 0:
        return [0]
    return sorted({round(i * steps / (anchors - 1)) for i in range(anchors)})
