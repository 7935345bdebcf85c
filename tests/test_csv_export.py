"""The one CSV writer of every export: formula starts become text, numbers stay numbers."""

import csv
import io

import pytest

from medportal.csv_export import csv_cell, csv_line


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("rita", "rita"),
        ("1.2.840.10008", "1.2.840.10008"),
        ("-1", "-1"),
        ("+2.5", "+2.5"),
        ("-0.25e3", "-0.25e3"),
        ("", ""),
        (-4, -4),
        (None, None),
    ],
)
def test_cells_that_would_start_a_formula_are_text(value, cell):
    assert csv_cell(value) == cell


def test_a_line_reads_back_as_the_neutralised_cells():
    line = csv_line(["=cmd", 'a "quoted", value', 3, "\r\n-x"])
    assert list(csv.reader(io.StringIO(line))) == [["'=cmd", 'a "quoted", value', "3", "'\r\n-x"]]
