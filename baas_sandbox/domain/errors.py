"""Business errors, each with the platform's code, HTTP status and messages.

The messages are part of the contract partner teams code against, so they live here with the
rules that raise them, not in the HTTP layer. ``BaasError`` subclasses render as the Pix key API's
``{title, description, translation, code}`` body; ``BankingAuthError`` subclasses as the banking
authentication API's ``{code, message}`` body.
"""

from __future__ import annotations

import functools
import string


class DomainError(Exception):
    """A rule refused the request."""

    status: int = 400
    code: str = ""


class BaasError(DomainError):
    """An error of the Pix key (BaaS) API."""

    title: str = ""
    description: str = ""
    translation: str | None = None  # None: same text as the description (as the platform does)
    #: 2FA errors carry ``description`` as an object and an empty ``translation`` object.
    two_factor_shape: bool = False

    def headers(self) -> dict[str, str]:
        """Response headers that go with the error (``Retry-After`` of a rate limit)."""
        return {}

    def __init__(self, **params: str) -> None:
        self.params = params
        super().__init__(self.render_description())

    def render_description(self) -> str:
        return self.description.format(**self.params)

    def render_translation(self) -> str:
        return (self.translation or self.description).format(**self.params)


class AccountNotFound(BaasError):
    status, code, title = 404, "PIX000026", "Account not found"
    description = "Conta não encontrada para account_key: {account_key}"


class AccountNotOpen(BaasError):
    status, code, title = 400, "PIX000002", "Account is not Opened"
    description = "A conta {account_key} não está aberta."


class PersonNotFound(BaasError):
    status, code, title = 400, "PIX000027", "Person not found"
    description = "Pessoa não encontrada para person_key: {person_key}"


class InvalidPermission(BaasError):
    status, code, title = 403, "PIX000054", "Invalid Permission"
    description = (
        "A pessoa {person_key} não possui credenciais de administrador para a conta {account_key}."
    )


class KeyNotOwnersDocument(BaasError):
    status, code, title = 422, "PIX000020", "Attempted CPF Pix Key is Not that of Account Owner"
    description = (
        "A chave pix fornecida {pix_key} não corresponde ao {document_kind} {document_number} "
        "do titular da conta."
    )


class KeyAlreadyExists(BaasError):
    status, code, title = 400, "PIX000065", "Bad Request"
    description = "Pix key: {pix_key} already exists."
    translation = "A chave pix: {pix_key} já existe."


class KeyCreationNotFinished(BaasError):
    status, code, title = 400, "PIX000074", "Pix Key Creation Non Finished"
    description = "A chave pix {pix_key} já possui um pedido de criação não finalizado."


class KeyNotFound(BaasError):
    """No active key of this value at the sandbox's institution (never registered, deleted, still
    being created, or held at another institution)."""

    status, code, title = 404, "PIX000083", "Pix Key not found"
    description = "Pix Key not found: {pix_key}."
    translation = "Chave pix não encontrada: {pix_key}."


class NotEnoughPermission(BaasError):
    """The key belongs to an account of another tenant."""

    status, code, title = 403, "PIX000080", "Not enough permission"
    description = "Not enough permission on the Pix key {pix_key}."
    translation = "Sem permissão sobre a chave pix {pix_key}."


class KeyClaimNotFinished(BaasError):
    """The key is locked by an unfinished claim (DICT's EntryLockedByClaim, ClaimAlreadyExistsForKey):
    it cannot be deleted, nor claimed again, until the claim is over."""

    status, code, title = 400, "PIX000072", "Pix Key Claim Non Finished"
    description = "A chave pix {pix_key} possui um pedido de portabilidade ou reivindicação não finalizado."


class ClaimNotFound(BaasError):
    status, code, title = 404, "PIX000034", "Claim Request not found"
    description = "Claim Request not found for key: {claim_request_key}."
    translation = "Pedido de portabilidade não encontrado para a chave: {claim_request_key}."


class ClaimActionNotAllowedForDonator(BaasError):
    """A claimant's action (two-step validation, the other bank's answer) on a claim where the
    caller is the donor."""

    status, code, title = 400, "PIX000035", "Claim request action not allowed for donator"
    description = "Claim request {claim_request_key}: action not allowed for the donator."
    translation = "Pedido de portabilidade {claim_request_key}: ação não permitida para o doador."


