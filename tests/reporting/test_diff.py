"""The word diff between the AI draft and the radiologist's text (medportal.reporting.diff)."""

from __future__ import annotations

import time

import pytest

from medportal.reporting.diff import MAX_UNITS, DiffPiece, is_changed, text_diff


def old_and_new(pieces: list[DiffPiece]) -> tuple[str, str]:
    old = "".join(p.text for p in pieces if p.op != "insert")
    new = "".join(p.text for p in pieces if p.op != "delete")
    return old, new


def test_an_inserted_word_is_the_only_insertion():
    pieces = text_diff("No acute findings.", "No acute intracranial findings.")

    assert pieces == [
        DiffPiece("equal", "No acute "),
        DiffPiece("insert", "intracranial "),
        DiffPiece("equal", "findings."),
    ]


def test_a_deleted_word_is_the_only_deletion():
    pieces = text_diff("Small left pleural effusion.", "Small pleural effusion.")

    changes = [p for p in pieces if p.op != "equal"]
    assert [(p.op, p.text.strip()) for p in changes] == [("delete", "left")]


def test_a_replaced_word_is_its_deletion_then_its_insertion():
    pieces = text_diff("The heart is enlarged.", "The heart is normal.")

    assert pieces == [
        DiffPiece("equal", "The heart is "),
        DiffPiece("delete", "enlarged"),
        DiffPiece("insert", "normal"),
        DiffPiece("equal", "."),
    ]


def test_punctuation_is_a_token_of_its_own():
    pieces = text_diff("No pleural effusion.", "No pleural effusion or pneumothorax.")

    assert pieces == [
        DiffPiece("equal", "No pleural effusion"),
        DiffPiece("insert", " or pneumothorax"),
        DiffPiece("equal", "."),
    ]


def test_words_changed_on_both_sides_of_one_space_read_as_one_change():
    pieces = text_diff("a small left effusion", "a large right effusion")

    assert pieces == [
        DiffPiece("equal", "a "),
        DiffPiece("delete", "small left"),
        DiffPiece("insert", "large right"),
        DiffPiece("equal", " effusion"),
    ]


def test_changes_in_two_paragraphs_stay_apart():
    pieces = text_diff("Lungs clear.\n\nHeart normal.", "Lungs hazy.\n\nHeart large.")

    assert [p.op for p in pieces] == ["equal", "delete", "insert", "equal", "delete", "insert", "equal"]
    assert pieces[3] == DiffPiece("equal", ".\n\nHeart ")


@pytest.mark.parametrize(
    "old, new",
    [
        ("", ""),
        ("", "All new text."),
        ("All of it goes.", ""),
        ("same text\nover lines", "same text\nover lines"),
        ("FINDINGS:\n  two  spaces\tand a tab", "FINDINGS:\n two spaces and\ta tab\n"),
        ("Ünïcode — ok", "Ünïcode – ok 😀"),
    ],
)
def test_the_pieces_give_back_both_texts_exactly(old, new):
    pieces = text_diff(old, new)

    assert old_and_new(pieces) == (old, new)
    assert is_changed(pieces) == (old != new)


def test_nothing_is_an_empty_list_and_no_change():
    assert text_diff("", "") == []
    assert not is_changed([])


def test_a_very_long_text_is_compared_by_lines_and_quickly():
    lines = [f"Line {n}: the quick brown fox jumps over the lazy dog." for n in range(2000)]
    old = "\n".join(lines)
    new = "\n".join(lines[:1000] + ["An inserted line."] + lines[1000:])
    assert len(old.split()) > MAX_UNITS

    started = time.monotonic()
    pieces = text_diff(old, new)

    assert time.monotonic() - started < 5
    assert [p for p in pieces if p.op != "equal"] == [DiffPiece("insert", "An inserted line.\n")]
    assert old_and_new(pieces) == (old, new)


def test_a_huge_text_without_line_breaks_is_one_change():
    old, new = "word " * 20_000, "other " * 20_000

    pieces = text_diff(old, new)

    assert pieces == [DiffPiece("delete", old), DiffPiece("insert", new)]
