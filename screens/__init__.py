"""The Textual front end: one screen module per step, rendering what the engine inspects and plans."""
