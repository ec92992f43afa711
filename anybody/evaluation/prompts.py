"""The prompt suite: anybody's own (shipped as `prompts.txt`) or a user's file in the same format.

One prompt a line, `{}` where the identity's name goes (two `{}` for two identities learned together),
`[group]` lines starting a group, `#` comments. Plain text, no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from anybody.errors import UsageError

SUITE = "suite"  # --prompts suite: the shipped prompts
CUSTOM_GROUP = "custom"  # the group of prompts before any [group] line
TOGETHER_GROUP = "together"


@dataclass(frozen=True)
class Prompt:
    text: str  # with one `{}` per person
    group: str

    @property
    def people(self) -> int:
        return self.text.count("{}")

    def with_names(self, *names: str) -> str:
        return self.text.format(*names)

    def neutral(self, class_phrase: str = "a person") -> str:
        """The prompt with "a person" for every name: the text CLIP-T compares the image with."""
        return self.text.format(*([class_phrase] * self.people))


def load_prompts(source: str | os.PathLike[str] = SUITE) -> list[Prompt]:
    """The shipped suite (`"suite"`) or a user's prompt file; a UsageError for a file that cannot be used."""
    if str(source) == SUITE:
        return parse_prompts(resources.files("anybody.evaluation").joinpath("prompts.txt").read_text("utf-8"),
                             "the shipped suite")
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"The prompt file {path} does not exist",
                         f"Give a text file with one prompt a line and {{}} where the name goes, or --prompts {SUITE}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"The prompt file {path} is not UTF-8 text", "Save it as UTF-8") from error
    return parse_prompts(text, str(path))


def parse_prompts(text: str, origin: str) -> list[Prompt]:
    prompts, group = [], CUSTOM_GROUP
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip() or CUSTOM_GROUP
            continue
        people = line.count("{}")
        if people not in (1, 2) or line.replace("{}", "").count("{") or line.replace("{}", "").count("}"):
            raise UsageError(f"Line {number} of {origin} has {people} '{{}}' ({line!r}); a prompt needs one "
                             "'{}' where the name goes, or two for two people, and no other braces",
                             "Write for example: a photo of {} on a beach")
        prompts.append(Prompt(line, group))
    if not prompts:
        raise UsageError(f"{origin} holds no prompt", "Write one prompt a line, with {} where the name goes")
    return prompts
