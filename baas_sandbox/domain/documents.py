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


#: A CNPJ: 12 characters (digits, or since July 2026 upper-case letters too: the alphanumeric CNPJ)
#: and 2 check digits. python-stdnum (2.x) computes both forms' check digits (a character's value
#: is its ASCII code minus 48, with the numeric CNPJ's weights).
CNPJ_PATTERN = re.compile(r"[0-9A-Z]{12}[0-9]{2}")


def is_valid_cnpj(number: str) -> bool:
    # fullmatch first: stdnum would also accept lower case and punctuation ("12.ABC.345/01DE-35").
    return bool(CNPJ_PATTERN.fullmatch(number)) and cnpj.is_valid(number)


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
        raise InvalidPixKey(value, "is not a valid CNPJ (14 characters, digits or upper-case letters, and valid check digits)",
                            "não é um CNPJ válido (14 caracteres, dígitos ou letras maiúsculas, e dígitos verificadores válidos)")
    # fullmatch, not match: Python's `$` also matches before a final newline, and "a@b.c\n" must
    # not pass for a key distinct from "a@b.c".
    if key_type is PixKeyType.EMAIL and (len(value) > EMAIL_MAX_LENGTH or not EMAIL_PATTERN.fullmatch(value)):
        raise InvalidPixKey(value, "is not a valid email key (lower case, one @, at most 77 characters)",
                            "não é uma chave email válida (minúsculas, um @, no máximo 77 caracteres)")
    if key_type is PixKeyType.PHONE and not _is_valid_brazilian_phone(value):
        raise InvalidPixKey(value, "is not a valid phone key (+55, a valid area code and 8 or 9 digits)",
                            "não é uma chave celular válida (+55, DDD válido e 8 ou 9 dígitos)")


UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def key_type_of(value: str) -> PixKeyType:
    """The type of a key given by its value alone (a lookup, a deletion): the formats do not
    overlap. Raises ``InvalidPixKey`` when the value is no key of any type."""
    if "@" in value:
        kind = PixKeyType.EMAIL
    elif value.startswith("+"):
        kind = PixKeyType.PHONE
    elif UUID_PATTERN.fullmatch(value):
        return PixKeyType.RANDOM
    elif len(value) == 11:
        kind = PixKeyType.CPF
    elif len(value) == 14:
        kind = PixKeyType.CNPJ
    else:
        raise InvalidPixKey(_quoted(value), "is not a Pix key (a CPF, CNPJ, email, phone or random key)",
                            "não é uma chave pix (CPF, CNPJ, email, celular ou chave aleatória)")
    check_pix_key(kind, value)
    return kind


def _quoted(value: str) -> str:
    """A value as an error message may quote it: at most 80 characters."""
    return value if len(value) <= 80 else value[:79] + "…"


def _is_valid_brazilian_phone(value: str) -> bool:
    if not PHONE_PATTERN.fullmatch(value):
        return False
    try:
        number = phonenumbers.parse(value, "BR")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number_for_region(number, "BR")
