"""Adapters: storage, encryption, fixtures and the simulated providers."""
