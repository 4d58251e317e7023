"""docs/openapi.json stays what the code says: the routes' own declarations (one per route
of template.yaml, each answer documented, every refusal the one Error shape), the request
schemas of the models, and the samples in events/ fit it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from partnero_bridge.api import ApiError, validation_error
from partnero_bridge.signup.models import SignupRequest
from partnero_bridge_cli.local.template import read_stack
from partnero_bridge_cli.openapi import build

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "openapi.json"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC.read_text())
    return loaded


def test_committed_description_matches_the_code(spec: dict[str, Any]) -> None:
    assert spec == build(ROOT), (
        "docs/openapi.json is out of date: run `partnero-bridge openapi > docs/openapi.json`"
    )


def test_every_operation_documents_its_errors_as_json(spec: dict[str, Any]) -> None:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert any(c.startswith("2") for c in codes), (method, path)
            assert any(c.startswith("4") for c in codes), (method, path)
            for code, answer in operation["responses"].items():
                if code.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"]["$ref"].endswith(
                        "/Error"
                    )


# What each route can answer: every status its code raises or returns.
DOCUMENTED = {
    ("post", "/signup"): {"202", "400", "401", "403", "413", "415", "422", "429", "503"},
    ("options", "/signup"): {"204", "400", "403"},
    ("post", "/webhooks/ecwid"): {"200", "400", "401", "413", "422", "503"},
    ("post", "/webhooks/stripe"): {"200", "400", "413", "422", "503"},
}


def test_every_template_route_is_described_with_its_answers(spec: dict[str, Any]) -> None:
    routes = {(r.method.lower(), r.path) for r in read_stack(ROOT).routes()}
    described = {
        (method, path): set(operation["responses"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    assert set(described) == routes == set(DOCUMENTED)
    assert described == DOCUMENTED
    for method, path in routes:
        answers = spec["paths"][path][method]["responses"]
        for code in {"429", "503"} & set(answers):
            assert "Retry-After" in answers[code]["headers"], (method, path, code)


def test_the_error_schema_is_what_refusals_carry(spec: dict[str, Any]) -> None:
    validator = _validator(spec, "Error")
    with pytest.raises(ValidationError) as caught:
        SignupRequest.model_validate({"name": "no email"})
    invalid = validation_error(caught.value)
    plain = ApiError(401, "invalid_signature", "no")
    for error in (invalid, plain):
        body = error.body()
        assert not list(validator.iter_errors(body)), body
        assert set(body) <= set(spec["components"]["schemas"]["Error"]["properties"])
    assert "fields" in invalid.body()
    assert "fields" not in plain.body()
    # Powertools' own validation answer is not a shape any route documents.
    assert list(validator.iter_errors({"statusCode": 422, "detail": [{"loc": ["body"]}]}))


def _validator(spec: dict[str, Any], component: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{component}", "components": spec["components"]}
    )


@pytest.mark.parametrize(
    ("component", "pattern"),
    [
        ("SignupRequest", "signup/[rn]*.json"),
        ("EcwidWebhook", "ecwid/webhooks/*.json"),
        ("StripeEvent", "stripe/*.json"),
    ],
)
def test_samples_fit_the_request_schemas(
    spec: dict[str, Any], component: str, pattern: str
) -> None:
    samples = sorted((ROOT / "events").glob(pattern))
    assert samples
    validator = _validator(spec, component)
    for sample in samples:
        errors = list(validator.iter_errors(json.loads(sample.read_text())))
        assert not errors, (sample.name, [e.message for e in errors])


def test_the_schema_refuses_what_the_endpoint_refuses(spec: dict[str, Any]) -> None:
    validator = _validator(spec, "SignupRequest")
    assert list(validator.iter_errors({"name": "no email"}))
    assert list(validator.iter_errors({"email": "a@b.co", "favourite": "x"}))
