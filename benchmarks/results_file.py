"""benchmarks/RESULTS.md is shared by several benchmarks: each owns one "## <Heading>" section."""

import os
import re

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def write_section(heading: str, text: str, path: str = RESULTS) -> None:
    """Replaces (or appends) the section that starts with '## <heading>', keeping every other one.

    `text` must start with that heading line."""
    if not text.startswith(f"## {heading}\n"):
        raise ValueError(f"section text must start with '## {heading}'")
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = text.rstrip("\n") + "\n\n"
    new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    with open(path, "w") as f:
        f.write(new.rstrip("\n") + "\n")
