"""Use cases: each one a business operation over the store, raising domain errors."""
