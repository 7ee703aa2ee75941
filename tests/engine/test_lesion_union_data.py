"""``data.lesion_union``: images whose lesion classes are known only through their union train the lesion maps."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from drscreen.data import load_dataset
from drscreen.engine.config import config_from_dict
from drscreen.engine.dataset import FundusDataset, PreparedCache, collate_examples
from drscreen.grading import SEGMENTATION_CLASSES
from drscreen.losses import UNION_POSITIVE, create_loss
from drscreen.models import create_model
from drscreen.preprocess import IMAGENET, PreprocessConfig, Preprocessor
from drscreen.synth import generate_fundus
from drscreen.transforms import AugmentationConfig, build_augmentation

SIZE = 64


@pytest.fixture()
def subset(tmp_path: Path) -> Path:
    """An ``idrid-seg-subset`` folder of two images with a union and a disc mask each."""
    root = tmp_path / "idrid-seg-subset"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for number in (1, 2):
        fundus = generate_fundus(seed=number, size=128, target_dr=3)
        Image.fromarray(fundus.image).save(root / "images" / f"IDRiD_0{number}.png")
        union = np.max([fundus.masks[c] for c in ("MA", "HE", "EX", "SE")], axis=0) > 0
        Image.fromarray(union.astype(np.uint8) * 255).save(root / "masks" / f"IDRiD_0{number}_LESION.png")
        Image.fromarray((fundus.masks["OD"] > 0).astype(np.uint8) * 255).save(
            root / "masks" / f"IDRiD_0{number}_OD.png"
        )
    return root


def test_union_samples_get_union_positive_lesion_channels(subset: Path, tmp_path: Path) -> None:
    samples = load_dataset("idrid-seg-subset", subset)
    preprocessor = Preprocessor(
        PreprocessConfig(size=SIZE, crop_to_fov=True, quality_gate=False, normalization=IMAGENET)
    )
    plain = FundusDataset(samples, preprocessor, SEGMENTATION_CLASSES, IMAGENET)
    assert plain.has_masks == [False, False], "without lesion_union the union does not stand for the classes"
    cache = PreparedCache(tmp_path / "cache", preprocessor.config)
    union = FundusDataset(samples, preprocessor, SEGMENTATION_CLASSES, IMAGENET, cache=cache, lesion_union=True)
    assert union.has_masks == [True, True]
    example = union[0]
    assert example.masks is not None and example.masks.shape == (5, SIZE, SIZE)
    lesions, disc = example.masks[:4], example.masks[4]
    assert set(lesions.unique().tolist()) == {0.0, UNION_POSITIVE}
    assert bool((lesions == lesions[0]).all()), "every lesion channel holds the union"
    assert set(disc.unique().tolist()) == {0.0, 1.0}
    again = FundusDataset(samples, preprocessor, SEGMENTATION_CLASSES, IMAGENET, cache=cache, lesion_union=True)[0]
    assert again.masks is not None and torch.equal(again.masks, example.masks)

    # One training step of a tiny u2net_xs on the batch reaches every parameter.
    batch = collate_examples([union[0], union[1]])
    model = create_model("u2net_xs", lesions=list(SEGMENTATION_CLASSES), width_multiplier=1 / 8)
    loss = create_loss("multitask", preset="u2net", lesion_loss="lesion_union")
    total, _ = loss(model(batch.images), batch.targets)
    total.backward()
    assert torch.isfinite(total)
    assert all(p.grad is not None for p in model.parameters())


def test_patches_cut_image_and_masks_together() -> None:
    augment = build_augmentation(AugmentationConfig.from_preset("u2net", patch=32), SIZE)
    image = torch.arange(SIZE * SIZE, dtype=torch.int32).reshape(1, SIZE, SIZE).expand(3, -1, -1).to(torch.uint8)
    masks = torch.zeros(2, SIZE, SIZE, dtype=torch.uint8)
    masks[0, :, : SIZE // 2] = 1
    out_image, out_masks = augment(image, masks)
    assert out_image.shape == (3, 32, 32) and out_masks is not None and out_masks.shape == (2, 32, 32)
    with pytest.raises(ValueError, match="patch"):
        build_augmentation(AugmentationConfig(patch=SIZE + 1), SIZE)


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lesion_cv() -> ModuleType:
    """The benchmarks/lesion_cv.py module (it imports its neighbours, as when run as a script)."""
    spec = importlib.util.spec_from_file_location("lesion_cv", REPO / "benchmarks" / "lesion_cv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lesion_cv"] = module  # its dataclasses look their module up
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
        del sys.modules["lesion_cv"]
    return module


def test_the_cross_validation_folds_hold_every_image_out_once(subset: Path, lesion_cv: ModuleType) -> None:
    """benchmarks/lesion_cv.py: folds by image, the held-out images never in their fold's training part."""
    samples = load_dataset("idrid-seg-subset", subset)
    many = [type(samples[0])(id=f"IDRiD_{i:02d}", image_path=samples[0].image_path, dataset="idrid-seg-subset")
            for i in range(30)]  # fmt: skip
    plan = lesion_cv.fold_plan(many, 5, seed=0)
    assert len(plan) == 5 and all(len(f.test) == 6 and len(f.train) == 24 for f in plan)
    assert sorted(i for f in plan for i in f.test) == sorted(s.id for s in many)
    assert all(not set(f.test) & set(f.train) for f in plan)
    assert plan == lesion_cv.fold_plan(many, 5, seed=0), "the plan is a function of the seed"


