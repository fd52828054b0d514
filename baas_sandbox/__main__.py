import sys

from baas_sandbox.cli import main

sys.exit(main())
