"""The progress line: case n of N, the cases running, the counts so far, non-OK cases named."""

from __future__ import annotations

import io

from rawws.conformance.runner import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_terminal_a_line_per_group_and_per_non_ok_case() -> None:
    out = io.StringIO()
    progress = Progress(4, out, label="rawws: ")
    progress.start("1.1.1")
    progress.finish("1.1.1", "OK", "OK")
    progress.start("1.1.2")  # same group: no line
    progress.finish("1.1.2", "OK", "OK")
    progress.start("3.2")
    progress.finish("3.2", "NON-STRICT", "OK")
    progress.start("7.9.1")
    progress.finish("7.9.1", "FAILED", "WRONG CODE")
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("rawws: [0/4] 1.1.1")
    assert lines[1].startswith("rawws: [2/4] 3.2  OK 2")
    assert lines[2] == "  case 3.2: NON-STRICT, closing OK"
    assert lines[3].startswith("rawws: [3/4] 7.9.1  OK 2, NON-STRICT 1")
    assert lines[4] == "  case 7.9.1: FAILED, closing WRONG CODE"
    assert lines[5].startswith("rawws: 4/4 cases in ") and lines[5].endswith(
        ": OK 2, NON-STRICT 1, FAILED 1")


def test_on_a_terminal_one_line_is_rewritten() -> None:
    out = Terminal()
    progress = Progress(2, out)
    progress.start("1.1.1")
    progress.start("1.1.2")  # two running at once (--jobs)
    progress.finish("1.1.1", "OK", "OK")
    progress.finish("1.1.2", "INFORMATIONAL", "INFORMATIONAL")
    progress.close()
    text = out.getvalue()
    assert "\r\x1b[K[0/2] 1.1.1, 1.1.2" in text
    assert "\r\x1b[K[2/2] -  OK 1, INFORMATIONAL 1" in text
    assert text.endswith("2/2 cases in 0 s: OK 1, INFORMATIONAL 1\n")
