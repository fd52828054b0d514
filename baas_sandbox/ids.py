"""Random identifiers (UUID version 4) for what the sandbox creates: key requests, events, messages,
tracking ids, random Pix keys.

``str(uuid.uuid4())`` asks the operating system for 16 random bytes, a system call per id; a key
creation makes five ids, and under load those calls showed in the profile. These ids name things,
they guard nothing (the verification codes and webhook secrets keep using ``secrets``), so they come
from Python's own generator, seeded once from the operating system.
"""

from __future__ import annotations

import os
import random

_generator = random.Random()  # its own generator: seeding the global one elsewhere changes nothing here
_random_bits = _generator.getrandbits
# A forked process (``--workers N``) would go on with its parent's state, and every worker would make
# the same ids (the same account and request keys in the one store they share): each child seeds
# again from the operating system, as ``random`` does for its global generator.
os.register_at_fork(after_in_child=_generator.seed)

_VERSION_4 = 0x4 << 76
_VARIANT_RFC_4122 = 0x2 << 62
_VERSION_MASK = ~(0xF << 76)
_VARIANT_MASK = ~(0x3 << 62)


def new_id() -> str:
    """A random UUID, formatted as ``str(uuid.uuid4())`` is (version 4, RFC 4122 variant)."""
    value = (_random_bits(128) & _VERSION_MASK & _VARIANT_MASK) | _VERSION_4 | _VARIANT_RFC_4122
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
