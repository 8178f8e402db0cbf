"""Small complete device apps that embed ``edgernn.runtime`` (run with ``python -m``)."""
