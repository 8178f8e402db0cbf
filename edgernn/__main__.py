from edgernn.cli import entry

entry()
