"""Transformations: the meaning-keeping substitutions that a word may undergo.

Each transformation proposes replacements for one word (``""`` deletes it). The search decides which to use;
constraints decide which are allowed. The tables here are written by hand (informal spellings, fillers):
they are rules, not data about anyone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .resources import BreameLists
from .tokens import Word, match_case

# Informal → standard spellings. Standard spelling is the strongest age cue in short posts, and writing the
# standard form keeps the meaning by construction.
NORMAL_FORMS: dict[str, str] = {
    "u": "you", "ur": "your", "r": "are", "ya": "you", "yall": "you all", "y'all": "you all", "im": "I'm",
    "i": "I", "ive": "I've", "dont": "don't", "cant": "can't", "wont": "won't", "didnt": "didn't",
    "doesnt": "doesn't", "isnt": "isn't", "wasnt": "wasn't", "arent": "aren't", "werent": "weren't",
    "couldnt": "couldn't", "wouldnt": "wouldn't", "shouldnt": "shouldn't", "havent": "haven't",
    "hasnt": "hasn't", "thats": "that's", "whats": "what's", "theres": "there's", "youre": "you're",
    "theyre": "they're", "gonna": "going to", "wanna": "want to", "gotta": "have to", "kinda": "kind of",
    "sorta": "sort of", "outta": "out of", "lotta": "lot of", "cuz": "because", "coz": "because",
    "cos": "because", "bc": "because", "b/c": "because", "tho": "though", "thru": "through", "ppl": "people",
    "pls": "please", "plz": "please", "thx": "thanks", "thanx": "thanks", "b4": "before", "2day": "today",
    "2nite": "tonight", "2morrow": "tomorrow", "tmrw": "tomorrow", "luv": "love", "nite": "night",
    "kk": "okay", "yeah": "yes", "yea": "yes", "yep": "yes", "yup": "yes",
    "nope": "no", "nah": "no", "dunno": "don't know", "gotten": "got", "alot": "a lot", "becuz": "because",
    "wat": "what", "wut": "what", "whatev": "whatever", "bday": "birthday", "b'day": "birthday",
    "pic": "picture", "pics": "pictures", "convo": "conversation",
    "prob": "probably", "probs": "probably", "def": "definitely", "totes": "totally", "obvi": "obviously",
    "whatevs": "whatever", "cuz'": "because", "sooo": "so", "soo": "so", "omg": "oh", "omfg": "oh",
    "ohh": "oh", "ooh": "oh",
}
# Words that carry tone, not content: deleting them keeps what is said.
FILLERS = frozenset({
    "lol", "lmao", "rofl", "haha", "hahaha", "hehe", "hehehe", "heh", "lolz", "um", "umm", "uh", "er", "erm",
    "like", "totally", "literally", "basically", "seriously", "really", "very", "so", "just", "pretty", "quite",
    "actually", "anyway", "anyways", "whatever", "ugh", "yay", "wow", "omg", "oh", "well", "damn", "freaking",
    "fucking", "bloody",
    # intensifiers and hedges (they colour a claim, they do not make it): among the surrogates' strongest
    # gender cues in short posts, with "so", "totally" and "really" above
    "absolutely", "definitely", "completely", "extremely", "incredibly", "terribly", "awfully", "honestly",
    "truly", "simply", "anyhow", "hmm", "hmmm", "meh", "aww", "awww", "woohoo", "yikes", "gosh",
})
_LAUGH = re.compile(r"(?:(?:ha|he|hi|ah|eh)h?){2,}|l+o+l+[lozs]*|lmf?a+o+|rofl+", re.IGNORECASE)

# Contractions written out. Writing "I am" for "I'm" keeps the meaning by construction and changes the
# character and word n-grams that style classifiers read (contraction use differs by age and gender).
# "'d" (had or would) and "'s" before a participle ("it's been": has) are ambiguous and left alone.
CONTRACTIONS: dict[str, str] = {
    "can't": "cannot", "won't": "will not", "shan't": "shall not", "i'm": "I am", "let's": "",
}
_SUFFIXES = (("n't", " not"), ("'re", " are"), ("'ve", " have"), ("'ll", " will"), ("'s", " is"))
_HAS_NEXT = frozenset({"been", "got", "gotten", "had", "done", "seen", "made", "taken", "gone"})
STOPWORDS = frozenset(["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "let", "me", "more", "most", "my", "myself", "no", "nor", "not", "of", "off", "on", "once", "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "with", "would", "you", "your", "yours", "yourself", "yourselves", "will", "shall", "may", "might", "must", "i'm", "i've", "it's", "that's", "don't", "can't", "won't", "isn't"])

# Gendered words never enter or leave through a synonym swap (WordNet's verb "mother" lists "father").
GENDERED = frozenset(["man", "men", "woman", "women", "boy", "boys", "girl", "girls", "guy", "guys", "gal", "gals", "lady", "ladies", "gentleman", "gentlemen", "he", "him", "his", "himself", "she", "her", "hers", "herself", "mother", "mothers", "father", "fathers", "mom", "moms", "mum", "mums", "dad", "dads", "mommy", "daddy", "son", "sons", "daughter", "daughters", "brother", "brothers", "sister", "sisters", "sis", "bro", "husband", "husbands", "wife", "wives", "boyfriend", "girlfriend", "king", "queen", "prince", "princess", "uncle", "aunt", "nephew", "niece", "grandma", "grandpa", "grandmother", "grandfather", "male", "female", "males", "females", "masculine", "feminine", "sir", "madam", "mr", "mrs", "ms", "miss", "dude", "chick", "bride", "groom"])

_ELONGATED = re.compile(r"(\w)\1{2,}")


# Informal or emotive words → the plain word for the same thing (hand-written; meaning kept).
REGISTER: dict[str, str] = {
    "awesome": "great", "anyways": "anyway", "stuff": "things", "kids": "children",
    "kid": "child", "maybe": "perhaps", "cute": "sweet", "adorable": "sweet", "gorgeous": "beautiful",
    "yummy": "tasty", "fave": "favorite", "fav": "favorite", "folks": "people", "till": "until",
}


@dataclass(frozen=True)
class Candidate:
    new: str  # replacement text ("" deletes the word)
    kind: str  # normalise | delete | synonym | spelling | expand | register | punctuation
    through: int = 0  # the edit also replaces this many characters after the word (a "!!!" run)

    @property
    def reason(self) -> str:
        return {"normalise": "informal spelling made standard", "delete": "filler word removed",
                "synonym": "word swapped for a synonym", "spelling": "regional spelling neutralised",
                "expand": "contraction written out", "register": "informal word made plain",
                "punctuation": "exclamation marks toned down"}[self.kind]


class Transformation:
    """Propose candidates for ``words[i]`` (the full word list gives the context)."""

    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        raise NotImplementedError


class Normalise(Transformation):
    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        w = words[i].text
        low = w.lower()
        out = []
        if low in NORMAL_FORMS:
            new = NORMAL_FORMS[low]
            new = new if new[0].isupper() else match_case(w, new)
            if new != w:
                out.append(Candidate(new, "normalise"))
        squeezed = _ELONGATED.sub(r"\1\1", w)
        if squeezed != w:
            single = _ELONGATED.sub(r"\1", w)
            # "sooooo" → "so", not "soo": the doubled form only where the single one is not a word ("cooool")
            z1, z2 = zipf(single.lower()), zipf(squeezed.lower())
            if z1 is not None and z1 >= (z2 or 0.0):
                out.append(Candidate(single, "normalise"))
            else:
                out += [Candidate(squeezed, "normalise"), Candidate(single, "normalise")]
        # shouted words keep their form (issue 18): no lower-casing of "REALLY"
        return out


# Fillers that are also content words: deletable only where the neighbours say they are fillers.
# "I like cats", "so I left", "so much", "a pretty dress", "I am not well" keep theirs.
_LIKE_AFTER = frozenset({"was", "were", "is", "am", "it's", "i'm", "he's", "she's", "they're", "we're", "you're",
                         "and", "like", "literally", "totally", "just", "um", "so", "but", "or"})
_SO_BEFORE_NOT = frozenset({"i", "we", "you", "he", "she", "they", "it", "that", "the", "a", "an", "my", "this",
                            "there", "what", "if", "far", "many", "much", "long", "to", "on", "yeah", "yes", "no"})
_PRETTY_BEFORE = frozenset({"good", "bad", "sure", "much", "cool", "nice", "well", "great", "big", "hard", "easy",
                            "funny", "tired", "happy", "sad", "fast", "close", "long", "sick", "busy", "bored",
                            "boring", "weird", "late", "early", "excited", "awesome", "amazing", "fun", "crazy",
                            "annoying", "stupid", "hot", "cold", "small", "quick", "serious", "interesting",
                            "scary", "far", "often", "soon", "fine", "okay", "ok", "decent", "random", "rough",
                            "tough", "slow", "sweet", "cute", "awful", "lucky", "normal", "simple", "clear"})


def _filler_in_context(words: Sequence[Word], i: int, low: str) -> bool:
    before = words[i - 1].lower if i > 0 else ""
    after = words[i + 1].lower if i + 1 < len(words) else ""
    if low == "like":
        return before in _LIKE_AFTER
    if low == "so":
        return i > 0 and bool(after) and after not in _SO_BEFORE_NOT
    if low == "pretty":
        return after in _PRETTY_BEFORE or (after.endswith("ly") and len(after) > 4)
    if low == "quite":
        return after not in ("a", "an", "the")  # "quite a bit" (a lot) is not "a bit"
    if low == "well":
        return False  # "well" as a filler and "well" as health or manner cannot be told apart from words alone
    return True


# Interjections and laughter: tone, which medium and high tone down. The other fillers ("just", "honestly",
# "really") are the author's voice: only high deletes them (issue 18).
TONE_FILLERS = frozenset({"lol", "lmao", "rofl", "haha", "hahaha", "hehe", "hehehe", "heh", "lolz", "um", "umm",
                          "uh", "er", "erm", "ugh", "omg", "hmm", "hmmm", "meh", "aww", "awww",
                          "yikes", "gosh"})  # not "yay", "wow": they say how the author feels about it


@dataclass
class DeleteFillers(Transformation):
    voice: bool = True  # also delete voice fillers ("just", "honestly"), not only interjections and laughter

    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        low = _ELONGATED.sub(r"\1\1", words[i].lower)
        if _LAUGH.fullmatch(words[i].text):
            return [Candidate("", "delete")]
        allowed = FILLERS if self.voice else TONE_FILLERS
        filler = low if low in allowed else words[i].lower if words[i].lower in allowed else None
        if filler is not None and _filler_in_context(words, i, filler):
            return [Candidate("", "delete")]
        return []


def expand_contraction(word: str, next_word: str = "") -> str | None:
    """``word`` with its contraction written out ("don't" → "do not"), or None."""
    low = word.lower().replace("’", "'")
    if "'" not in low:
        return None
    if low in CONTRACTIONS:
        new = CONTRACTIONS[low]
    else:
        for suffix, full in _SUFFIXES:
            if low.endswith(suffix) and len(low) > len(suffix):
                if suffix == "'s" and (next_word.lower() in _HAS_NEXT or low[:-2] not in _IS_HOSTS
                                       or next_word.lower().endswith(("ed", "en"))):  # "it's improved": has
                    return None  # "it's been" (has); "John's" (possessive)
                new = low[:-len(suffix)] + full
                break
        else:
            return None
    if not new:
        return None
    if new.startswith("i ") or new == "I am":
        return "I" + new[1:]
    return match_case(word, new) if not word.isupper() else new.upper()


_IS_HOSTS = frozenset({"it", "that", "there", "what", "he", "she", "who", "where", "here", "how", "this"})


class Register(Transformation):
    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        new = REGISTER.get(words[i].lower)
        return [Candidate(match_case(words[i].text, new), "register")] if new else []


class Exclamations(Transformation):
    """"great!!!" → "great!" or "great." (a "?" in the run is kept as one "?"). Exclamation marks are among
    the strongest style cues in short posts; the statement itself is unchanged."""

    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        run, w = words[i].after, words[i].text
        if not run:
            return []
        if "?" in run:
            return [Candidate(w + "?", "punctuation", len(run))]
        out = [Candidate(w + ".", "punctuation", len(run))]
        if len(run) > 1:
            out.insert(0, Candidate(w + "!", "punctuation", len(run)))
        return out


# A negative contraction before its subject is a question or a tag ("isn't it?", "Why don't you"): written out it
# is not English ("is not it?"). "it's" after these words is a misspelt possessive ("has it's benefits").
_SUBJECTS = frozenset({"i", "you", "he", "she", "it", "we", "they", "there", "that", "this", "u", "ya"})
_POSSESSIVE_SLOT = frozenset({"has", "have", "had", "of", "for", "with", "about", "on", "by", "lost", "lose", "in",
                              "to", "from", "at", "into", "get", "got", "find", "found", "and", "know", "all"})


class ExpandContractions(Transformation):
    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        nxt = words[i + 1].text if i + 1 < len(words) else ""
        low = words[i].lower.replace("’", "'")
        if low.endswith("n't") and nxt.lower() in _SUBJECTS:
            return []
        if low == "it's" and i > 0 and words[i - 1].lower in _POSSESSIVE_SLOT:
            return []
        new = expand_contraction(words[i].text, nxt)
        return [Candidate(new, "expand")] if new and new != words[i].text else []


# Word frequency (Zipf scale, wordfreq's English lists): core words (Zipf >= CORE_ZIPF: "now", "just", "new",
# "bad", "says", "looks", "seem" — 5.0 after reading `ally eval text` rewrites: "He looks her in the eyes" →
# "appears") are never swapped — their WordNet "synonyms" change the meaning or the register (now → today,
# just → merely, says → tells); a synonym must be common itself (>= MIN_ZIPF) and not much rarer than the word it
# replaces (nurse → nursemaid, stroller → pusher, reunion → reunification are refused).
CORE_ZIPF = 5.0
MIN_ZIPF = 3.5
MAX_ZIPF_DROP = 0.8
NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
                         "hundred thousand million first second third once twice single double".split())


def zipf(word: str) -> float | None:
    """wordfreq's Zipf frequency of ``word`` in English, or None when wordfreq is not installed."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:  # pragma: no cover - wordfreq is a dependency; without it the rule is off
        return None
    return zipf_frequency(word, "en")


