"""The comparison harness below its command: the plan (:mod:`.plan`), the folder claims
(:mod:`.claims`) and one run (:mod:`.runs`); :mod:`solo_plugins.commands.sweep` orchestrates them
through :mod:`solo_plugins.engine`."""
