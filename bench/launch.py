"""``python -m bench.launch [--keys N] serve [options]``: ``baas-sandbox serve``, with what the
benchmark needs around it and nothing changed inside it.

- ``--keys N``: the store holds N Pix keys before the server answers (``bench.filled``).

The CLI runs unchanged: ``create_app`` is wrapped, then ``baas_sandbox.cli.main`` is called with the
remaining arguments.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.launch")
    parser.add_argument("--keys", type=int, default=0)
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

    from baas_sandbox import cli

    return cli.main(cli_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
