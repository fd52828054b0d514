"""Keys DICT holds for other institutions: from ``fixtures/dict_entries.yaml`` or the admin API.

A lookup finds them; a client asking the sandbox for one of them is answered ``PIX000065`` (the key
exists). Claims (portability, ownership) start from them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from baas_sandbox.adapters.fixtures import InvalidAccountField
from baas_sandbox.clock import utcnow
from baas_sandbox.domain.documents import UUID_PATTERN, check_pix_key, is_valid_cnpj, is_valid_cpf
from baas_sandbox.domain.errors import InvalidPixKey
from baas_sandbox.domain.model import OWN_ISPB, DictEntry, PersonType, PixKeyType, timestamp


def build_dict_entry(fields: dict, clock: Callable[[], dt.datetime] = utcnow) -> DictEntry:
    """A ``DictEntry`` from fields already checked against the admin spec's ``DictEntryRequest``;
    checks what the schema cannot. Raises ``InvalidAccountField`` naming the field."""
    kind = PixKeyType(fields["pix_key_type"])
    value = fields["pix_key"]
    person_type = PersonType(fields["owner_person_type"])
    document = fields["owner_document_number"]
    if kind is PixKeyType.RANDOM:
        if not UUID_PATTERN.fullmatch(value):
            raise InvalidAccountField("pix_key", f"{value} is not a random key (a lower-case UUID)")
    else:
        try:
            check_pix_key(kind, value)
        except InvalidPixKey as exc:
            raise InvalidAccountField("pix_key", exc.violations[0]["message"]) from None
    if person_type is PersonType.NATURAL and not is_valid_cpf(document):
        raise InvalidAccountField("owner_document_number",
                                  f"{document} is not a valid CPF (a natural person's document)")
    if person_type is PersonType.LEGAL and not is_valid_cnpj(document):
        raise InvalidAccountField("owner_document_number",
                                  f"{document} is not a valid CNPJ (a legal person's document)")
    if kind.is_document:
        expected = PixKeyType.CPF if person_type is PersonType.NATURAL else PixKeyType.CNPJ
        if kind is not expected:
            raise InvalidAccountField("pix_key_type", f"a {person_type} person's document key is a {expected} key")
        if value != document:
            raise InvalidAccountField("pix_key", f"{value} is not the owner's document {document}")
    if fields["ispb"] == OWN_ISPB:
        raise InvalidAccountField("ispb", f"{OWN_ISPB} is the sandbox's own institution: create its keys "
                                          "with POST /baas/pix/keys")
    return DictEntry(
        pix_key=value,
        pix_key_type=kind,
        owner_name=fields["owner_name"],
        owner_document_number=document,
        owner_person_type=person_type,
        ispb=fields["ispb"],
        bank_name=fields["bank_name"],
        bank_code=fields.get("bank_code"),
        branch_number=fields.get("branch_number", "0001"),
        account_number=fields["account_number"],
        account_digit=fields.get("account_digit", "0"),
        account_type=fields.get("account_type", "checking"),
        created_at=fields.get("created_at") or timestamp(clock()),
    )
