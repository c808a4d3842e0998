"""Every ```rust block in tutorials/NN-*.md must be code from that chapter's
example, so the prose cannot drift from the code CI runs. A chapter names
its example on its "> Example: [`examples/NAME.rs`]" line (chapters 8-11,
dasHV's HV-03..07, use the exact names their issue gave: hv03_http_server
and so on); without one, it is examples/tutorialNN_*.rs.

    python3 tests/check_tutorial_snippets.py

A block is compared line by line with the example, ignoring indentation and
blank lines; a line that is just `// ...` marks an elision, so the parts
around it must appear in order but need not be adjacent. Prints one line
per chapter and exits 1 on the first block that is not in its example.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ELISION = "// ..."


def normalize(lines):
    return [l.strip() for l in lines if l.strip()]


def find(haystack, needle, start):
    """Index just after the first contiguous occurrence of needle at or after start."""
    for i in range(start, len(haystack) - len(needle) + 1):
        if haystack[i : i + len(needle)] == needle:
            return i + len(needle)
    return None


def main():
    chapters = sorted((ROOT / "tutorials").glob("[0-9][0-9]-*.md"))
    if not chapters:
        print("no tutorial chapters found")
        return 1
    bad = 0
    for md in chapters:
        num = md.name[:2]
        named = re.search(r"^> Example: \[`(examples/[a-z0-9_]+\.rs)`\]", md.read_text(), re.M)
        if named:
            examples = [p for p in [ROOT / named.group(1)] if p.exists()]
        else:
            examples = list((ROOT / "examples").glob(f"tutorial{num}_*.rs"))
        if len(examples) != 1:
            print(f"FAIL {md.name}: wanted one examples/tutorial{num}_*.rs, found {examples}")
            bad += 1
            continue
        code = normalize(examples[0].read_text().splitlines())
        blocks = re.findall(r"```rust[^\n]*\n(.*?)```", md.read_text(), re.S)
        bad_before = bad
        for n, block in enumerate(blocks, 1):
            segments, current = [], []
            for line in block.splitlines():
                if line.strip() == ELISION:
                    segments.append(current)
                    current = []
                else:
                    current.append(line)
            segments.append(current)
            pos = 0
            for seg in map(normalize, segments):
                if not seg:
                    continue
                end = find(code, seg, pos)
                if end is None:
                    print(f"FAIL {md.name}: rust block {n} is not in {examples[0].name} (in order):")
                    print("    " + "\n    ".join(seg))
                    bad += 1
                    break
                pos = end
        if bad == bad_before:
            print(f"ok   {md.name}: {len(blocks)} rust blocks found in {examples[0].name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
