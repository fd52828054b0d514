"""YAML files that remember the line of every value, so a problem names file, line and field.

Fixtures and scenario files are edited by hand by QA and frontend engineers: a refusal must say
where, not dump a stack trace. They are also hostile input (a file dropped into a watched folder):
a file too large, nested too deep or whose aliases expand too far ("billion laughs") is refused
with a reason before it can take the memory, the CPU or the stack of the running sandbox.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import yaml

#: The limits of a hand-edited file; each far above what a real fixture or scenario needs.
#: Bytes a file may have (~3,000 fixture accounts; more come from ``POST /__admin/accounts``).
MAX_FILE_BYTES = 1024 * 1024
#: Levels of nested mappings and lists (the shipped files use 6).
MAX_DEPTH = 64
#: Values that aliases (``*name``) may add in all, each alias counting the values of what it names.
MAX_ALIAS_VALUES = 10_000


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
            text = _read_bounded(path).decode("utf-8")
            # Composed within the limits first: only then can a node graph be walked or loaded.
            node = yaml.compose(text, Loader=_BoundedLoader)
            self.data = yaml.safe_load(text)
        except OSError as exc:
            raise problem(path, None, "", f"cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise problem(path, None, "", f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except LimitExceeded as exc:
            raise problem(path, exc.line, "", exc.reason) from None
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


class LimitExceeded(yaml.YAMLError):
    """A file over one of the limits above, at ``line`` (1-based)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def _read_bounded(path: Path) -> bytes:
    """The file's bytes; ``LimitExceeded`` past ``MAX_FILE_BYTES``, without reading further."""
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise LimitExceeded(data.count(b"\n", 0, MAX_FILE_BYTES) + 1,
                            f"the file is larger than {MAX_FILE_BYTES:,} bytes (the limit for a YAML file)")
    return data


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe composer, stopped at the depth and alias limits.

    PyYAML has no such limits. Its composer is recursive (a file nested thousands of levels deep
    exhausts the stack) and shares an aliased node instead of copying it, so the node graph stays
    small while anything that walks it as a tree (the line index below, the schema checks) expands
    every alias: nine lines of nested aliases become a billion values. ``compose_node`` is where
    PyYAML composes each node, so each node is counted there, before its children exist. Only the
    composition is bounded: once it passed, ``yaml.safe_load`` builds the same, bounded, document.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliased = 0
        # The values of each composed node once expanded (aliases included), by id(): the node graph
        # keeps every node alive while the document is composed.
        self._values: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # else PyYAML's own error: an undefined alias
                values = self._values.get(id(target))
                if values is None:
                    raise LimitExceeded(line, f"the alias *{event.anchor} is inside the value it refers to "
                                              "(a recursive structure)")
                self._aliased += values
                if self._aliased > MAX_ALIAS_VALUES:
                    raise LimitExceeded(line, f"aliases expand to more than {MAX_ALIAS_VALUES:,} values "
                                              "(the limit for a YAML file)")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise LimitExceeded(line, f"values are nested more than {MAX_DEPTH} levels deep "
                                      "(the limit for a YAML file)")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._values[id(node)] = 1 + sum(self._values.get(id(child), 1) for child in _children(node))
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []
