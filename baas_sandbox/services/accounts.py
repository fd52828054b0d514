"""Opening sandbox accounts, from fixtures or from the admin API."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from baas_sandbox.adapters.fixtures import InvalidAccountField
from baas_sandbox.clock import utcnow
from baas_sandbox.ids import new_id
from baas_sandbox.domain.documents import is_valid_cnpj, is_valid_cpf
from baas_sandbox.domain.model import (
    Account,
    AccountStatus,
    PersonType,
    Tenant,
    timestamp,
)


def build_account(fields: dict, tenant: Callable[[str], Tenant | None], ids: Callable[[], str] = new_id,
                  clock: Callable[[], dt.datetime] = utcnow) -> Account:
    """An ``Account`` from fields already checked against the spec's ``AccountRequest`` schema
    (``ids`` and ``clock``: the namespace's, for what is generated).

    Checks what the schema cannot (the tenant exists, the document's check digits fit the person
    type) and generates what was left out. Raises ``InvalidAccountField`` naming the field.
    """
    if tenant(fields["tenant"]) is None:
        raise InvalidAccountField("tenant", f"unknown tenant {fields['tenant']!r}")
    person_type = PersonType(fields["owner_person_type"])
    document = fields["owner_document_number"]
    if person_type is PersonType.NATURAL and not is_valid_cpf(document):
        raise InvalidAccountField(
            "owner_document_number",
            f"{document} is not a valid CPF (a natural person's document: 11 digits with valid check digits)")
    if person_type is PersonType.LEGAL and not is_valid_cnpj(document):
        raise InvalidAccountField(
            "owner_document_number",
            f"{document} is not a valid CNPJ (a legal person's document: 14 digits with valid check digits)")
    return Account(
        account_key=fields.get("account_key") or ids(),
        tenant=fields["tenant"],
        owner_name=fields["owner_name"],
        owner_document_number=document,
        owner_person_type=person_type,
        owner_person_key=fields.get("owner_person_key") or ids(),
        owner_person_registered=fields.get("owner_person_registered", True),
        trading_name=fields.get("trading_name"),
        status=AccountStatus(fields["status"]),
        branch_number=fields.get("branch_number", "0001"),
        account_number=fields.get("account_number") or str(random.randint(1_000_000, 9_999_999)),
        account_digit=fields.get("account_digit") or str(random.randint(0, 9)),
        account_type=fields.get("account_type", "checking"),
        created_at=fields.get("created_at") or timestamp(clock()),
    )
