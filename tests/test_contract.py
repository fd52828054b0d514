"""schemathesis over every operation of both specs, every check, response validation on."""

from __future__ import annotations

import schemathesis
from hypothesis import settings

from baas_sandbox.app import create_app
from baas_sandbox.defaults import LOOPBACK_HOSTS
from baas_sandbox.services.sandbox import Settings

# schemathesis's in-process client calls itself "testserver": a name the admin API must answer to.
APP = create_app(Settings(activation_delay=0.05, validate_responses=True,
                          allowed_hosts=(*LOOPBACK_HOSTS, "testserver")))

product = schemathesis.openapi.from_asgi("/openapi.json", APP)
# The Server-Sent Events streams never end, and an in-process client has no time-out to stop
# reading them: they are tested in test_webhooks.py (and by the CLI contract run, with a time-out).
admin = schemathesis.openapi.from_asgi("/__admin/openapi.json", APP).exclude(path_regex="/stream$")


@product.parametrize()
@settings(max_examples=60, deadline=None)
def test_product_api_honours_its_contract(case):
    case.call_and_validate()


@admin.parametrize()
@settings(max_examples=40, deadline=None)
def test_admin_api_honours_its_contract(case):
    case.call_and_validate()
