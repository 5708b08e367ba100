"""The capacity finder: an open-model search of the arrival rate a target sustains."""
