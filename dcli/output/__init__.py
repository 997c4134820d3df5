"""Printers: what a command shows, chosen by -w/--write-out (simple = the reference tool's text)."""
