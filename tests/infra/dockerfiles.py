"""A small Dockerfile reader: instructions (continuations joined) grouped into build stages."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    """One ``FROM`` stage: its base image, alias and instructions as (keyword, arguments)."""

    image: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [value for key, value in self.instructions if key == keyword]


def read_stages(path: Path) -> list[Stage]:
    """The build stages of the Dockerfile at ``path``."""
    logical: list[str] = []
    buffer = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
            if match is None:
                raise ValueError(f"{path}: cannot read FROM {rest!r}")
            stages.append(Stage(match.group(1), match.group(2)))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def apt_installed(stage: Stage) -> list[str]:
    """Debian packages the stage's ``RUN`` instructions ``apt-get install`` (version pins dropped)."""
    packages: list[str] = []
    for run in stage.args("RUN"):
        for command in re.split(r"&&|\|\||;", run):
            words = shlex.split(command)
            while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
                words = words[1:]  # VAR=value before the command
            if len(words) < 2 or words[0] not in {"apt-get", "apt"} or "install" not in words:
                continue
            after = words[words.index("install") + 1 :]
            packages += [word.partition("=")[0] for word in after if not word.startswith("-")]
    return packages
