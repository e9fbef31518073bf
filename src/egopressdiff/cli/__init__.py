"""The ``egopressdiff`` command. Each sub-command lives in its own module exposing
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; modules import heavy
libraries (torch, diffusers) only inside ``run`` so ``--help`` is instant."""
