"""The JSON API with the real shipped model (explanations off): submit, poll, result in the CLI's
schema, overlays, history filters and pages, CSV export, the patient view, deletion."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from PIL import Image as PILImage

from drscreen.screening import ImageResult


def submit(upload, client, patient: str, laterality: str, files: list) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """Upload ``files``; accepted (202) or all refused (422), the answer's JSON."""
    answer = upload(client, files, patient, laterality)
    assert answer.status_code in (202, 422), answer.text
    return answer.json()


def test_submit_poll_fetch_list_export_and_delete(  # type: ignore[no-untyped-def]
    make_client, fast_screener, good_photo: Path, upload, noise_png, wait_for_job
) -> None:
    client = make_client(workers=1, screener_factory=fast_screener, poll_seconds=0.1)
    right = submit(upload, client, "P-100", "R", [("right.jpg", good_photo.read_bytes(), "image/jpeg")])["files"][0]
    left = submit(upload, client, "P-100", "L", [("left.png", noise_png(320), "image/png")])["files"][0]
    other = submit(upload, client, "Q-7", "", [("q.jpg", good_photo.read_bytes(), "image/jpeg")])["files"][0]
    assert right["accepted"] and left["accepted"] and other["accepted"]
    for outcome in (right, left, other):
        job = wait_for_job(client, outcome["job_id"])
        assert job["status"] == "done" and job["attempts"] == 1

    result = ImageResult.model_validate(client.get(f"/api/images/{right['image_id']}/result").json())
    assert result.status == "screened" and result.dr is not None and result.laterality == "R"
    assert result.patient_id == "P-100" and result.source == "right.jpg"
    assert set(result.overlays) == {"lesions", "disc"} and result.explanation is None
    for url in result.overlays.values():
        layer = client.get(url)
        assert layer.status_code == 200 and layer.headers["content-type"] == "image/png"
        assert PILImage.open(io.BytesIO(layer.content)).mode == "RGBA"
    photo = client.get(f"/api/images/{right['image_id']}/photo")
    assert (
        photo.headers["content-type"] == "image/jpeg"
        and PILImage.open(io.BytesIO(photo.content)).size == result.image_size
    )

    ungradable = client.get(f"/api/images/{left['image_id']}").json()
    assert ungradable["status"] == "ungradable" and ungradable["result"]["quality"]["reasons"]

    everything = client.get("/api/images").json()
    assert everything["total"] == 3 and everything["pages"] == 1
    assert [i["id"] for i in client.get("/api/images", params={"ungradable": "true"}).json()["items"]] == [
        left["image_id"]
    ]
    assert client.get("/api/images", params={"ungradable": "false"}).json()["total"] == 2
    assert {i["patient_id"] for i in client.get("/api/images", params={"patient": "p-1"}).json()["items"]} == {"P-100"}
    referable = client.get("/api/images", params={"referable": "true"}).json()["total"]
    not_referable = client.get("/api/images", params={"referable": "false"}).json()["total"]
    assert referable + not_referable == 2
    assert client.get("/api/images", params={"date_from": "2999-01-01"}).json()["total"] == 0
    pages = [client.get("/api/images", params={"per_page": 2, "page": n}).json() for n in (1, 2)]
    assert pages[0]["pages"] == 2 and len(pages[0]["items"]) == 2 and len(pages[1]["items"]) == 1
    assert {i["id"] for p in pages for i in p["items"]} == {right["image_id"], left["image_id"], other["image_id"]}

    exported = client.get("/api/images.csv", params={"patient": "P-100"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["id"] for r in rows} == {right["image_id"], left["image_id"]}
    assert {r["status"] for r in rows} == {"screened", "ungradable"} and all(r["uploaded_at"] for r in rows)

    patient = client.get("/api/patients/P-100").json()
    (visit,) = patient["visits"]
    assert visit["visit"] == "2026-11-26" and {e["laterality"] for e in visit["eyes"]} == {"R", "L"}
    assert visit["recommendation"] in ("refer", "retake_or_refer")  # the left eye has no gradable photograph

    assert client.delete(f"/api/images/{other['image_id']}").status_code == 204
    assert client.get(f"/api/images/{other['image_id']}").status_code == 404
    assert client.delete("/api/patients/P-100").status_code == 204
    assert client.get("/api/patients/P-100").status_code == 404
    assert client.get("/api/images").json()["total"] == 0
    blobs = client.app.state.drscreen.config.data_dir / "blobs"  # type: ignore[attr-defined]
    assert [p for p in blobs.rglob("*") if p.is_file()] == []


def test_a_rejected_upload_and_a_file_the_screener_cannot_read(make_client, fast_screener, upload) -> None:  # type: ignore[no-untyped-def]
    client = make_client(workers=1, screener_factory=fast_screener, poll_seconds=0.1)
    answer = submit(upload, client, "P1", "R", [("notes.jpg", b"GIF89a not really", "image/jpeg")])
    assert answer["accepted"] == 0 and answer["files"][0]["code"] in ("not_an_image", "unsupported_format", "corrupt")
    assert client.get("/api/images").json()["total"] == 0


def test_the_openapi_schema_publishes_the_cli_result_schema(make_client) -> None:  # type: ignore[no-untyped-def]
    schema = make_client().get("/api/openapi.json").json()
    assert schema["components"]["schemas"]["ImageResult"]["required"] == ImageResult.model_json_schema()["required"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert {"/api/images", "/api/jobs/{job_id}", "/api/images/{image_id}/result", "/api/patients/{patient_id}"} <= set(
        schema["paths"]
    )
