"""The spoken commands: each phrase of the table does its move instead of being typed."""

from __future__ import annotations

import pytest

from medportal.dictation.commands import COMMANDS, transcript_operations


def insert(text: str, join: bool = False) -> dict:
    return {"op": "insert", "text": text, "join": join}


@pytest.mark.parametrize(
    ("spoken", "operations"),
    [
        ("the lungs are clear", [insert("the lungs are clear")]),
        ("the lungs are clear period", [insert("the lungs are clear"), insert(".", True)]),
        (
            "no effusion comma no pneumothorax",
            [insert("no effusion"), insert(",", True), insert("no pneumothorax")],
        ),
        (
            "normal heart next field normal chest",
            [insert("normal heart"), {"op": "next_field"}, insert("normal chest")],
        ),
        ("previous field", [{"op": "previous_field"}]),
        ("first new paragraph second", [insert("first"), insert("\n\n", True), insert("second")]),
        ("first new line second", [insert("first"), insert("\n", True), insert("second")]),
        ("left lobe scratch that right lobe", [insert("left lobe"), {"op": "scratch"}, insert("right lobe")]),
        ("is it stable question mark", [insert("is it stable"), insert("?", True)]),
        ("findings colon", [insert("findings"), insert(":", True)]),
        ("a semicolon b full stop", [insert("a"), insert(";", True), insert("b"), insert(".", True)]),
        # As a recogniser may write them: capitals, its own punctuation.
        (
            "Clear lungs. Period. Next Field,",
            [insert("Clear lungs."), insert(".", True), {"op": "next_field"}],
        ),
        ("", []),
    ],
)
def test_a_transcript_becomes_the_editor_operations(spoken, operations):
    assert transcript_operations(spoken) == operations


def test_every_command_of_the_table_is_recognised_alone():
    for phrase, operation in COMMANDS.items():
        assert transcript_operations(phrase) == [operation]


def test_a_word_of_a_command_alone_is_typed():
    assert transcript_operations("the next study") == [insert("the next study")]
    assert transcript_operations("scratch the field") == [insert("scratch the field")]
