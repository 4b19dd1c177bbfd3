"""``python -m infomorphic``: the same command line as ``infomorphic``."""

from .cli import main

if __name__ == "__main__":
    main()
