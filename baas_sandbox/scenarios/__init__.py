"""Error scenarios: named rules, kept in YAML files, that shape chosen answers of the sandbox.

``model`` says what a rule is and decides (match, budget, latency); ``loader`` reads a file and
checks it against the spec; ``library`` holds the scenarios, which are active, and the hit counts;
``watcher`` reloads edited files. Applying a rule to a live request is the HTTP layer's job
(``baas_sandbox.http.scenarios``).
"""
