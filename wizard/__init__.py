"""flannel-wizard engine: answers, steps, changes, journal and the node boundary.

Nothing in this package imports Textual; the screens package sits on top of it.
"""

__version__ = "0.1.0"
