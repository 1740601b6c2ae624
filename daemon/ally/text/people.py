"""Context that says a capitalised name is a person, not a place ("Austin's house", "Me and Devon", "I'm Jordan").

Shared by the explicit pass (``explicit.py``) and the venue finder (``venues.py``), which ``explicit.py`` calls: it
lives below both so that neither imports the other back.
"""

from __future__ import annotations

import re

PERSON_AFTER = re.compile(r"['’]s\s+(?:house|place|room|car|mom|mum|dad|parents|birthday|party|wedding|phone"
                          r"|sister|brother|friend|girlfriend|boyfriend|wife|husband)\b")
PERSON_BEFORE = re.compile(r"(?i)(?:\b(?:me|I)\s+and|\b(?:i'm|i’m|im|i\s+am|this\s+is|name\s+is|call\s+me))\s+$")
