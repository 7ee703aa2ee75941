"""The ``drscreen`` sub-commands' parsers, one light module each (argparse only).

A module defines ``add_parser(subparsers)``; each parser's ``func`` imports the heavy code
(torch, OpenCV, the models) only when the command runs, so ``drscreen --help`` and
``drscreen COMMAND --help`` start at once. ``drscreen.cli.COMMANDS`` lists the modules.
"""
