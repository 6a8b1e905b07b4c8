"""The `tfds` command line, runnable without apache-beam.

tensorflow-datasets 4.9.10's `tfds` CLI imports its `convert_format` command (which needs
apache-beam) and its `build_croissant` command (which needs mlcroissant) when it starts, so without
those packages EVERY command, `tfds build` included, dies with "No module named 'apache_beam'"
(tensorflow/datasets#5463). This project installs neither. This launcher is the same CLI with those
two commands replaced by stubs that say what they need; everything else (build, new, ...) is TFDS'
own code. From the repository root:

    .venv/bin/python -m data.tfds_cli build data/emodb --manual_dir=../shared/corpora/emodb \\
        --data_dir=DIR

With apache-beam and mlcroissant installed, the plain `tfds build ...` works the same way.
Why not plain `tfds`: apache-beam (2.77.0, the newest) needs protobuf < 7; the pin here is 7.36.2.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types


# CLI command modules that import optional packages at start-up: (module, its Args class, package).
_OPTIONAL_COMMANDS = (("convert_format", "Args", "apache-beam"),
                      ("croissant", "CmdArgs", "mlcroissant"))


def _stub_optional_commands() -> None:
    """Puts a stub in place of each command module whose optional dependency is missing."""
    for command, args_name, package in _OPTIONAL_COMMANDS:
        name = f"tensorflow_datasets.scripts.cli.{command}"
        try:
            __import__(name)
            continue
        except ModuleNotFoundError as e:
            if e.name is None or e.name.split(".")[0] in ("tensorflow_datasets", "data"):
                raise
        for loaded in [m for m in sys.modules if m.startswith(name)]:
            sys.modules.pop(loaded)

        def execute(self, command=command, package=package) -> None:
            raise SystemExit(f"tfds {command} needs {package}, which is not installed.")

        args = dataclasses.make_dataclass(
            args_name, [], namespace={"execute": execute,
                                      "__doc__": f"Unavailable: needs {package}."},
            frozen=True, kw_only=True)
        module = types.ModuleType(name)
        setattr(module, args_name, args)
        sys.modules[name] = module


def main() -> None:
    # Run as a file, this folder would be sys.path[0], making data/<name>/ importable as
    # top-level packages; the builders put the repository root on sys.path themselves.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    _stub_optional_commands()
    from tensorflow_datasets.scripts.cli import main as tfds_main

    tfds_main.launch_cli()


if __name__ == "__main__":
    main()
