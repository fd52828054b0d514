"""``python -m bench.launch [--keys N] [--server-options] serve [options]``: ``baas-sandbox serve``, with
what the benchmark needs around it and nothing changed inside it.

- ``--keys N``: the store holds N Pix keys before the server answers (``bench.filled``).
- ``--server-options``: ``uvicorn.run`` also gets ``baas_sandbox.server.uvicorn_options()``, as the
  CLI will once they are wired into it, so their effect can be measured before that.

The CLI runs unchanged: ``create_app`` and ``uvicorn.run`` are wrapped, then
``baas_sandbox.cli.main`` is called with the remaining arguments.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.launch")
    parser.add_argument("--keys", type=int, default=0)
    parser.add_argument("--server-options", action="store_true")
    ours, cli_args = parser.parse_known_args(argv)

    if ours.keys:
        import baas_sandbox.app as app_module
        from bench.filled import fill

        create_app = app_module.create_app

        def create_and_fill(settings=None):
            app = create_app(settings)
            started = time.perf_counter()
            fill(app.sandbox, ours.keys)
            print(f"bench.launch: {ours.keys} keys stored in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)
            return app

        app_module.create_app = create_and_fill

    if ours.server_options:
        import uvicorn

        from baas_sandbox.server import uvicorn_options

        run = uvicorn.run

        def run_with_options(app, **kwargs):
            return run(app, **(kwargs | uvicorn_options()))

        uvicorn.run = run_with_options

    from baas_sandbox import cli

    return cli.main(cli_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
