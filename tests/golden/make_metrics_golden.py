#!/usr/bin/env python3
"""Golden BLEU and chrF scores from sacreBLEU, for tests/metrics_sacrebleu_test.cc.

Each case is a small test set: reference translations of real UI messages
(the gettext catalogs under /usr/share/locale, read by the .mo reader below)
and one "system output" made from them by a seeded perturbation: perfect,
near-perfect, word drops, swaps, substitutions, truncations, empty lines,
garbage, another locale's translation, entities, casing, odd whitespace...
over Latin, Cyrillic, CJK, Arabic, Devanagari, Greek, Hebrew and Thai text,
1 to 200 sentences, one to three references. sacreBLEU (pip install
sacrebleu) scores every case with its defaults: corpus_bleu (13a, exp
smoothing), corpus_chrf (chrF2), chrF2++ (word_order=2) and chrF2 with
eps_smoothing=True.

Regenerate (from the repository root, with the python3 that has sacrebleu):

    python3 tests/golden/make_metrics_golden.py > tests/golden/metrics_cases.tsv

The sentences depend on the catalogs installed on the machine, so another
machine may draw other ones; the committed file is self-contained and is
what the test reads. The scores depend only on the file's texts:

    python3 tests/golden/make_metrics_golden.py --rescore tests/golden/metrics_cases.tsv

re-scores the committed texts with the installed sacreBLEU and prints one
"score" line per case (the test's live check uses it).

Format: UTF-8 lines of tab-separated fields. In text fields "\\\\", "\\t",
"\\n", "\\r" and "\\uHHHH" (for other control characters and U+0085, U+2028,
U+2029) stand for themselves, so every record is one line.

    # comment
    sacrebleu VERSION
    case NAME N_SENTENCES N_REFS
    s HYP REF_1 ... REF_N_REFS                      N_SENTENCES lines
    bleu SCORE MATCH_1..4 TOTAL_1..4 SYS_LEN REF_LEN
    chrf SCORE
    chrfpp SCORE
    chrf_eps SCORE
    end

Scores are Python's repr of the double (round-trips exactly).
"""

import glob
import os
import random
import struct
import sys

SEED = 20240607
LOCALE_DIR = "/usr/share/locale"


# ----------------------------------------------------------------------------
# Reading gettext catalogs.

