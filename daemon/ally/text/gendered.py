"""Gendered group terms and possessives, and relatives that imply the author's age (issue 18).

"the women's changing room" → "the changing room", "the men's room" → "the restroom", "ladies' night" →
"friends' night", "a girl dad" → "a parent", "Me and my girlfriends" (female friends, not partners) → "Me and my
friends"; grandchildren say the author is older: "my grandkids" → "my young relatives".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .tokens import match_case

_POSS = r"(?:women|men|ladies|girls|boys|guys|gents|lads|mens|womens|gentlemen)(?:['’]s|['’])?"
_ROOM = re.compile(r"(?i)\b(" + _POSS + r")\s+(room|rooms)\b")
_SOCIAL = re.compile(r"(?i)\b(" + _POSS + r")\s+(night|nights|night\s+out|trip|weekend|day|brunch|lunch|dinner"
                     r"|getaway|holiday|vacation|chat|group\s+chat)\b")
_MODIFIER = re.compile(r"(?i)\b(" + _POSS + r")(?=\s+(?:changing|locker|bathroom|restroom|toilets?|loos?|showers?"
                       r"|team|league|section|department|clothing|clothes|wear|shoes|sizes?|cut|fit|health|clinic"
                       r"|ward|shelter|group|club|choir|soccer|football|rugby|hockey|basketball|cricket|tennis"
                       r"|golf|singles|doubles|final|event|race|division|category|cup|retreat|circle|prison|college"
                       r"|school)\b)")
_PARENT_OF = re.compile(r"(?i)\b(girl|boy|twin|dog|cat|boy\s+and\s+girl)\s+(dad|mom|mum|mama|papa|father|mother)\b")
_GRAND = re.compile(r"(?i)\b(grandkids?|grandchild(?:ren)?|grandsons?|granddaughters?|grandbab(?:y|ies)"
                    r"|great-grand(?:kids?|children|child|sons?|daughters?))\b")
_FRIENDS = re.compile(r"(?i)\b(my|our|her|the|with|and)\s+(girlfriends|boyfriends)\b")


def find(text: str, granularity: str) -> Iterable[tuple[int, int, str, str]]:
    """(start, end, category, new) for each gendered group term or age-revealing relative."""
    if granularity == "coarse":
        return
    for m in _ROOM.finditer(text):
        yield m.start(), m.end(), "gender", match_case(m.group(1), "restroom" + ("s" if m.group(2)[-1] == "s" else ""))
    for m in _SOCIAL.finditer(text):
        yield m.start(1), m.end(1), "gender", match_case(m.group(1), "friends'")
    for m in _MODIFIER.finditer(text):
        s, e = m.start(1), m.end(1)
        e += 1 if text[e:e + 1] == " " else 0
        yield s, e, "gender", ""
    for m in _PARENT_OF.finditer(text):
        kind = m.group(1).lower()
        new = "pet parent" if kind in ("dog", "cat") else "parent"
        yield m.start(), m.end(), "gender", match_case(m.group(1), new)
    for m in _GRAND.finditer(text):
        w = m.group(1).lower()
        plural = w.endswith(("s", "ren", "ies"))
        new = "young relatives" if plural else "young relative"
        yield m.start(), m.end(), "kinship", match_case(m.group(1), new)
    for m in _FRIENDS.finditer(text):
        yield m.start(2), m.end(2), "gender", match_case(m.group(2), "friends")
