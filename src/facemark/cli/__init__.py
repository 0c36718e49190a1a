"""The command line, `facemark VERB ARGS`: the parser (main) and one runner per verb (predict, video, chips),
with the output checks and sharding they share."""

from facemark.cli.main import _builtin_models, build_parser, main

__all__ = ["build_parser", "main", "_builtin_models"]
