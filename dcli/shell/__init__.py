"""`dcli shell`: an interactive (prompt_toolkit) and scripted zkCli-style shell.

Modules: parse (zkCli's line splitting), app (the session, the dispatcher and the two loops),
completer (a pure function from text to suggestions), refresher (the background znode cache),
toolbar (prompt and bottom toolbar text), embedded (an in-process server for --embedded).
Nothing here is imported by `dcli --help`; prompt_toolkit is imported only by the REPL.
"""