class ClaimActionNotAllowedForClaimer(BaasError):
    """A donor's action (confirm, donor validation, completion) on a claim the caller made."""

    status, code, title = 400, "PIX000036", "Action not allowed for claimer"
    description = "Claim request {claim_request_key}: action not allowed for the claimer."
    translation = "Pedido de portabilidade {claim_request_key}: ação não permitida para o reivindicador."


class ClaimActionNotAllowedInStatus(BaasError):
    status, code, title = 400, "PIX000046", "Portability action not allowed in current status"
    description = "Claim request {claim_request_key}: action not allowed in status {status}."
    translation = "Pedido de portabilidade {claim_request_key}: ação não permitida no status {status}."


class ClaimTypeInconsistent(BaasError):
    """Sandbox code (DICT's ClaimTypeInconsistent; the provider documents none): a random key, or a
    CPF/CNPJ of another person, cannot be claimed."""

    status, code, title = 400, "DCT000001", "Claim type inconsistent"
    description = "Pix key {pix_key} cannot be claimed: {reason}."
    translation = "A chave pix {pix_key} não pode ser reivindicada: {reason}."


class ClaimKeyNotFound(BaasError):
    """Sandbox code (DICT's ClaimKeyNotFound): nobody holds the key: register it instead."""

    status, code, title = 400, "DCT000002", "Claim key not found"
    description = "Pix key {pix_key} is not registered in DICT: register it instead of claiming it."
    translation = "A chave pix {pix_key} não está registrada no DICT: registre-a em vez de reivindicá-la."


class ClaimReasonNotAllowed(BaasError):
    """Sandbox code (DICT's InvalidReason): a reason DICT does not allow this role for this type."""

    status, code, title = 400, "DCT000003", "Invalid reason"
    description = "Reason {reason} is not allowed to the {role} of an {claim_type} claim."
    translation = "O motivo {reason} não é permitido ao {role} de um pedido de {claim_type}."


class VerificationCodeRequired(BaasError):
    """Sandbox code: the donor cancels an ownership claim with the code of its validation."""

    status, code, title = 400, "DCT000004", "Verification code required"
    description = "Cancelling an ownership claim needs the verification_code of the donator's validation."
    translation = "Cancelar uma reivindicação de posse exige o verification_code da validação do doador."


class RateLimited(BaasError):
    """DICT's anti-scan bucket of the paying account is empty (ENTRIES_READ_USER_ANTISCAN)."""

    status, code, title = 429, "PIX000079", "Rate limit reached"
    description = "Rate limit reached when checking key in Bacen"
    translation = "Limite de consultas atingido ao consultar a chave no Bacen"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class KeyLimitReached(BaasError):
    status, code, title = 400, "PIX000014", "Maximum Number of Pix Keys in Use"
    description = "A conta {account_key} já atingiu o número máximo de chaves pix."


class KeyRequestNotFound(BaasError):
    status, code, title = 404, "PIX000008", "Pix Key Request not found"
    description = "Pix Key Request not found for key: {pix_key_request_key}."
    translation = "Pix Key Request não encontrada para a chave: {pix_key_request_key}."


class NotOwnerOfItem(BaasError):
    status, code, title = 403, "QIT000005", "Permission Validator Error"
    description = "Selected agent do not own this item."
    translation = "O agente selecionado não é dono do item."


class NoTwoStepValidation(BaasError):
    status, code, title = 400, "PIX000075", "Key request does not have validation"
    description = "Key request does not have two steps validation"
    translation = "Pedido de criação não possui validação de duas etapas"


class NotPendingValidation(BaasError):
    status, code, title = 400, "PIX000076", "Key Request Is Not Pending Validation"
    description = "Key request {pix_key_request_key}, is not pending validation."
    translation = "Pedido de criação {pix_key_request_key}, não está pendente de validação."


class CodeAlreadyVerified(BaasError):
    status, code, title, two_factor_shape = 403, "2FA000403", "Forbidden", True
    description = "Code already verified."
    translation = "Este código já foi utilizado."


