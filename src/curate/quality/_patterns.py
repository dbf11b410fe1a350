"""Regexes and tables shared by the readability and language checks (Rust-regex syntax, for Polars).

Rust's regex engine has no back-references or look-around, so every pattern here is written without
them; that keeps all text features inside Polars' native string kernels.
"""

from __future__ import annotations

# Scripts whose words are not separated by spaces (a character is a unit) plus Hangul, which is.
CJK_CHARS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}ー々〆\x{3000}-\x{303F}\x{FF00}-\x{FFEF}"
CJK_LETTER = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
# Alphabetic scripts other than Latin. Greek is deliberately absent: α, β, π, θ are math in English.
OTHER_SCRIPTS: dict[str, str] = {
    "Cyrl": r"\p{Cyrillic}",
    "Arab": r"\p{Arabic}",
    "Hebr": r"\p{Hebrew}",
    "Deva": r"\p{Devanagari}",
    "Beng": r"\p{Bengali}",
    "Thai": r"\p{Thai}",
    "Geor": r"\p{Georgian}",
    "Armn": r"\p{Armenian}",
    "Taml": r"\p{Tamil}",
    "Telu": r"\p{Telugu}",
    "Gujr": r"\p{Gujarati}",
    "Knda": r"\p{Kannada}",
    "Mlym": r"\p{Malayalam}",
    "Ethi": r"\p{Ethiopic}",
}
OTHER_CHARS = "".join(OTHER_SCRIPTS.values())

# What is removed before language identification: code, LaTeX, URLs, GSM8K calculator annotations,
# think tags. Inline math follows pandoc's rule (no space just inside the dollars) so that currency
# ("$5 and $10") is not taken for a formula.
STRIP_BLOCKS = (
    r"(?s)[ \t]*(?:```.*?(?:```|\z)"
    r"|`[^`\n]*`"
    r"|\$\$.*?\$\$"
    r"|\\\[.*?\\\]"
    r"|\\\(.*?\\\)"
    r"|\\begin\{[^}]*\}.*?\\end\{[^}]*\}"
    r"|\$[^\s$](?:[^$\n]*?[^\s$\\])?\$"
    r"|<<[^>\n]*>>"
    r"|\[asy\].*?\[/asy\]"
    r"|https?://\S+)"
)
# Tokens that carry no language: LaTeX commands, digits, symbols and math punctuation ("x_1" -> "x").
# Both strip patterns eat the spaces before what they remove and are replaced by nothing, so that the
# cleaned text keeps one space between words and a word count is a count of spaces.
STRIP_TOKENS = r"[ \t]*(?:\\[A-Za-z]+|[\p{S}\p{Nd}_*/%#@&|~^=<>()\[\]{},]+)"

# Segments: CJK runs and runs of another non-Latin script are put on lines of their own (cut out of
# the sentence they sit in, so a Chinese word in English is its own segment), then the text is cut
# at sentence ends; each line is one segment.
SCRIPT_RUN = (
    rf"[{CJK_CHARS}]+(?:[^\S\n]*[{CJK_CHARS}]+)*"
    rf"|[{OTHER_CHARS}](?:[{OTHER_CHARS}\p{{M}}]|[^\S\n]|[\p{{P}}&&[^.!?;:\n]])*"
)
SENTENCE_END = r"[.!?;:]+(?:\s|\z)|</?think>"
HAN_KANA = r"[\p{Han}\p{Hiragana}\p{Katakana}]"

# Words common in English and rare in other Latin-script languages (no "a", "in", "to", "on", "me",
# "no", "so", "or", "die", "was", "will", "also", "do", "total", "note", ...). A sentence with enough
# of them is English without asking fastText; everything else goes to the model. A mistake here can
# only hide a foreign sentence, so the list favours precision; a missed English one just costs time.
EN_FUNCTION_WORDS = (
    "the",
    "and",
    "of",
    "that",
    "this",
    "with",
    "we",
    "us",
    "our",
    "then",
    "let",
    "is",
    "are",
    "be",
    "been",
    "were",
    "for",
    "from",
    "have",
    "has",
    "it",
    "its",
    "not",
    "but",
    "which",
    "what",
    "can",
    "if",
    "by",
    "there",
    "their",
    "they",
    "would",
    "should",
    "could",
    "must",
    "how",
    "when",
    "where",
    "need",
    "each",
    "now",
    "since",
    "because",
    "get",
    "gives",
    "give",
    "giving",
    "using",
    "use",
    "wait",
    "think",
    "check",
    "just",
    "maybe",
    "okay",
    "answer",
    "equals",
    "number",
    "times",
    "first",
    "next",
    "right",
    "you",
    "my",
    "he",
    "she",
    "his",
    "all",
    "one",
    "two",
    "three",
    "these",
    "those",
    "than",
    "into",
    "at",
    "as",
    "does",
    "know",
    "find",
    "value",
    "same",
    "means",
    "make",
    "sure",
    "only",
    "both",
    "sides",
    "such",
    "way",
    "ways",
    "here",
    "other",
    "another",
    "however",
    "hence",
    "therefore",
    "thus",
    "similarly",
    "suppose",
    "many",
    "much",
    "any",
    "some",
    "every",
    "again",
    "about",
    "after",
    "before",
    "between",
    "yields",
    "obtain",
    "gets",
    "got",
    "why",
    "who",
    "whose",
    "without",
    "through",
)
EN_GATE = r"(?i-u)\b(?:" + "|".join(EN_FUNCTION_WORDS) + r")\b"

# fastText labels that count as the target (dialect and macro-language labels of lid.176).
EQUIVALENT: dict[str, frozenset[str]] = {
    "zh": frozenset({"zh", "wuu", "yue", "gan"}),
    "no": frozenset({"no", "nb", "nn"}),
    "nb": frozenset({"no", "nb", "nn"}),
    "sr": frozenset({"sr", "hr", "bs", "sh"}),
    "hr": frozenset({"sr", "hr", "bs", "sh"}),
    "bs": frozenset({"sr", "hr", "bs", "sh"}),
}

# Script of a target language, for short non-Latin runs that fastText cannot judge. Unlisted: Latin.
TARGET_SCRIPT: dict[str, str] = {
    **{k: "Cyrl" for k in ("ru", "uk", "bg", "sr", "mk", "be", "kk", "ky", "mn", "tg", "tt", "ba")},
    **{k: "Arab" for k in ("ar", "fa", "ur", "ps", "ug", "ckb", "sd")},
    **{k: "Hebr" for k in ("he", "yi")},
    **{k: "Deva" for k in ("hi", "mr", "ne", "sa")},
    "bn": "Beng",
    "th": "Thai",
    "ka": "Geor",
    "hy": "Armn",
    "ta": "Taml",
    "te": "Telu",
    "gu": "Gujr",
    "kn": "Knda",
    "ml": "Mlym",
    "am": "Ethi",
    "zh": "Hani",
    "ja": "Jpan",
    "ko": "Kore",
}
