"""YAML files that remember the line of every value, so a problem names file, line and field.

Fixtures and scenario files are edited by hand by QA and frontend engineers: a refusal must say
where, not dump a stack trace.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import yaml


class FileProblem(Exception):
    """A hand-edited file is malformed: ``<file>:<line>: <field>: <problem>``.

    One exception may carry several problems (``problems``, one line each in its message): someone
    fixing a file wants every mistake at once, not one per start-up."""

    def __init__(self, path: Path, line: int | None, field: str, problem: str) -> None:
        self.path, self.line, self.field, self.problem = path, line, field, problem
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
        self.problems: list[FileProblem] = [self]

    @classmethod
    def several(cls, problems: list["FileProblem"]) -> "FileProblem":
        """One exception of this class for ``problems`` (at least one): the first's location, every
        problem's line in the message."""
        first = problems[0]
        combined = cls(first.path, first.line, first.field, first.problem)
        combined.problems = [p for problem in problems for p in problem.problems]
        combined.args = ("\n".join(str(p) for p in combined.problems),)
        return combined


class YamlDocument:
    """A parsed YAML file and the line of each value, by its path (``("rules", 0, "match")``)."""

    def __init__(self, path: Path, problem: type[FileProblem] = FileProblem) -> None:
        self.path, self._problem = path, problem
        try:
            text = path.read_text(encoding="utf-8")
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except OSError as exc:
            raise problem(path, None, "", f"cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise problem(path, None, "", f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise problem(path, mark.line + 1 if mark else None, "",
                          f"is not valid YAML ({getattr(exc, 'problem', exc)})") from None
        self.lines: dict[tuple, int] = {}
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, path: tuple) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                self._index(value_node, path + (key_node.value,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._index(item, path + (index,))

    def line_of(self, path: tuple) -> int | None:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def fail(self, path: tuple, problem: str) -> FileProblem:
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return self._problem(self.path, self.line_of(path), field, problem)

    def violations(self, schema: dict) -> list[tuple[tuple, str]]:
        """Every violation of ``schema``: (path of the value, message), in the file's order."""
        # 2020-12: it knows dependentRequired, which older drafts silently ignore. jsonschema-rs says
        # whether the file is valid; only a file that is not pays for importing jsonschema, which
        # words each problem (start-up time: a valid file is the rule).
        try:
            if jsonschema_rs.Draft202012Validator(schema).is_valid(self.data):
                return []
        except (TypeError, ValueError):  # YAML it cannot take (a non-string key): jsonschema decides
            pass
        import jsonschema

        found = []
        for error in jsonschema.Draft202012Validator(schema).iter_errors(self.data):
            # A oneOf/anyOf names its branches' problems in its context: the most relevant one.
            error = jsonschema.exceptions.best_match([error]) or error
            found.append((tuple(error.absolute_path), error.message))
        return sorted(found, key=lambda violation: (self.line_of(violation[0]) or 0, repr(violation[0])))

    def problems(self, schema: dict) -> list[FileProblem]:
        return [self.fail(path, message) for path, message in self.violations(schema)]

    def check(self, schema: dict) -> None:
        """Raise every violation of ``schema``, located, in one exception."""
        problems = self.problems(schema)
        if problems:
            raise self._problem.several(problems)
