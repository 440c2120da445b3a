#!/usr/bin/env python3
"""Writes a deterministic ~10 MB mixed-text corpus for the tokenizer benchmark (docs/BENCHMARKS.md).

Built from the repository's own sources and docs (English prose and C++ code) interleaved with
generated CJK, Cyrillic, emoji and number blocks, so no large file is committed.
Usage: bench/make_tokenizer_corpus.py OUT [SIZE_BYTES]
"""
import pathlib
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def repo_text():
    files = sorted(p for p in ROOT.glob("src/**/*") if p.suffix in (".cpp", ".h"))
    files += sorted(ROOT.glob("docs/*.md")) + [ROOT / "README.md"]
    return [p.read_text(encoding="utf-8", errors="replace") for p in files if p.is_file()]


def generated(rng):
    cjk = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(20, 80)))
    kana = "".join(chr(rng.randint(0x3041, 0x3096)) for _ in range(rng.randint(10, 40)))
    hangul = "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(rng.randint(10, 40)))
    cyr = " ".join("".join(chr(rng.randint(0x430, 0x44F)) for _ in range(rng.randint(2, 9)))
                   for _ in range(rng.randint(5, 20)))
    emoji = " ".join(chr(rng.choice([0x1F600, 0x1F680, 0x1F999, 0x2705, 0x1F30D]) + rng.randint(0, 30))
                     for _ in range(rng.randint(3, 12)))
    numbers = " ".join(str(rng.randint(0, 10**rng.randint(1, 9))) for _ in range(rng.randint(3, 10)))
    return "\n".join([cjk, kana + hangul, cyr, emoji, numbers]) + "\n"


def main():
    out = pathlib.Path(sys.argv[1])
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 10 * 1024 * 1024
    rng = random.Random(1234)
    sources = repo_text()
    parts, total = [], 0
    while total < size:
        chunk = rng.choice(sources) + generated(rng)
        parts.append(chunk)
        total += len(chunk.encode("utf-8"))
    data = "".join(parts).encode("utf-8")[:size]
    # Cut on a character boundary so the corpus stays valid UTF-8.
    out.write_bytes(data.decode("utf-8", errors="ignore").encode("utf-8"))


if __name__ == "__main__":
    main()
