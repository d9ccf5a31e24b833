"""``python -m g3an`` (and ``torchrun -m g3an``) run the ``g3an`` command."""

from g3an.cli import main

main()
