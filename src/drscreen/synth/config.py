"""Settings of the synthetic fundus generator."""

from __future__ import annotations

from dataclasses import dataclass

#: Default DR grade mix (grades 0-4) when no target is given: every grade well represented.
DEFAULT_GRADE_DISTRIBUTION: tuple[float, float, float, float, float] = (0.3, 0.15, 0.25, 0.15, 0.15)
#: P(DME = 0, 1, 2 | DR grade). DME needs hard exudates, which make DR >= 2, so DR 0-1 have DME 0.
DEFAULT_DME_GIVEN_DR: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.0, 0.0),
    (1.0, 0.0, 0.0),
    (0.5, 0.25, 0.25),
    (0.35, 0.3, 0.35),
    (0.4, 0.25, 0.35),
)


@dataclass(frozen=True)
class SynthConfig:
    """Everything that shapes a synthetic fundus apart from its seed, size and target grades.

    Probabilities are per image; ranges are ``(low, high)`` drawn uniformly.
    """

    #: DR grade probabilities (5 values) used when ``target_dr`` is not given.
    grade_distribution: tuple[float, ...] = DEFAULT_GRADE_DISTRIBUTION
    #: DME probabilities (3 values) per DR grade, used when ``target_dme`` is not given.
    dme_given_dr: tuple[tuple[float, float, float], ...] = DEFAULT_DME_GIVEN_DR
    #: Probability that a recorded label is moved one grade away from the true one (per axis).
    label_noise: float = 0.0
    #: Probability that the camera clips the round field of view at the top and bottom.
    clip_prob: float = 0.3
    #: Probability of the small rectangular orientation notch some cameras burn into the FOV edge.
    notch_prob: float = 0.25
    #: Probability of defocus blur and its sigma range in pixels at 512 px (scaled with size).
    blur_prob: float = 0.5
    blur_sigma_512: tuple[float, float] = (0.3, 1.2)
    #: Additive sensor noise sigma range, in 8-bit grey levels.
    noise_sigma: tuple[float, float] = (1.0, 4.0)
    #: Probability of JPEG compression and the quality range.
    jpeg_prob: float = 0.7
    jpeg_quality: tuple[int, int] = (70, 95)
    #: Probability of a whitish-blue haze entering from one side of the field (stray light).
    haze_prob: float = 0.3
    #: Apply the Ben Graham look (local-mean subtraction) after every other camera effect.
    ben_graham: bool = False
    #: Render lesions (False gives the lesion-free fundus of the same seed).
    render_lesions: bool = True
    #: How many lesion plans to try before giving up on hitting the requested grades.
    max_plan_attempts: int = 5

    def __post_init__(self) -> None:
        if len(self.grade_distribution) != 5 or min(self.grade_distribution) < 0 or sum(self.grade_distribution) <= 0:
            raise ValueError(f"grade_distribution needs 5 non-negative weights, got {self.grade_distribution}")
        if len(self.dme_given_dr) != 5 or any(len(row) != 3 or sum(row) <= 0 for row in self.dme_given_dr):
            raise ValueError("dme_given_dr needs 5 rows of 3 non-negative weights")
        if any(row[1] + row[2] > 0 for row in self.dme_given_dr[:2]):
            raise ValueError("DME 1-2 needs hard exudates, which make DR >= 2: rows 0 and 1 must be (1, 0, 0)")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ValueError(f"label_noise must be in [0, 1], got {self.label_noise}")
