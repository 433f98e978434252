"""Command-line entry points (the only layer that knows Hydra and the file system)."""

from solo_plugins.console import quiet_import_warnings

quiet_import_warnings()  # the libraries' import-time warnings, which a command's user cannot act on
