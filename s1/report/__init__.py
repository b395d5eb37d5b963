"""make report: one page per run (report.md + self-contained report.html)."""
