"""Running the command line inside a test and reading what it wrote: one copy for every test module."""

import json
from pathlib import Path

from facemark import cli


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `facemark ARGV` run in this process (pytest's `capsys` captures the output)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_jsonl(path) -> list[dict]:
    """The records of a JSON Lines file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
