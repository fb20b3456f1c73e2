#!/usr/bin/env bash
# Rebuilds the committed seed corpora under fuzz/corpus/ from real inputs:
# the configs, a checkpoint of a one-step run, a corpus built, tokenized and
# sharded from a 20-line TSV, its SentencePiece model, and gettext catalogs.
# Only needed when a format changes; the fuzzers run from the committed
# files (fuzz/run_fuzzers.sh).
#   bash fuzz/make_seeds.sh [path/to/pipetrain]     # default build/launcher/pipetrain
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build/launcher/pipetrain}")
out=$PWD/fuzz/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1

# A bundle (fuzz/file_bundle.h): each file as a uint32 little-endian length
# and its bytes. "-" stands for an empty file; "bytes:HEX" for those bytes
# (a target's options byte); ":manifest" after a name drops a checkpoint
# manifest's seal (the target redoes it) and makes a format-1 manifest (a
# pipetrain from before the seal) format 2, so the seed reaches the same
# checks as a current one; ":shards_format1" turns a shard manifest.tsv into
# format 1 (no crc32c line), as shards written before the seal are.
bundle() {
  python3 - "$@" <<'PY'
import struct, sys
out, files = sys.argv[1], sys.argv[2:]
with open(out, "wb") as f:
    for name in files:
        data = b""
        if name.startswith("bytes:"):
            data = bytes.fromhex(name[6:])
        elif name != "-":
            path, _, op = name.partition(":")
            data = open(path, "rb").read()
            if op == "manifest":
                if len(data) >= 5 and data[-5] == 0x7d:
                    data = data[:-5]
                if data[:2] == b"\x08\x01":
                    data = b"\x08\x02" + data[2:]
            elif op == "shards_format1":
                lines = data.decode().splitlines(keepends=True)
                lines = [l for l in lines if not l.startswith("crc32c")]
                lines = ["format\tpipetrain-shards\t1\n" if l.startswith("format\t") else l
                         for l in lines]
                data = "".join(lines).encode()
        f.write(struct.pack("<I", len(data)) + data)
PY
}

rm -rf "$out"
mkdir -p "$out"/{spec,checkpoint_manifest,token_shards,mo,sentencepiece,tsv_corpus}

