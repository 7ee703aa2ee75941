"""The published result schema is the one the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from drscreen.screening import image_result_json_schema

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "image_result.schema.json"


def test_the_published_json_schema_matches_the_code() -> None:
    assert json.loads(PUBLISHED.read_text()) == image_result_json_schema(), (
        "regenerate docs/image_result.schema.json: python -c 'import json; from drscreen.screening import "
        "image_result_json_schema as s; print(json.dumps(s(), indent=1))' > docs/image_result.schema.json"
    )
