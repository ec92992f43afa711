"""The shipped prompt suite and users' prompt files."""

from __future__ import annotations

from collections import Counter

import pytest

from anybody.errors import UsageError
from anybody.evaluation.prompts import CUSTOM_GROUP, load_prompts, parse_prompts


def test_the_suite_has_four_groups_of_ten_attributes_and_two_person_prompts():
    prompts = load_prompts("suite")
    groups = Counter(prompt.group for prompt in prompts)
    assert groups == {"accessory": 10, "style": 10, "action": 10, "context": 10, "attribute": 10, "together": 5}
    assert all(prompt.people == (2 if prompt.group == "together" else 1) for prompt in prompts)
    assert len({prompt.text for prompt in prompts}) == len(prompts)
    assert prompts[0].with_names("alice") == "a photo of alice wearing a red baseball cap"
    assert prompts[0].neutral() == "a photo of a person wearing a red baseball cap"


def test_a_users_file_with_and_without_groups(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("# mine\na photo of {} at work\n\n[two]\n{} and {} dancing\n", encoding="utf-8")
    prompts = load_prompts(path)
    assert [(p.text, p.group, p.people) for p in prompts] == [("a photo of {} at work", CUSTOM_GROUP, 1),
                                                                 ("{} and {} dancing", "two", 2)]


@pytest.mark.parametrize("line", ["a photo of alice", "{} {} and {}", "a {name} photo of {}"])
def test_a_prompt_without_its_place_for_the_name_is_refused(line):
    with pytest.raises(UsageError, match="Line 1 of mine"):
        parse_prompts(line, "mine")


def test_a_missing_or_empty_prompt_file_is_refused(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_prompts(tmp_path / "none.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(UsageError, match="holds no prompt"):
        load_prompts(tmp_path / "empty.txt")
