"""docs/walkthrough.md and the code agree: every diagram in the document is what the code
produces now (``python -m rawws.tools.walkthrough --write`` regenerates them)."""

from __future__ import annotations

from pathlib import Path

from rawws.tools.walkthrough import DOCUMENT, SEED, conversation, main, render, update


def test_the_document_shows_the_bytes_the_code_produces() -> None:
    document = DOCUMENT.read_text(encoding="utf-8")
    assert update(document, render()) == document, (
        "docs/walkthrough.md disagrees with the code: run "
        "python -m rawws.tools.walkthrough --write (and read the prose around what changed)")


def test_the_check_fails_when_one_byte_disagrees(tmp_path: Path) -> None:
    document = DOCUMENT.read_text(encoding="utf-8")
    copy = tmp_path / "walkthrough.md"
    copy.write_text(document.replace("  0       81 ", "  0       82 ", 1), encoding="utf-8")
    assert copy.read_text() != document
    assert main(["--check", "--document", str(copy)]) == 1
    assert main(["--write", "--document", str(copy)]) == 0
    assert copy.read_text() == document
    assert main(["--check", "--document", str(copy)]) == 0


def test_the_bytes_are_deterministic_and_come_from_the_injected_randomness() -> None:
    assert render() == render()
    ours = {step.name: step.data for step in conversation(SEED)}
    other = {step.name: step.data for step in conversation(SEED + 1)}
    # Keys and masks change with the seed; unmasked server frames do not.
    assert ours["request"] != other["request"] and ours["text"] != other["text"]
    assert ours["fragments"] == other["fragments"] == bytes.fromhex(
        "010348656c" "800a6c6f2c20636c69656e74")
    assert ours["close-echo"] == bytes.fromhex("880503e8627965")


def test_a_diagram_without_its_marker_is_an_error() -> None:
    import pytest

    document = DOCUMENT.read_text(encoding="utf-8")
    blocks = render()
    with pytest.raises(KeyError, match="missing"):
        update(document.replace("<!-- walkthrough:pong -->", "<!-- gone -->"), blocks)
    with pytest.raises(KeyError, match="does not make"):
        update(document, {k: v for k, v in blocks.items() if k != "pong"})
