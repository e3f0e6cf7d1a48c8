"""Print the chaos figures at the end of the session, where CI logs keep them."""

from __future__ import annotations

from chaos_harness import REPORTS
from pytest import TerminalReporter


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    for title, report in REPORTS:
        terminalreporter.section(f"chaos figures: {title}")
        terminalreporter.write_line(report.table())