@pytest.mark.parametrize("config", [None, REPO / "configs" / "lesion_decoder.yaml"], ids=["u2net_xs", "lesion_decoder"])
def test_the_cross_validation_trains_a_recipe_on_each_folds_data(
    lesion_cv: ModuleType, tmp_path: Path, config: Path | None
) -> None:
    """benchmarks/lesion_cv.py: the recipe (default or ``--config``) with the options given, its
    training sources, cache and run folder replaced by the fold's."""
    options = ["--epochs", "3"] + (["--config", str(config)] if config else [])
    recipe = lesion_cv.recipe(lesion_cv.parse_args(options))
    raw = lesion_cv.train_config("fold0", tmp_path, tmp_path / "real", tmp_path / "synth", recipe, test=True)
    built = config_from_dict(raw)
    assert built.optim.epochs == 3 and built.data.lesion_union
    assert [(s.name, s.root) for s in built.data.train] == [
        ("idrid-seg-subset", str(tmp_path / "real")), ("idrid-segmentation", str(tmp_path / "synth"))
    ]  # fmt: skip
    assert built.data.test[0].root == str(tmp_path / "synth") and built.run.path == tmp_path / "runs" / "fold0"
    assert built.model.name == ("drscreen_effnet" if config else "u2net_xs")
    assert lesion_cv.U2NET_RECIPE["optim"]["epochs"] == 8, "the default recipe is not changed in place"


def test_the_threshold_table_counts_pooled_pixels_from_the_threshold_on(lesion_cv: ModuleType) -> None:
    """benchmarks/lesion_cv.py --thresholds: pooled precision, recall, Dice and predicted share at
    each threshold (p >= t is positive), the true share, and the threshold of the best Dice."""
    scores = [np.array([0.9, 0.5, 0.2, 0.1], np.float16), np.array([0.6, 0.3, 0.0, 0.0], np.float16)]
    truths = [np.array([True, True, False, False]), np.array([True, False, True, False])]
    table = lesion_cv.threshold_metrics(scores, truths, [0.5])
    row = table["thresholds"][0]  # positives at 0.5: 0.9, 0.5 and 0.6, all true; one true pixel missed
    assert (row["precision"], row["recall"], row["predicted_share"]) == (1.0, 0.75, 3 / 8)
    assert row["dice"] == pytest.approx(2 * 3 / (2 * 3 + 0 + 1))
    assert table["true_share"] == 0.5
    best = table["best"]  # from just above 0.3 to 0.5 the same three pixels: the lowest such step
    assert best["dice"] == pytest.approx(row["dice"]) and 0.3 < best["threshold"] <= 0.5