def read_mo(path):
    """{msgid: msgstr} of one .mo file (singular forms, no context, no header)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 28:
        return {}
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0x950412DE:
        order = "<"
    elif magic == 0xDE120495:
        order = ">"
    else:
        return {}
    n, orig_at, trans_at = struct.unpack(order + "III", data[8:20])

    def entry(table, i):
        length, offset = struct.unpack(order + "II", data[table + 8 * i:table + 8 * i + 8])
        return data[offset:offset + length]

    raw = [(entry(orig_at, i), entry(trans_at, i)) for i in range(n)]
    charset = "utf-8"
    for original, translation in raw:
        if original == b"":
            for line in translation.decode("ascii", "replace").split("\n"):
                if "charset=" in line:
                    charset = line.split("charset=")[1].strip() or "utf-8"
    messages = {}
    for original, translation in raw:
        if original == b"" or b"\x04" in original:
            continue
        try:
            msgid = original.split(b"\0")[0].decode("utf-8")
            msgstr = translation.split(b"\0")[0].decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
        if msgstr and msgstr != msgid:
            messages[msgid] = msgstr
    return messages


_catalogs = {}


def catalog(lang):
    """All messages of one locale, over every domain (first domain wins)."""
    if lang not in _catalogs:
        merged = {}
        for path in sorted(glob.glob(os.path.join(LOCALE_DIR, lang, "LC_MESSAGES", "*.mo"))):
            for msgid, msgstr in read_mo(path).items():
                merged.setdefault(msgid, msgstr)
        _catalogs[lang] = merged
    return _catalogs[lang]


def usable(text):
    return 0 < len(text.strip()) <= 300


def aligned(rng, langs, count, keep=lambda texts: True):
    """`count` messages translated in every one of `langs`: lists per lang."""
    common = None
    for lang in langs:
        ids = {m for m, t in catalog(lang).items() if usable(t) and usable(m)}
        common = ids if common is None else common & ids
    pool = sorted(m for m in common if keep([catalog(l)[m] for l in langs]))
    if len(pool) < count:
        raise SystemExit(f"only {len(pool)} shared messages for {langs}, need {count}")
    chosen = rng.sample(pool, count)
    return [[catalog(lang)[m] for m in chosen] for lang in langs]


# ----------------------------------------------------------------------------
# Perturbations: each maps (rng, list of sentences) to a system output.

def per_words(fn):
    def apply(rng, sentences):
        return [" ".join(fn(rng, s.split())) for s in sentences]
    return apply


def drop_words(rate):
    return per_words(lambda rng, w: [x for x in w if rng.random() >= rate] or w[:1])


def swap_words(rate):
    def fn(rng, words):
        words = list(words)
        for i in range(len(words) - 1):
            if rng.random() < rate:
                words[i], words[i + 1] = words[i + 1], words[i]
        return words
    return per_words(fn)


def truncate(fraction):
    return per_words(lambda rng, w: w[:max(1, int(len(w) * fraction))])


def substitute(rate):
    def apply(rng, sentences):
        vocab = sorted({w for s in sentences for w in s.split()})
        return [" ".join(rng.choice(vocab) if rng.random() < rate else w for w in s.split())
                for s in sentences]
    return apply


def near_perfect(rng, sentences):
    out = []
    for s in sentences:
        words = s.split()
        if rng.random() < 0.2 and len(words) > 1:
            del words[rng.randrange(len(words))]
            out.append(" ".join(words))
        else:
            out.append(s)
    return out


def empty_some(rate):
    return lambda rng, sentences: ["" if rng.random() < rate else s for s in sentences]


def garbage(alphabet):
    def apply(rng, sentences):
        return [" ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
                         for _ in range(rng.randint(1, 12))) for _ in sentences]
    return apply


def typos(rate):
    def fn(rng, words):
        out = []
        for w in words:
            if len(w) > 2 and rng.random() < rate:
                i = rng.randrange(len(w) - 1)
                w = w[:i] + w[i + 1] + w[i] + w[i + 2:]
            out.append(w)
        return out
    return per_words(fn)


def repeat_words(rng, sentences):
    # Repeating words tests the clipping of n-gram counts.
    return [" ".join(w for x in s.split() for w in ([x, x] if rng.random() < 0.4 else [x]))
            for s in sentences]


def change_case(rng, sentences):
    return [" ".join(w.upper() if rng.random() < 0.3 else w.lower() for w in s.split())
            for s in sentences]


def tokenized_lowercased(rng, sentences):
    # What a tokenised, lower-cased system output looks like: " ." endings.
    out = []
    for s in sentences:
        for p in ",.!?;:()\"'":
            s = s.replace(p, f" {p} ")
        out.append(" ".join(s.lower().split()))
    return out


def html_entities(rng, sentences):
    out = []
    for s in sentences:
        s = s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        s = s.replace(">", "&gt;")
        if rng.random() < 0.5:
            s = "&amp;lt;b&amp;gt; " + s + " <skipped>"
        out.append(s)
    return out


def strip_punctuation(rng, sentences):
    table = {ord(c): None for c in ".,;:!?\"'()[]{}«»“”„…。、，！？：；「」"}
    return [s.translate(table) for s in sentences]


ODD_SPACES = ["\u00a0", "\u3000", "\u2009", "\u202f", "\t", "\x0b", "\x1f", "\u2028",
              "\u0085", "\u200b", "\ufeff", "  "]


def odd_whitespace(rng, sentences):
    # Python's whitespace (NBSP, ideographic space, U+001F, U+2028, U+0085)
    # separates words; U+200B and U+FEFF do not.
    out = []
    for s in sentences:
        words = s.split()
        out.append("".join(w + (rng.choice(ODD_SPACES) if i + 1 < len(words) else "")
                           for i, w in enumerate(words)) + rng.choice(["", " ", "\u3000", "\t"]))
    return out


def numbers(rng, sentences):
    # Digits next to "." "," and "-": the cases where 13a keeps or splits them.
    forms = ["1,000.5", "3-4", "v2.0", "1.", ",5", "10,000", "-7", "2-", "3.14,", "(42)",
             "12:30", "1/2", "$5.00", "50%", "a.b,c", "x-1", "9..", ".5"]
    return [" ".join(w if rng.random() < 0.7 else rng.choice(forms) for w in s.split())
            + " " + rng.choice(forms) for s in sentences]


def shuffled(rng, sentences):
    out = list(sentences)
    rng.shuffle(out)
    return out


def longer(rng, sentences):
    # Hypotheses longer than the references: ratio > 1, BP = 1.
    return [s + " " + " ".join(rng.sample(s.split(), min(3, len(s.split())))) for s in sentences]


def identity(rng, sentences):
    return list(sentences)


ALPHABETS = {
    "latin": "abcdefghijklmnopqrstuvwxyzéàüß.,!",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщьюяё",
    "cjk": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
}


# ----------------------------------------------------------------------------
# The cases.

def make_cases(rng):
    cases = []

    def add(name, refs, system, hyp_source=None):
        hyps = system(rng, hyp_source if hyp_source is not None else refs[0])
        cases.append((name, hyps, refs))

    def single(lang, n, keep=lambda t: True):
        return aligned(rng, [lang], n, lambda texts: keep(texts[0]))

    add("de_perfect", single("de", 60), identity)
    add("fr_near_perfect", single("fr", 100), near_perfect)
    add("es_word_drops", single("es", 80), drop_words(0.25))
    add("ru_swaps", single("ru", 120), swap_words(0.3))
    add("uk_substitutions", single("uk", 90), substitute(0.2))
    add("el_truncated", single("el", 70), truncate(0.6))
    add("zh_CN_empty_lines", single("zh_CN", 50), empty_some(0.3))
    add("ja_typos", single("ja", 40), typos(0.5))
    add("ko_near_perfect", single("ko", 30), near_perfect)
    add("ar_word_drops", single("ar", 60), drop_words(0.15))
    add("fa_garbage", single("fa", 25), garbage(ALPHABETS["arabic"]))
    add("hi_swaps", single("hi", 45), swap_words(0.5))
    add("mr_truncated", single("mr", 35), truncate(0.3))
    add("ne_substitutions", single("ne", 20), substitute(0.4))
    add("he_typos", single("he", 50), typos(0.3))
    add("th_empty_lines", single("th", 30), empty_some(0.5))
    add("pl_all_empty", single("pl", 12), lambda rng, s: [""] * len(s))
    add("de_single_sentence", single("de", 1), near_perfect)
    add("sv_single_word", single("sv", 1, lambda t: len(t.split()) == 1), identity)
    add("tr_long_200", single("tr", 200), drop_words(0.1))
    add("vi_repeated_words", single("vi", 60), repeat_words)
    add("it_case_changes", single("it", 60), change_case)
    add("nl_tokenized_lowercased", single("nl", 60), tokenized_lowercased)
    add("fr_entities", single("fr", 50, lambda t: any(c in t for c in "&\"<>")),
        html_entities)
    add("es_no_punctuation", single("es", 60), strip_punctuation)
    add("zh_TW_odd_whitespace", single("zh_TW", 40), odd_whitespace)
    add("ru_odd_whitespace", single("ru", 40), odd_whitespace)
    add("cs_numbers", single("cs", 60), numbers)
    add("de_multiline", single("de", 30, lambda t: "\n" in t.strip() or "-\n" in t),
        near_perfect)
    add("ja_multiline_raw", single("ja", 20, lambda t: "\n" in t), identity)
    add("ru_cyrillic_garbage", single("ru", 30), garbage(ALPHABETS["cyrillic"]))
    add("zh_CN_cjk_garbage", single("zh_CN", 30), garbage(ALPHABETS["cjk"]))
    add("en_GB_latin_garbage", single("en_GB", 30), garbage(ALPHABETS["latin"]))
    add("hu_shuffled", single("hu", 50), shuffled)
    add("fi_longer", single("fi", 50), longer)
    add("ko_short_messages", single("ko", 40, lambda t: len(t.split()) <= 2), identity)
    add("da_three_word_messages", single("da", 40, lambda t: len(t.split()) <= 3),
        drop_words(0.3))

    # Another locale's real translation as the system output.
    pt, pt_br = aligned(rng, ["pt", "pt_BR"], 80)
    cases.append(("pt_BR_hyp_vs_pt_ref", pt_br, [pt]))
    cases.append(("pt_BR_hyp_vs_pt_and_pt_BR_drops", drop_words(0.2)(rng, pt_br), [pt, pt_br]))
    es, pt, pt_br = aligned(rng, ["es", "pt", "pt_BR"], 100)
    cases.append(("es_hyp_vs_pt_and_pt_BR_refs", es, [pt, pt_br]))
    sr, sr_latin = aligned(rng, ["sr", "sr@latin"], 40)
    cases.append(("sr_latin_hyp_vs_sr_cyrillic_ref", sr_latin, [sr]))
    zh_cn, zh_tw, ja = aligned(rng, ["zh_CN", "zh_TW", "ja"], 60)
    cases.append(("zh_TW_hyp_vs_zh_CN_ja_refs", zh_tw, [zh_cn, ja]))
    de, de_swaps, de_subs = aligned(rng, ["de", "de", "de"], 70)
    cases.append(("de_three_refs_perturbed", typos(0.2)(rng, de),
                  [swap_words(0.3)(rng, de_swaps), de, substitute(0.3)(rng, de_subs)]))
    hi, mr = aligned(rng, ["hi", "mr"], 50)
    cases.append(("mr_hyp_vs_hi_ref_devanagari", mr, [hi]))
    el, ru = aligned(rng, ["el", "ru"], 25)
    cases.append(("ru_hyp_vs_el_ref_no_overlap", ru, [el]))
    uk, ru = aligned(rng, ["uk", "ru"], 60)
    cases.append(("ru_hyp_vs_uk_with_empty_refs", ru, [empty_some(0.2)(rng, uk)]))
    return cases


# ----------------------------------------------------------------------------
# File format.

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape(text):
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F or c in "\u0085\u2028\u2029":
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def unescape(text):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u":
            out.append(chr(int(text[i + 2:i + 6], 16)))
            i += 6
        else:
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[nxt])
            i += 2
    return "".join(out)


def read_cases(path):
    cases = []
    with open(path, encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    for line in lines:
        fields = line.split("\t")
        if fields[0] == "case":
            cases.append((fields[1], [], []))
        elif fields[0] == "s":
            name, hyps, refs = cases[-1]
            texts = [unescape(x) for x in fields[1:]]
            hyps.append(texts[0])
            if not refs:
                refs.extend([] for _ in texts[1:])
            for k, ref in enumerate(texts[1:]):
                refs[k].append(ref)
    return cases


def score(hyps, refs):
    import sacrebleu
    from sacrebleu.metrics import CHRF

    bleu = sacrebleu.corpus_bleu(hyps, refs)
    chrf = sacrebleu.corpus_chrf(hyps, refs)
    chrfpp = CHRF(word_order=2).corpus_score(hyps, refs)
    chrf_eps = CHRF(eps_smoothing=True).corpus_score(hyps, refs)
    return bleu, chrf, chrfpp, chrf_eps


def main():
    import sacrebleu

    if len(sys.argv) == 3 and sys.argv[1] == "--rescore":
        print(f"sacrebleu\t{sacrebleu.__version__}")
        for name, hyps, refs in read_cases(sys.argv[2]):
            bleu, chrf, chrfpp, chrf_eps = score(hyps, refs)
            print("\t".join(["score", name] + [repr(float(x.score))
                                               for x in (bleu, chrf, chrfpp, chrf_eps)]))
        return
    if len(sys.argv) != 1:
        raise SystemExit(__doc__)

    rng = random.Random(SEED)
    cases = make_cases(rng)
    out = sys.stdout
    out.write("# Golden BLEU/chrF from sacreBLEU: made by tests/golden/make_metrics_golden.py "
              "(see its docstring for the format); do not edit.\n")
    out.write(f"# python {sys.version.split()[0]}, seed {SEED}, {len(cases)} cases\n")
    out.write(f"sacrebleu\t{sacrebleu.__version__}\n")
    for name, hyps, refs in cases:
        assert all(len(r) == len(hyps) for r in refs), name
        out.write(f"case\t{name}\t{len(hyps)}\t{len(refs)}\n")
        for i, hyp in enumerate(hyps):
            out.write("\t".join(["s", escape(hyp)] + [escape(r[i]) for r in refs]) + "\n")
        bleu, chrf, chrfpp, chrf_eps = score(hyps, refs)
        out.write("\t".join(["bleu", repr(float(bleu.score))] + [str(x) for x in bleu.counts]
                            + [str(x) for x in bleu.totals]
                            + [str(bleu.sys_len), str(bleu.ref_len)]) + "\n")
        out.write(f"chrf\t{float(chrf.score)!r}\n")
        out.write(f"chrfpp\t{float(chrfpp.score)!r}\n")
        out.write(f"chrf_eps\t{float(chrf_eps.score)!r}\n")
        out.write("end\n")


if __name__ == "__main__":
    main()
