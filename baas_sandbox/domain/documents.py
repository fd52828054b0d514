"""Format rules of Pix keys that a JSON Schema cannot express (check digits, area codes).

The spec's patterns already guarantee the shapes (11 digits, ``+55`` and 10-11 digits, DICT's email
pattern); these checks compute what the patterns cannot. python-stdnum and phonenumbers are the
maintained references for Brazilian documents and numbering plans.
"""

from __future__ import annotations

import re

import phonenumbers
from stdnum.br import cnpj, cpf

from baas_sandbox.domain.errors import InvalidPixKey
from baas_sandbox.domain.model import PixKeyType

# DICT's own pattern for email keys (lower case only) and its length bound.
EMAIL_PATTERN = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
EMAIL_MAX_LENGTH = 77
PHONE_PATTERN = re.compile(r"^\+55[1-9][0-9][0-9]{8,9}$")


def is_valid_cpf(number: str) -> bool:
    return len(number) == 11 and number.isdigit() and cpf.is_valid(number)


def is_valid_cnpj(number: str) -> bool:
    return len(number) == 14 and number.isdigit() and cnpj.is_valid(number)


def check_pix_key(key_type: PixKeyType, value: str | None) -> None:
    """Raise ``InvalidPixKey`` naming the problem when ``value`` is not a valid key of its type."""
    if key_type is PixKeyType.RANDOM:
        if value:
            raise InvalidPixKey(value, "must not be sent for a random key: the server generates it",
                                "não deve ser enviada para uma chave aleatória: o servidor a gera")
        return
    if not value:
        raise InvalidPixKey("''", "is required for this pix_key_type", "é obrigatória para este pix_key_type")
    if key_type is PixKeyType.CPF and not is_valid_cpf(value):
        raise InvalidPixKey(value, "is not a valid CPF (11 digits with valid check digits)",
                            "não é um CPF válido (11 dígitos com dígitos verificadores válidos)")
    if key_type is PixKeyType.CNPJ and not is_valid_cnpj(value):
        raise InvalidPixKey(value, "is not a valid CNPJ (14 digits with valid check digits)",
                            "não é um CNPJ válido (14 dígitos com dígitos verificadores válidos)")
    # fullmatch, not match: Python's `$` also matches before a final newline, and "a@b.c\n" must
    # not pass for a key distinct from "a@b.c".
    if key_type is PixKeyType.EMAIL and (len(value) > EMAIL_MAX_LENGTH or not EMAIL_PATTERN.fullmatch(value)):
        raise InvalidPixKey(value, "is not a valid email key (lower case, one @, at most 77 characters)",
                            "não é uma chave email válida (minúsculas, um @, no máximo 77 caracteres)")
    if key_type is PixKeyType.PHONE and not _is_valid_brazilian_phone(value):
        raise InvalidPixKey(value, "is not a valid phone key (+55, a valid area code and 8 or 9 digits)",
                            "não é uma chave celular válida (+55, DDD válido e 8 ou 9 dígitos)")


def _is_valid_brazilian_phone(value: str) -> bool:
    if not PHONE_PATTERN.fullmatch(value):
        return False
    try:
        number = phonenumbers.parse(value, "BR")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number_for_region(number, "BR")
