"""Completion as a pure function: the text before the cursor -> suggestions.

    spec = CommandSpec.from_click(click_command)         # or build one by hand in tests
    complete("get -s /pa", root_spec, {"/": ["parent"]}.get)
    # -> [Suggestion(text="/parent", start=-3)]

`children_of(path)` gives the cached children of a znode, or None when they are not known yet
(the shell's children source then asks the background refresher to fetch them; completion never
waits on the network). Command names and flags are read from the click command objects, so a
command added later completes with no change here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

ChildrenOf = Callable[[str], Optional[list]]


@dataclass(frozen=True)
class Suggestion:
    text: str          # what replaces the word being typed
    start: int         # where that word starts, relative to the cursor (0 or negative)
    meta: str = ""     # a short description shown beside it


@dataclass
class CommandSpec:
    """What completion needs to know of one command (or group)."""

    help: str = ""
    flags: dict[str, bool] = field(default_factory=dict)     # flag -> takes a value
    takes_path: bool = False
    values: list[str] = field(default_factory=list)          # fixed words for its arguments
    subcommands: dict[str, CommandSpec] = field(default_factory=dict)

    @classmethod
    def from_click(cls, command) -> CommandSpec:
        import click

        spec = cls(help=(command.short_help or command.help or "").split("\n")[0].strip())
        help_names = set(getattr(command, "get_help_option_names", lambda ctx: [])(
            click.Context(command, info_name=command.name)) or [])
        for p in command.params:
            if isinstance(p, click.Option):
                for opt in [*p.opts, *p.secondary_opts]:
                    if opt not in help_names:
                        spec.flags[opt] = not p.is_flag and not p.count
            elif isinstance(p, click.Argument) and p.name == "path":
                spec.takes_path = True
        for name, sub in getattr(command, "commands", {}).items():
            spec.subcommands[name] = cls.from_click(sub)
        return spec


def current_word(before: str) -> tuple[list[str], str, int]:
    """(the complete words before the one being typed, the word being typed, how many characters
    of `before` it spans). Quotes group words as the shell's parser does, and are stripped."""
    words, cur, quote, started, raw_start = [], [], None, False, 0
    for i, ch in enumerate(before):
        if quote:
            if ch == quote:
                quote = None
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote, started = ch, True
        elif ch.isspace():
            if started or cur:
                words.append("".join(cur))
            cur, started, raw_start = [], False, i + 1
        else:
            cur.append(ch)
    return words, "".join(cur), len(before) - raw_start


# flags whose values are names the server knows: the children source answers these keys too
VALUE_SOURCES = {"--topic": "kafka:topics", "--group": "kafka:groups"}


def complete(before: str, root: CommandSpec, children_of: ChildrenOf) -> list[Suggestion]:
    words, word, raw_len = current_word(before)
    start = -raw_len
    if not words:
        return _names(root.subcommands, word, start)
    spec, rest = root, words
    while rest and rest[0] in spec.subcommands:
        spec, rest = spec.subcommands[rest[0]], rest[1:]
    if spec is root:
        return []                            # an unknown command: nothing to offer
    if spec.subcommands and not rest:
        return _names(spec.subcommands, word, start)
    if word.startswith("-"):
        used = set(rest)
        return [Suggestion(f, start) for f in sorted(spec.flags)
                if f.startswith(word) and f not in used]
    if rest and spec.flags.get(rest[-1]):
        source = VALUE_SOURCES.get(rest[-1])
        if source is None:
            return []                        # the value of a flag: free text
        return [Suggestion(n, start) for n in sorted(children_of(source) or []) if n.startswith(word)]
    if spec.values and not _positionals(rest, spec):
        return [Suggestion(v, start) for v in spec.values if v.startswith(word)]
    if spec.takes_path and (word.startswith("/") or (not word and not _positionals(rest, spec))):
        return _paths(word or "/", start if word else 0, children_of)
    return []


def _positionals(rest: list[str], spec: CommandSpec) -> list[str]:
    """The arguments already given that are not flags or flag values."""
    out, skip = [], False
    for w in rest:
        if skip:
            skip = False
        elif w.startswith("-") and w in spec.flags:
            skip = spec.flags[w]
        else:
            out.append(w)
    return out


def _names(commands: dict[str, CommandSpec], word: str, start: int) -> list[Suggestion]:
    return [Suggestion(n, start, commands[n].help) for n in sorted(commands, key=str.lower)
            if n.startswith(word)]


def _paths(word: str, start: int, children_of: ChildrenOf) -> list[Suggestion]:
    """`/pa` -> the children of `/` that start with `pa`, as full paths."""
    parent, _, prefix = word.rpartition("/")
    parent = parent or "/"
    kids = children_of(parent)
    if not kids:
        return []
    base = "" if parent == "/" else parent
    return [Suggestion(f"{base}/{k}", start) for k in sorted(kids) if k.startswith(prefix)]


SHELL_SPECS = {
    "help": CommandSpec(help="zkCli's command list"),
    "history": CommandSpec(help="The last 11 commands"),
    "redo": CommandSpec(help="Run command N again"),
    "printwatches": CommandSpec(help="Print watch events or not", values=["on", "off"]),
    "connect": CommandSpec(help="Open a new session: connect host:port"),
    "close": CommandSpec(help="Close the session"),
    "quit": CommandSpec(help="Close the session and leave"),
    "exit": CommandSpec(help="Close the session and leave"),
}


def shell_spec(zk_command, root_command) -> CommandSpec:
    """The shell's command tree: zk commands bare, the root app's groups by name, the shell's own."""
    root = CommandSpec()
    for name, cmd in root_command.commands.items():
        if name != "shell":
            root.subcommands[name] = CommandSpec.from_click(cmd)
    for name, cmd in zk_command.commands.items():
        root.subcommands[name] = CommandSpec.from_click(cmd)
    root.subcommands.update(SHELL_SPECS)
    return root
