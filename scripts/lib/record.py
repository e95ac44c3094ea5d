#!/usr/bin/env python3
"""Writes one run's report of scripts/bench.sh into a Markdown file as a section of its own.

    record.py FILE "ARGUMENTS" REPORT

The section is headed by the command line, the date, the commit and the machine, and sits
between two HTML comments that name the arguments; a later run with the same arguments
replaces it, and text outside any section (the prose around the tables) is kept as it is.
"""
import datetime
import os
import subprocess
import sys


def main():
    path, arguments, report = sys.argv[1:4]
    with open(report, encoding="utf-8") as f:
        body = f.read().strip("\n")
    begin = f"<!-- bench.sh {arguments} -->"
    end = f"<!-- end of bench.sh {arguments} -->"
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip() or "unknown"
    today = datetime.date.today().isoformat()
    heading = (
        f"`scripts/bench.sh {arguments}`, run {today} at commit {commit} "
        f"on {os.cpu_count()} cores:"
    ).replace("  ", " ")
    section = f"{begin}\n{heading}\n\n{body}\n{end}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    start = text.find(begin)
    if start >= 0:
        stop = text.find(end, start)
        if stop < 0:
            sys.exit(f"record.py: {path} opens a section for '{arguments}' and never ends it")
        text = text[:start] + section + text[stop + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(partial, path)
    print(f"bench: the report is in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
