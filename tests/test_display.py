"""File names shown on a terminal or in the window keep every byte and forge nothing."""
import os

from clipscape.models.display import printable, printable_name


def test_undecodable_bytes_are_escaped_not_lost():
    name = os.fsdecode(b"/photos/caf\xe9.jpg")
    assert printable(name) == "/photos/caf\\xe9.jpg"
    assert printable_name(name) == "caf\\xe9.jpg"


def test_control_characters_cannot_forge_lines_or_drive_the_terminal():
    text = printable("/p/a\nb\x1b[31m\tc.jpg")
    assert "\n" not in text and "\x1b" not in text and "\t" not in text
    assert text == "/p/a\\nb\\x1b[31m\\tc.jpg"


def test_plain_names_pass_through():
    assert printable_name("/p/Ünïcode ok.jpg") == "Ünïcode ok.jpg"
    assert printable_name("/") == "/"
