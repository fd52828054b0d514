"""schemathesis over every operation of both specs, every check, response validation on."""

from __future__ import annotations

import schemathesis
from hypothesis import settings

from baas_sandbox.app import create_app
from baas_sandbox.defaults import LOOPBACK_HOSTS, SPEC_DIR
from baas_sandbox.services.sandbox import Settings

# schemathesis's in-process client calls itself "testserver": a name the admin API must answer to.
APP = create_app(Settings(activation_delay=0.05, validate_responses=True,
                          allowed_hosts=(*LOOPBACK_HOSTS, "testserver")))
# The settings `baas-sandbox fuzz` uses too (the token, the fixture accounts, the statuses business
# rules may answer), named explicitly: schemathesis would only discover them in the working folder.
CONFIG = schemathesis.config.SchemathesisConfig.from_path(SPEC_DIR / "schemathesis.toml")

product = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
# The Server-Sent Events streams never end, and an in-process client has no time-out to stop
# reading them: they are tested in test_webhooks.py (and by the CLI contract run, with a time-out).
admin = schemathesis.openapi.from_asgi("/__admin/openapi.json", APP, config=CONFIG).exclude(path_regex="/stream$")


@product.parametrize()
@settings(max_examples=60, deadline=None)
def test_product_api_honours_its_contract(case):
    case.call_and_validate()


@admin.parametrize()
@settings(max_examples=40, deadline=None)
def test_admin_api_honours_its_contract(case):
    case.call_and_validate()


# With no project configuration (schemathesis's defaults, not spec/schemathesis.toml): what a team
# pointing schemathesis at spec/openapi.yaml gets. Every body the schema allows is accepted: the
# supported (type, provider) pairs are part of the schema, so none is refused with EBAA0007.
bare = schemathesis.openapi.from_asgi("/openapi.json", APP, config=schemathesis.config.SchemathesisConfig()
                                      ).include(operation_id="post-credentials")


@bare.parametrize()
@settings(max_examples=100, deadline=None)
def test_schema_valid_credentials_are_accepted_with_no_project_configuration(case):
    case.call_and_validate(headers={"Authorization": "Bearer org-a-token"},
                           checks=[schemathesis.checks.positive_data_acceptance])
