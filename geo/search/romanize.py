"""Revised Romanization of Korean (국어의 로마자 표기법, 2000) for place names, so that "Gangnam", "Mapo-gu" or
"Seogyo-dong" find 강남구, 마포구 and 서교동.

The transcription follows the sound changes the official place names show (``tests/geo/search`` compares it with
the English names of the boundary files in the shared data): a final consonant before a silent ㅇ moves over
(liaison), and the nasal and lateral assimilations (종로 Jongno, 신림 Sillim, 왕십리 Wangsimni, 독립 Dongnip). As in
the official names, no sound change is written across the administrative suffix (마포-구, 목-동), and numbers stay
digits (역삼1동 Yeoksam 1-dong).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_INITIALS = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
_MEDIALS = ("a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi",
            "yu", "eu", "ui", "i")
# Final consonant as pronounced at the end of a syllable (index = jongseong), and the consonant it becomes when
# it moves to a following silent ㅇ (liaison).
_FINALS = ("", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p", "t", "t",
           "ng", "t", "t", "k", "t", "p", "t")
_LIAISON = ("", "g", "kk", "gs", "n", "nj", "nh", "d", "r", "lg", "lm", "lb", "ls", "lt", "lp", "lh", "m", "b", "bs",
            "s", "ss", "ng", "j", "ch", "k", "t", "p", "")
_SUFFIXES = ("특별시", "광역시", "시", "구", "군", "동", "가", "읍", "면", "리", "로", "길")
_SYLLABLE = re.compile(r"[가-힣]+")


def _assimilate(final: str, initial: str) -> tuple[str, str]:
    """The final and the next initial as pronounced together (nasal and lateral assimilation)."""
    if initial == "r":
        if final in ("n", "l"):
            return "l", "l"
        if final in ("ng", "m"):
            return final, "n"
        if final == "k":
            return "ng", "n"
        if final == "p":
            return "m", "n"
        if final == "t":
            return "n", "n"
        return final, "r" if final == "" else "n"
    if initial in ("n", "m"):
        if final == "k":
            return "ng", initial
        if final == "t":
            return "n", initial
        if final == "p":
            return "m", initial
        if final == "l" and initial == "n":
            return "l", "l"
    return final, initial


def _word(word: str) -> str:
    """One run of Hangul syllables, with the sound changes inside it."""
    parts: list[tuple[str, str, int]] = []  # initial, medial, final index
    for ch in word:
        code = ord(ch) - 0xAC00
        parts.append((_INITIALS[code // 588], _MEDIALS[(code % 588) // 28], code % 28))
    out: list[str] = []
    for i, (initial, medial, final_index) in enumerate(parts):
        if i > 0:
            prev_final = out.pop()
            if initial == "":  # liaison: the final consonant starts this syllable
                moved = _LIAISON[parts[i - 1][2]]
                prev_final, initial = ("ng", "") if moved == "ng" else ("", moved)
            else:
                prev_final, initial = _assimilate(prev_final, initial)
            out.append(prev_final)
        out.append(initial + medial)
        out.append(_FINALS[final_index])
    return "".join(out)


@lru_cache(maxsize=8192)
def romanize(name: str) -> str:
    """A Korean place name in Revised Romanization, e.g. '마포구' -> 'Mapo-gu', '역삼1동' -> 'Yeoksam 1-dong',
    '종로구' -> 'Jongno-gu'. Characters other than Hangul syllables are kept."""
    text = unicodedata.normalize("NFC", name.strip())
    suffix = ""
    for candidate in _SUFFIXES:
        if text.endswith(candidate) and len(text) > len(candidate):
            text, suffix = text[: -len(candidate)], candidate
            break
    base = _SYLLABLE.sub(lambda m: _word(m.group(0)), text)
    base = re.sub(r"(?<=[a-z])(?=\d)", " ", base)  # 역삼1 -> yeoksam 1
    out = base[:1].upper() + base[1:]
    if suffix:
        out += "-" + _word(suffix)
    return out


def latin_key(text: str) -> str:
    """Lower-case letters and digits only: 'Mapo-gu' -> 'mapogu', 'Yeoksam 1(il)-dong' -> 'yeoksam1dong'."""
    text = re.sub(r"\([a-z]+\)", "", text.lower())  # official names spell numbers out: 1(il)
    return re.sub(r"[^a-z0-9]", "", text)


def is_latin(text: str) -> bool:
    """Whether ``text`` is written in Latin letters (and digits, spaces, punctuation), with no Hangul."""
    return bool(re.search(r"[A-Za-z]", text)) and not re.search(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]", text)
