"""Schemathesis over the OpenAPI schema, signed in with an API token: no answer is a 5xx.

Each API operation's Hypothesis strategy is run directly (schemathesis' pytest plugin does not
support this pytest version), one test per operation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from serve_helpers import PASSWORD

from drscreen.serve import ServeConfig, create_app
from drscreen.serve.security import create_user, issue_api_token

EXAMPLES = 25


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, str]]:
    """(schema, auth headers) of an app on SQLite with one user and an API token."""
    app = create_app(ServeConfig(data_dir=Path(tmp_path_factory.mktemp("fuzz")), workers=0))
    with app.state.drscreen.sessions() as session:
        user = create_user(session, "fuzzer", PASSWORD)
        headers = {"Authorization": f"Bearer {issue_api_token(session, user.id, 'schemathesis')}"}
    return schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=headers), headers


def operation_labels() -> list[str]:
    from drscreen.serve.api import router

    return [
        f"{method} {route.path}"
        for route in router.routes
        if getattr(route, "include_in_schema", False)
        for method in sorted(route.methods)
    ]


@pytest.mark.parametrize("label", operation_labels())
def test_no_server_errors(api: tuple[Any, dict[str, str]], label: str) -> None:
    schema, headers = api
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    calls = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
    )
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        calls.append(response.status_code)

    fuzz()
    assert calls and max(calls) < 500