def common_enough(old: str, new: str) -> bool:
    """The frequency rule above for swapping ``old`` for ``new``."""
    if old.lower() in NUMBER_WORDS or new.lower() in NUMBER_WORDS:
        return False
    zo, zn = zipf(old), zipf(new)
    if zo is None or zn is None:
        return True
    return zo < CORE_ZIPF and zn >= max(MIN_ZIPF, zo - MAX_ZIPF_DROP)


@dataclass
class Synonyms(Transformation):
    """WordNet synonyms with regular English inflection carried over (walked → strolled, cars → autos), from the
    word's dominant part of speech only (see ``load_wordnet_synonyms``) and only common ones (``common_enough``)."""

    table: dict[str, list[str]]
    per_word: int = 8
    banned: frozenset[str] = frozenset()  # never offered: British spellings ("neighbours" for "neighbors")

    def _lemmas(self, low: str) -> list[tuple[str, str]]:
        """(lemma, suffix rule) pairs that ``low`` may inflect (none when ``low`` is itself a lemma:
        "morning" is a noun, not "morn" + ing)."""
        out = [(low, "")]
        if low in self.table:
            return out
        if low.endswith("ies") and len(low) > 4:
            out.append((low[:-3] + "y", "s"))
        if low.endswith("es") and len(low) > 3:
            out.append((low[:-2], "s"))
        if low.endswith("s") and not low.endswith("ss") and len(low) > 3:
            out.append((low[:-1], "s"))
        if low.endswith("ed") and len(low) > 4:
            out += [(low[:-2], "ed"), (low[:-1], "ed")]
        if low.endswith("ing") and len(low) > 5:
            out += [(low[:-3], "ing"), (low[:-3] + "e", "ing")]
        return out

    @staticmethod
    def _inflect(lemma: str, rule: str) -> str:
        if rule == "s":
            if lemma.endswith("y") and lemma[-2:-1] not in "aeiou":
                return lemma[:-1] + "ies"
            return lemma + ("es" if lemma.endswith(("s", "x", "z", "ch", "sh")) else "s")
        if rule in ("ed", "ing") and re.search(r"[^aeiou][aeiou][bdgklmnprt]$", lemma) and len(lemma) <= 4:
            return ""  # get → getting / stop → stopped double the consonant: not handled, so not offered
        if rule == "ed":
            return lemma + ("d" if lemma.endswith("e") else "ed")
        if rule == "ing":
            return (lemma[:-1] if lemma.endswith("e") and not lemma.endswith("ee") else lemma) + "ing"
        return lemma

    @staticmethod
    def _same_inflection(low: str, new: str) -> bool:
        """WordNet lists "thinking" and "take" as nouns too ("thought", "takings"): without a part-of-speech
        tagger, a swap must at least keep the word's inflectional ending (-ing, -ed; no noun plural in "-ings"
        for a word that was not plural), or "been thinking" becomes "been thought"."""
        for suffix in ("ing", "ed"):
            if len(low) > 4 and low.endswith(suffix) != new.endswith(suffix):
                return False
        return not (new.endswith("ings") and not low.endswith("s"))

    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        w = words[i].text
        low = w.lower()
        if low in STOPWORDS or low in GENDERED or len(low) < 3 or not low.isalpha():
            return []
        seen, out = {low}, []
        for lemma, rule in self._lemmas(low):
            for syn in self.table.get(lemma, ()):
                new = self._inflect(syn, rule)
                if new and new not in seen and new not in GENDERED and (not rule or not syn.endswith(rule)) \
                        and low not in new and new not in low \
                        and self._same_inflection(low, new) and common_enough(low, new) \
                        and new not in self.banned and syn not in self.banned:
                    seen.add(new)
                    out.append(Candidate(match_case(w, new), "synonym"))
        return out[:self.per_word]


@dataclass
class SpellingVariants(Transformation):
    """Swap a British spelling for the American one (breame's pairs): American spelling is the majority variety
    of English on the web, so it hides a British author in the crowd; the reverse would only mark a post."""

    lists: BreameLists
    _a2b: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._a2b = {a: b for b, a in self.lists.british_to_american.items()}

    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        low = words[i].lower
        other = self.lists.british_to_american.get(low)
        return [Candidate(match_case(words[i].text, other), "spelling")] if other and other != low else []


@dataclass
class Compose(Transformation):
    parts: list[Transformation]

    def candidates(self, words: Sequence[Word], i: int) -> list[Candidate]:
        shouted = words[i].text.isupper() and len(words[i].text) > 1
        seen, out = set(), []
        for p in self.parts:
            if shouted and isinstance(p, (Synonyms, Register)):
                continue  # "it really ROCKS!" → "STONES": a shouted word keeps its form
            for c in p.candidates(words, i):
                if c.new not in seen and c.new != words[i].text:
                    seen.add(c.new)
                    out.append(c)
        return out
