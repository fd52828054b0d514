"""What the pipeline's layers leave for each other in an ASGI request's scope."""

#: scope["state"] key: which scenario rule shaped the answer (for the journal).
APPLIED = "baas_sandbox.scenario"
#: scope["extensions"] key under which connexion's router leaves the operation it found.
ROUTING_CONTEXT = "connexion_routing"
#: scope["state"] key: the namespace's ``Sandbox`` the request works in (``http/namespace.py``).
SANDBOX = "baas_sandbox.sandbox"
