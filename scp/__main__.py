"""``python -m scp`` is the ``mcn-scp`` command."""

from scp.cli import main

if __name__ == "__main__":
    main()
