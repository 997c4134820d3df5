"""The command line: one Typer app per command group, joined in dcli.cli.main."""
