"""Every request example of spec/openapi.yaml works verbatim: sent with org-a's token to a freshly
reset sandbox, it gets a 2xx (the partner teams' first requests are copied from the spec)."""

from __future__ import annotations

import re

import pytest

from baas_sandbox.spec import PRODUCT_SPEC, SPEC_DIR, load_checked, resolve_refs
from tests.helpers import ORG_A

SPEC = resolve_refs(load_checked(SPEC_DIR / PRODUCT_SPEC))
METHODS = ("get", "put", "post", "patch", "delete")


def _example(parameter: dict):
    if "example" in parameter:
        return parameter["example"]
    if parameter.get("examples"):
        return next(iter(parameter["examples"].values()))["value"]
    return parameter.get("schema", {}).get("example")


def documented_requests():
    """(id, method, path, query, headers, body) for each request example of each operation."""
    for template, item in SPEC["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
            values = {(p["in"], p["name"]): _example(p) for p in parameters}
            missing = [name for (where, name), value in values.items() if value is None
                       and any(p["name"] == name and p.get("required") for p in parameters)]
            assert not missing, f"{operation['operationId']}: required parameters without an example: {missing}"
            path = re.sub(r"\{(\w+)\}", lambda m: str(values[("path", m.group(1))]), template)
            query = {name: value for (where, name), value in values.items() if where == "query" and value is not None}
            headers = {name: str(value) for (where, name), value in values.items()
                       if where == "header" and value is not None}
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            bodies = {name: example["value"] for name, example in content.get("examples", {}).items()}
            if "example" in content:
                bodies["example"] = content["example"]
            for name, body in (bodies or {"(no body)": None}).items():
                yield f"{operation['operationId']}-{name}", method.upper(), path, query, headers, body


REQUESTS = list(documented_requests())


def test_there_are_request_examples():
    assert len(REQUESTS) >= 10


@pytest.mark.parametrize("method,path,query,headers,body", [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS])
def test_every_request_example_answers_2xx_on_a_fresh_sandbox(client, method, path, query, headers, body):
    assert client.post("/__admin/reset").status_code == 200
    answer = client.request(method, path, params=query, headers=ORG_A | headers, json=body)
    assert 200 <= answer.status_code < 300, (answer.status_code, answer.text)
