"""schemathesis over the OpenAPI document: generated requests to every operation, with an
admin key, must get no 5xx and answers that match the documented status codes and schemas."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from shelfwise.serving import create_app
from shelfwise.store import Store
from tests.serving_helpers import fill_shop, key, make_settings

# schemathesis reads the schema when the module is collected, so the app is built here; the
# fixture below removes its home when the module's tests are done.
_home = tempfile.TemporaryDirectory(prefix="shelfwise-schema-")
_config = make_settings(Path(_home.name), rate_limit=1_000_000, rate_burst=1_000_000)
_store = Store.open(_config)
fill_shop(_store)
_app = create_app(_config, _store)
ADMIN = key(_store, "admin")
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    _store.close()
    _home.cleanup()


# What the API promises: no server error, and every answer's status code, content type, headers
# and body as documented. The one 5xx allowed is search by photo's documented 503 while no
# photo model is trained (this shop has none). Left out: rejecting query parameters the schema
# does not name (FastAPI ignores them, as most web servers do), accepting every schema-valid
# upload (bytes can fit the schema and still not be an image), and the Allow header of a 405
# (Starlette names the methods of the first route on the path only).
CHECKS = [
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
NOT_CHECKED = [
    schemathesis.checks.not_a_server_error,  # checked below, with the one documented exception
    schemathesis.checks.negative_data_rejection,
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.allow_header_conformance,
]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case):
    response = case.call(headers=ADMIN)
    case.validate_response(response, checks=CHECKS, excluded_checks=NOT_CHECKED, headers=ADMIN)
    no_photo_model = case.operation.path == "/search/image" and response.status_code == 503
    assert response.status_code < 500 or no_photo_model, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