class CodeExpired(BaasError):
    status, code, title, two_factor_shape = 410, "2FA000410", "Gone", True
    description = "Expired Code."
    translation = "Código de verificação expirado."


class WrongCode(BaasError):
    """Sandbox code, in the pattern of the platform's 2FA codes (2FA + HTTP status)."""

    status, code, title, two_factor_shape = 400, "2FA000400", "Bad Request", True
    description = "Invalid Code."
    translation = "Código de verificação inválido."


class TooManyWrongCodes(BaasError):
    """Sandbox code (2FA + HTTP status): the documents name none. The 5th wrong code of a request
    rejects it, so that a six-digit code cannot be found by trying them all."""

    status, code, title, two_factor_shape = 429, "2FA000429", "Too Many Requests", True
    description = "Too many wrong codes: the key request was rejected."
    translation = "Códigos de verificação inválidos demais: o pedido de criação foi rejeitado."


class TooManyResends(BaasError):
    """Sandbox code: the same as ``TooManyWrongCodes`` (one code per status), for the resends. The
    request stays open: its last code still works."""

    status, code, title, two_factor_shape = 429, "2FA000429", "Too Many Requests", True
    description = "Too many codes sent for this key request."
    translation = "Códigos de verificação enviados demais para este pedido de criação."


class ClaimTooManyWrongCodes(BaasError):
    """``TooManyWrongCodes`` of a claim: the claimant's claim fails; the donor's validation ends."""

    status, code, title, two_factor_shape = 429, "2FA000429", "Too Many Requests", True
    description = "Too many wrong codes for this claim request."
    translation = "Códigos de verificação inválidos demais para este pedido de portabilidade."


class ClaimTooManyResends(BaasError):
    status, code, title, two_factor_shape = 429, "2FA000429", "Too Many Requests", True
    description = "Too many codes sent for this claim request."
    translation = "Códigos de verificação enviados demais para este pedido de portabilidade."


class InvalidPixKey(BaasError):
    """A Pix key whose format the schema accepts but the DICT rules do not (check digits...)."""

    status, code, title = 400, "SBX000400", "Bad Request"
    description = "pix_key: {pix_key} {problem}"
    translation = "pix_key: {pix_key} {problem_pt}"

    def __init__(self, pix_key: str, problem: str, problem_pt: str) -> None:
        super().__init__(pix_key=pix_key, problem=problem, problem_pt=problem_pt)
        self.violations = [{"field": "pix_key", "message": f"{pix_key} {problem}"}]


class BankingAuthError(DomainError):
    """An error of the banking authentication API."""

    message: str = ""

    def __init__(self, **params: str) -> None:
        self.params = params
        super().__init__(self.render_message())

    def render_message(self) -> str:
        return self.message.format(**self.params)


class UnsupportedTypeProvider(BankingAuthError):
    status, code = 400, "EBAA0007"
    message = "Unsupported Type: ({type}) and Provider ({provider})"


class ProviderRejectedCredential(BankingAuthError):
    status, code = 400, "EBAA0018"
    message = "{provider} - API Invalid credential"


class ProviderUnavailable(BankingAuthError):
    status, code = 502, "EBAA0002"
    message = "Bad Gateway Error"


class ProviderTimeout(BankingAuthError):
    status, code = 504, "EBAA0003"
    message = "Gateway Timeout"


class ProviderConfigurationNotFound(BankingAuthError):
    status, code = 500, "EBAA0014"
    message = "{provider} - API configuration not found"


class EncryptedValueMismatch(BankingAuthError):
    status, code = 500, "EBAA0009"
    message = "Encrypted value error. Decrypt returned different value"


@functools.cache
def error_classes() -> dict[str, type[DomainError]]:
    """Every business error, by its code (the classes are fixed once imported: walked once). Two
    classes that share a code (``2FA000429``: too many wrong codes, too many resends) give one."""
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.code:
            found[cls.code] = cls
    return found


def template_fields(template: str) -> list[str]:
    """The names a message template fills in (``"{provider} - API …"`` -> ``["provider"]``)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]
