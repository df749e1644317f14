"""``python -m sam3ops`` runs the command line."""

from sam3ops.cli import main

if __name__ == "__main__":
    main()
