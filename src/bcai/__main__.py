"""`python -m bcai ...` is the same as the `bcai` console script."""

from bcai.cli import main

main()
