"""baas-sandbox: a contract-first, stateful local sandbox of banking APIs."""

__version__ = "0.1.0"
