"""``python -m benchmarks.peers``: run the comparison (``--help`` for the options)."""

from benchmarks.peers.run import main

if __name__ == "__main__":
    main()
