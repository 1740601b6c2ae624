"""Text protection: hide the author's age, gender and region in outgoing text, keeping the meaning.

Parts, in TextAttack's decomposition: ``goals`` (what the surrogates must stop reading), ``constraints`` (what
may not change, meaning kept), ``transformations`` (which replacements a word may take), ``search`` (which
words, in which order); ``recipes`` composes them per level; ``explicit`` generalises stated facts first;
``protector`` is the entry point the CLI and the daemon use; ``eval`` measures it against held-out models.
"""

from .protector import create_protector

__all__ = ["create_protector"]
