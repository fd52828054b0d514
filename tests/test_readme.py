"""The README's promises: every error code in its table is reproduced by a test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def table_codes() -> list[str]:
    section = README.split("## Error codes and how to trigger them", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z0-9]+)` \|", section, flags=re.MULTILINE)


def test_the_table_lists_every_documented_code():
    spec = (ROOT / "spec" / "openapi.yaml").read_text()
    documented = set(re.findall(r"code: ([A-Z0-9]{7,9})\b", spec))
    assert documented <= set(table_codes())


def test_every_code_in_the_table_is_asserted_by_a_test():
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_readme.py")
    untested = [code for code in table_codes() if f'"{code}"' not in tests and f"_{code}_" not in tests]
    assert not untested


def test_the_scenario_example_loads(tmp_path):
    from baas_sandbox.app import Specs
    from baas_sandbox.scenarios.loader import load_scenario

    section = README.split("## Error scenarios", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme-example.yaml"
    path.write_text(example)
    specs = Specs.load()
    product = [op["operationId"] for item in specs.product["paths"].values() for op in item.values()
               if isinstance(op, dict) and "operationId" in op]
    scenario = load_scenario(path, specs.contract, frozenset(product))
    assert [rule.name for rule in scenario.rules] == ["btg-down"]
    assert scenario.rules[0].effects() == ["latency", "respond 502 EBAA0002", "fault reset"]
