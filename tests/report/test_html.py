"""report.html: self-contained, complete, escaped, with the agreement section only when labels are given."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import (
    RUN_INFO,
    eye,
    screened_result,
    ungradable_result,
    write_overlay_files,
)

from drscreen.preprocess import QualityIssue
from drscreen.report.html import QUALITY_REASONS, label_metrics, write_html_report
from drscreen.report.labels import LabelRow, read_labels
from drscreen.screening.schema import ImageResult, LesionModelProvenance, PatientResult

ERRORS = [("in/broken.jpg", "corrupt", "cannot decode")]


class _Tags(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def _cards(page: str) -> dict[str, list[str]]:
    """Image id (from the card's search text) -> the ``src`` of every image inside its card."""
    cards: dict[str, list[str]] = {}
    current = None
    for tag, attrs in _tags(page):
        if tag == "article":
            current = str(attrs["data-search"]).split()[0]
            cards[current] = []
        elif tag == "img" and current is not None:
            cards[current].append(str(attrs["src"]))
    return cards


def _patient(patient_id: str, results: list[ImageResult], recommendation: str, reason: str) -> PatientResult:
    eyes = [eye(side, [r for r in results if r.laterality == side]) for side in ("R", "L")]
    return PatientResult(patient_id=patient_id, visit=None, eyes=eyes, recommendation=recommendation, reason=reason)


@pytest.fixture()
def run(tmp_path: Path) -> tuple[Path, list[ImageResult], list[PatientResult]]:
    """Two patients: one referable, one with an ungradable eye; every image has its files."""
    ids = ["p1_right", "p1_left", "p2_right", "p2_left"]
    overlays = {image_id: write_overlay_files(tmp_path, image_id) for image_id in ids}
    results = [
        screened_result("p1_right", 3, patient_id="p1", laterality="R", overlays=overlays["p1_right"],
                        warnings=["laterality from the file name (R) disagrees with the image (L)"]),
        screened_result("p1_left", 0, patient_id="p1", laterality="L", overlays=overlays["p1_left"]),
        screened_result("p2_right", 1, patient_id="p2", laterality="R", overlays=overlays["p2_right"]),
        ungradable_result("p2_left", patient_id="p2", laterality="L"),
    ]  # fmt: skip
    patients = [
        _patient("p1", results[:2], "refer", "referable diabetic eye disease in eye(s): R"),
        _patient("p2", results[2:], "retake_or_refer", "no gradable photograph of eye(s): L"),
    ]
    return tmp_path, results, patients


def test_report_is_one_self_contained_file(run: tuple[Path, list[ImageResult], list[PatientResult]]) -> None:
    out_dir, results, patients = run
    before = {p for p in out_dir.rglob("*")}
    path = write_html_report(out_dir, results, patients, ERRORS, RUN_INFO)
    assert path == out_dir / "report.html"
    assert {p for p in out_dir.rglob("*")} - before == {path}
    page = path.read_text(encoding="utf-8")

    assert not re.search(r"https?:|file:|url\(|@import", page, re.IGNORECASE)
    tags = _tags(page)
    assert not [attrs for tag, attrs in tags if tag == "link" or (tag == "script" and "src" in attrs)]
    assert not [attrs for _, attrs in tags if "href" in attrs or "action" in attrs]
    sources = [str(attrs["src"]) for tag, attrs in tags if tag == "img"]
    assert len(sources) == 3 * 4 + 1  # three screened images with three overlays each, one ungradable photograph
    assert all(src.startswith(("data:image/jpeg;base64,", "data:image/webp;base64,")) for src in sources)


def test_report_shows_every_image_with_its_toggles(run: tuple[Path, list[ImageResult], list[PatientResult]]) -> None:
    out_dir, results, patients = run
    page = write_html_report(out_dir, results, patients, ERRORS, RUN_INFO).read_text(encoding="utf-8")

    assert set(_cards(page)) == {r.id for r in results}
    tags = _tags(page)
    toggles = [attrs["data-layer"] for tag, attrs in tags if tag == "input" and attrs.get("type") == "checkbox"
               and "data-layer" in attrs]  # fmt: skip
    assert sorted(toggles) == sorted(["lesions", "disc", "saliency"] * 3)
    assert sum(tag == "input" and "data-opacity" in attrs for tag, attrs in tags) == 3
    for control in ("filter-referable", "filter-ungradable", "filter-search"):
        assert f'id="{control}"' in page
    assert "Refer</span>" in page and "Retake photograph or refer</span>" in page
    assert "Ungradable: no grade is given. Retake the photograph or refer." in page
    assert "too blurry" in page and "too dark" in page
    assert "laterality from the file name (R) disagrees with the image (L)" in page
    assert "in/broken.jpg" in page and "corrupt" in page
    assert "synthetic only" in page and "validated on real data" in page
    assert "ababababab" in page and "sensitivity 0.90 on the packed validation curve" in page
    assert 'id="metrics"' not in page


def test_metrics_section_appears_with_labels(run: tuple[Path, list[ImageResult], list[PatientResult]]) -> None:
    out_dir, results, patients = run
    # Predicted DR 3, 0, 1 (ungradable: none). Reference: referable, referable (missed), not referable.
    labels = {"p1_right": LabelRow(3), "p1_left": LabelRow(2), "p2_right": LabelRow(1), "p2_left": LabelRow(0)}
    page = write_html_report(out_dir, results, patients, ERRORS, RUN_INFO, labels=labels).read_text(encoding="utf-8")

    assert 'id="metrics"' in page
    assert "Quadratic weighted kappa" in page and "ROC curve of the referable score" in page
    assert "Sensitivity <strong>50.0 %</strong>" in page
    assert "Specificity <strong>100.0 %</strong>" in page
    assert "4 of the 4 labelled images are in this run; 1 of them were ungradable" in page
    assert "differs by 2" in page


def test_label_metrics_score_the_stored_results(run: tuple[Path, list[ImageResult], list[PatientResult]]) -> None:
    _, results, _ = run
    labels = {"p1_right": LabelRow(3, 2), "p1_left": LabelRow(2, 0), "p2_right": LabelRow(1, 1)}
    metrics = label_metrics(results, labels)

    assert [[count for count, _ in row] for row in metrics["dr"]["matrix"]] == [
        [0, 0, 0, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]  # fmt: skip
    referable = metrics["referable"]
    # The stored scores are DR-only (from_grades ["dr"]), so the reference is DR >= 2: p2_right
    # (DR 1, DME 1) is not referable here but counted as referable by DME alone.
    assert (referable["n"], referable["n_referable"], referable["n_dme_only"]) == (3, 2, 1)
    assert referable["title"] == "Referable DR (DR ≥ 2)" and "DR-only" in referable["rule"]
    assert referable["sensitivity"] == pytest.approx(1 / 2) and referable["specificity"] == pytest.approx(1.0)
    assert referable["auc"] == pytest.approx(0.75)
    assert metrics["dme"]["n"] == 3 and metrics["n_ungradable"] == 0


def test_the_referable_reference_counts_dme_only_where_the_score_combines_it(
    run: tuple[Path, list[ImageResult], list[PatientResult]],
) -> None:
    _, results, _ = run
    labels = {"p1_right": LabelRow(3, 2), "p1_left": LabelRow(2, 0), "p2_right": LabelRow(1, 1)}
    with_dme = [
        r if r.referable is None else r.model_copy(update={"referable": r.referable.model_copy(
            update={"from_grades": ["dr", "dme"]})})
        for r in results
    ]  # fmt: skip
    referable = label_metrics(with_dme, labels)["referable"]
    # DME >= 1 makes p2_right a referable reference although its DR grade is 1: all three are referable.
    assert (referable["n"], referable["n_referable"], referable["n_dme_only"]) == (3, 3, 0)
    assert referable["title"] == "Referable disease" and referable["rule"].startswith("DR ≥ 2, or DME ≥ 1")
    assert referable["sensitivity"] == pytest.approx(1 / 3)
    assert referable["auc"] is None and referable["specificity"] is None


def test_the_page_names_the_referable_reference(run: tuple[Path, list[ImageResult], list[PatientResult]]) -> None:
    out_dir, results, patients = run
    labels = {"p1_right": LabelRow(3, 2), "p1_left": LabelRow(2, 0), "p2_right": LabelRow(1, 1)}
    page = write_html_report(out_dir, results, patients, ERRORS, RUN_INFO, labels=labels).read_text(encoding="utf-8")
    assert "Referable DR (DR ≥ 2)" in page and "Reference: DR ≥ 2, as the referable score is DR-only." in page
    assert "1 more have DME ≥ 1 but DR below it in the labels: not counted as referable here" in page


def test_ids_are_escaped(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>'
    result = screened_result(hostile, 2, patient_id=hostile, laterality="R")
    patient = _patient(hostile, [result], "refer", f"reason {hostile}")
    page = write_html_report(tmp_path, [result], [patient], [(hostile, hostile, hostile)], {"command": hostile},
                             labels={hostile: LabelRow(2)}).read_text(encoding="utf-8")  # fmt: skip

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1


def test_large_runs_embed_referable_and_ungradable_first(
    run: tuple[Path, list[ImageResult], list[PatientResult]],
) -> None:
    out_dir, results, patients = run
    page = write_html_report(out_dir, results, patients, ERRORS, RUN_INFO, max_embedded_images=2).read_text("utf-8")
    cards = _cards(page)

    assert all(src.startswith("data:") for image_id in ("p1_right", "p2_left") for src in cards[image_id])
    assert cards["p1_left"][0] == "previews/p1_left.jpg"
    assert cards["p2_right"][1:] == [f"overlays/{kind}/p2_right.png" for kind in ("lesions", "disc", "saliency")]
    assert "2 of 4 photographs are linked to their files" in page
    assert not re.search(r"https?:|file:", page)


def test_embedded_images_are_downscaled(tmp_path: Path) -> None:
    overlays = write_overlay_files(tmp_path, "big", size=(2000, 1000))
    result = screened_result("big", 2, patient_id=None, laterality=None, overlays=overlays)
    patient = _patient("big", [result], "refer", "referable")
    page = write_html_report(tmp_path, [result], [patient], [], {}).read_text(encoding="utf-8")
    sizes = [len(src) for src in _cards(page)["big"]]
    raw = sum(p.stat().st_size for p in tmp_path.rglob("*.*") if p.name != "report.html")

    assert len(sizes) == 4 and sum(sizes) < raw


def test_every_quality_reason_has_words() -> None:
    assert set(QUALITY_REASONS) == {issue.value for issue in QualityIssue}


def test_read_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("\ufeffid,dr_grade,dme_grade\na,2,\nb,0,1\nc,4.0,2\n", encoding="utf-8")
    assert read_labels(path) == {"a": LabelRow(2), "b": LabelRow(0, 1), "c": LabelRow(4, 2)}

    (tmp_path / "dr_only.csv").write_text("dr_grade,id\n1,x\n", encoding="utf-8")
    assert read_labels(tmp_path / "dr_only.csv") == {"x": LabelRow(1)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,grade\na,1\n", "lacks column(s) dr_grade"),
        ("id,dr_grade\na,5\n", "line 2: DR grade must be an integer 0-4"),
        ("id,dr_grade\na,1.5\n", "line 2: dr_grade must be an integer grade"),
        ("id,dr_grade,dme_grade\na,1,3\n", "line 2: DME grade must be an integer 0-2"),
        ("id,dr_grade\na,1\na,2\n", "line 3: id 'a' appears twice"),
        ("id,dr_grade\n,1\n", "line 2: empty id"),
    ],
)
def test_read_labels_rejects_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        read_labels(path)


def test_the_page_names_the_lesion_model(run: tuple[Path, list[ImageResult], list[PatientResult]]) -> None:
    out_dir, results, patients = run
    lesion_model = LesionModelProvenance(
        model_name="drscreen_lesion_decoder", model_version="1", weights_sha256="cd" * 32, runtime="TorchBackend",
        preprocess={"size": 512},
    )
    with_lesions = [
        r.model_copy(update={"provenance": r.provenance.model_copy(update={"lesion_model": lesion_model})})
        for r in results
    ]
    page = write_html_report(out_dir, with_lesions, patients, ERRORS, {}).read_text(encoding="utf-8")
    assert "drscreen_lesion_decoder 1 (512 px)" in page  # the header
    assert page.count("drscreen_lesion_decoder 1 · TorchBackend") == len(results)  # every image's details
    without = write_html_report(out_dir, results, patients, ERRORS, {}).read_text(encoding="utf-8")
    assert "Lesion model" not in without
