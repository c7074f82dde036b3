"""pytest set-up shared by the unit tests and nbval.

Choose the device before anything imports triton: with no CUDA GPU, Triton must load in interpreter
mode (``TRITON_INTERPRET=1``) and the course uses its small CPU problem sizes.
"""

from collections import Counter

import course

course.configure()


def pytest_terminal_summary(terminalreporter):
    """End the run with one line per notebook nbval executed, so a log shows what ran."""
    outcomes: dict[str, Counter] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            path = getattr(report, "nodeid", "").split("::")[0]
            if path.endswith(".ipynb"):
                outcomes.setdefault(path, Counter())[outcome] += 1
    if not outcomes:
        return
    terminalreporter.write_sep("-", f"notebooks executed by nbval ({course.configure().device})")
    for path in sorted(outcomes):
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes[path].items()))
        terminalreporter.write_line(f"{path}: {counts} cells")