# spec: every shipped config, and one with --set lines the target applies.
cp configs/*.pbtxt "$out/spec/"
{ cat configs/tiny.pbtxt; printf '#set norm=pre_ln\n#set pipeline.schedule=1f1b\n#set steps=5\n'; } \
  >"$out/spec/tiny_with_overrides.pbtxt"

# A corpus from a few lines: the TSV seeds, the shards and the vocabulary.
cd "$work"
python3 - <<'PY'
rows = [("Good morning", "Guten Morgen", "Bonjour"), ("Thank you", "Danke", "Merci"),
        ("The house is red", "Das Haus ist rot", "La maison est rouge"),
        ("Open the file", "Öffne die Datei", "Ouvrez le fichier"),
        ("Save %s as", "%s speichern unter", "Enregistrer %s sous"),
        ("Quit", "Beenden", "Quitter"), ("Cancel", "Abbrechen", "Annuler"),
        ("Yes", "Ja", "Oui"), ("No", "Nein", "Non"),
        ("Print the page", "Seite drucken", "Imprimer la page")]
with open("pairs.tsv", "w") as f:
    f.write("src_lang\ttgt_lang\tsrc\ttgt\n")
    for en, de, fr in rows:
        f.write(f"en\tde\t{en}\t{de}\nen\tfr\t{en}\t{fr}\n")
# Lines each reader must report and skip, and the --src/--tgt half.
with open("malformed.tsv", "w") as f:
    f.write("en\tde\tonly three\n")
    f.write("xx-bogus\tde\tHello\tHallo\n")
    f.write("en\tpt_BR\tHello\tOlá\n")
    f.write("en\tde\t  spaces  \t\n")
with open("malformed.tsv", "ab") as f:
    f.write(b"en\tde\tbad \xff utf8\tkaputt\r\n")
    f.write(b"\n\x1e\nHello world\nGood night\n\x1e\nHallo Welt\nGute Nacht\n")
PY
"$bin" data build --out corpus --from-tsv pairs.tsv --dev_fraction 0.2 --test_fraction 0.2 >/dev/null
"$bin" data vocab --corpus corpus --vocab_size 300 >/dev/null
"$bin" data shard --corpus corpus >/dev/null 2>&1
cp pairs.tsv malformed.tsv "$out/tsv_corpus/"
cp corpus/spm.model "$out/sentencepiece/unigram_byte_fallback.model"
s=corpus/shards
grep -q '^format.pipetrain-shards.2$' $s/manifest.tsv ||
  { echo "make_seeds: $bin writes no format-2 shard manifest; build a current one" >&2; exit 1; }
# Options byte first (bit 0: the target reseals manifest.tsv after mutation);
# the seal check itself is fuzzed from the seeds with bit 0 clear, and the
# format-1 reader (shards from before the seal) from the last one.
files="$s/train.tokens $s/train.pairs $s/dev.tokens $s/dev.pairs $s/test.tokens $s/test.pairs"
bundle "$out/token_shards/tiny" bytes:01 $s/manifest.tsv $files
bundle "$out/token_shards/tiny_as_written" bytes:00 $s/manifest.tsv $files
bundle "$out/token_shards/manifest_only" bytes:00 $s/manifest.tsv
bundle "$out/token_shards/tiny_format1" bytes:00 $s/manifest.tsv:shards_format1 $files

# SentencePiece's own trainer, no byte fallback, with a precompiled charsmap
# of a few custom rules (the built-in nmt_nfkc one alone is 240 KB).
cut -f3,4 pairs.tsv | tr '\t' '\n' >spm.txt
printf 'FB01\t66 69\nFF34\t54\n3000\t20\nBD\t31 2044 32\n65 301\tE9\n' >rules.tsv
spm_train --input=spm.txt --model_prefix=rules --vocab_size=60 --model_type=unigram \
  --normalization_rule_tsv=rules.tsv --minloglevel=2 >/dev/null 2>&1
cp rules.model "$out/sentencepiece/custom_charsmap.model"

# A checkpoint of a one-step run of a 1+1-layer model with d_model 8.
"$bin" train --spec "$OLDPWD/configs/tiny.pbtxt" --set steps=1 --set checkpoint_interval=1 \
  --set d_model=8 --set ffn_dim=16 --set heads=2 --set encoder_layers=1 \
  --set decoder_layers=1 --set vocab_size=8 --set synthetic.alphabet=4 \
  --set tokens_per_batch=64 --set output_dir="$work/run" >/dev/null
c=$work/run/step_1
mapfile -t data_files < <(python3 - "$c/manifest.pb" <<'PY'
import sys
# The files' names in manifest order: field 7 (CheckpointFile), its field 1.
b = open(sys.argv[1], "rb").read()
def varint(b, i):
    v = s = 0
    while True:
        x = b[i]; i += 1; v |= (x & 0x7f) << s; s += 7
        if x < 0x80: return v, i
i = 0
while i < len(b) - 5:
    key, i = varint(b, i)
    field, wire = key >> 3, key & 7
    if wire == 0: _, i = varint(b, i)
    elif wire == 1: i += 8
    elif wire == 5: i += 4
    elif wire == 2:
        n, i = varint(b, i)
        if field == 7:
            sub, j = b[i:i + n], 0
            k, j = varint(sub, j); m, j = varint(sub, j)
            print(sub[j:j + m].decode())
        i += n
PY
)
paths=()
for f in "${data_files[@]}"; do paths+=("$c/$f"); done
# With data (CRCs recomputed: options bit 0) and manifest-only variants.
bundle "$out/checkpoint_manifest/step_1_with_data" bytes:01 "$c/manifest.pb:manifest" - "${paths[@]}"
bundle "$out/checkpoint_manifest/step_1_manifest_only" bytes:00 "$c/manifest.pb:manifest" -
cd "$OLDPWD"

# gettext: a real catalog, and small ones with plurals, contexts and the
# other byte order, compiled by msgfmt.
cp /usr/share/locale/pl/LC_MESSAGES/iso_3166-3.mo "$out/mo/pl_iso_3166-3.mo" 2>/dev/null || true
cat >"$work/ru.po" <<'PO'
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);\n"

msgid "Open"
msgstr "Открыть"

msgctxt "menu"
msgid "File"
msgstr "Файл"

msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d файл"
msgstr[1] "%d файла"
msgstr[2] "%d файлов"
PO
msgfmt -o "$out/mo/ru_plural_context.mo" "$work/ru.po"
msgfmt --endianness=big -o "$out/mo/ru_big_endian.mo" "$work/ru.po"
sed 's/charset=UTF-8/charset=ISO-8859-1/; s/Открыть/Ouvrir/; s/Файл/Fichier/' "$work/ru.po" |
  grep -v '^msgstr\[\|^msgid_plural\|^msgid "%d' >"$work/fr.po"
msgfmt -o "$out/mo/latin1.mo" "$work/fr.po" 2>/dev/null || true
du -ab "$out" | sort -k2
