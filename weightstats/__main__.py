"""``python -m weightstats`` runs the command line."""

from weightstats.cli import main

if __name__ == "__main__":
    main()
