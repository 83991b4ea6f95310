"""Voice queries on the fashion catalogue: 30 real product queries spoken by espeak-ng, transcribed
by Whisper tiny.en, biased towards the catalogue's words (CatalogueBiasing), searched; does the spoken
query reach the same top product as the typed one?

    python benchmarks/multimodal_voice.py --data ../shared/data/fashion --out runs/voice

Needs espeak-ng (Debian/Ubuntu: apt-get install -y espeak-ng). Writes OUT/voice.json and prints
agreement, the transcripts that differ from the typed query, and the real-time factor.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402

QUERIES = [
    "men black leather belt", "women blue jeans", "red summer dress", "white running shoes", "men analog watch",
    "women brown handbag", "black sunglasses", "men formal shirt", "grey track pants", "women black heels",
    "blue denim jacket", "green kurta", "men cotton socks", "women flip flops", "black backpack",
    "navy blue polo t-shirt", "men casual shoes", "pink top for women", "men grey sweatshirt", "brown leather wallet",
    "women sandals", "men shorts", "yellow t-shirt", "women perfume", "men deodorant",
    "black cap", "women white flats", "men blue trousers", "silk saree", "women leggings",
]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/fashion")
    parser.add_argument("--out", default="runs/voice")
    parser.add_argument("--mode", default="hybrid", choices=["keyword", "semantic", "hybrid"])
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-vocabulary", action="store_true", help="do not prompt Whisper with the catalogue's words")
    parser.add_argument("--no-correction", action="store_true", help="do not spell-correct transcripts against the catalogue's words")
    parser.add_argument("--no-biasing", action="store_true", help="search Whisper's best transcript, not the catalogue-biased choice")
    args = parser.parse_args()
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    from shelfwise.encoders.audio import SpeechConfig, SpeechRecognizer, vocabulary_prompt
    from shelfwise.encoders.text import TextEncoder
    from shelfwise.multimodal.voice import CatalogueBiasing, VoiceSearch
    from shelfwise.search.engine import SearchEngine

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("espeak-ng is not installed (Debian/Ubuntu: apt-get install -y espeak-ng)")
    folder, out = Path(args.data).resolve(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = pd.read_csv(folder / "images_manifest.csv", dtype=str, keep_default_na=False)
    items = pd.DataFrame({"item_id": photos["id"], "title": photos["productDisplayName"], "category": photos["articleType"]})
    print(header(f"{folder} — {len(items):,} products (the photo catalogue's names), {len(QUERIES)} spoken queries"))
    engine = SearchEngine(TextEncoder(), progress=False).fit(items)
    search = lambda queries, top: engine.search_many(queries, mode=args.mode, top=top)  # noqa: E731
    prompt = None if args.no_vocabulary else vocabulary_prompt(items["title"], items["category"])
    print(f"whisper prompt: {prompt!r}")
    corrector = None
    if not args.no_correction:
        from shelfwise.search.suggest import SpellingCorrector

        corrector = SpellingCorrector().fit(list(items["title"]) + list(items["category"]))
    biasing = None if args.no_biasing else CatalogueBiasing().fit(list(items["title"]) + list(items["category"]))
    recognizer = SpeechRecognizer(SpeechConfig(beam_size=args.beam_size, cpu_threads=args.threads, prompt=prompt))
    voice = VoiceSearch(search, recognizer, corrector, biasing)
    typed = search(QUERIES, 10)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for query, page in zip(QUERIES, typed):
            wav = Path(tmp) / "q.wav"
            subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(wav), query], check=True, capture_output=True)
            result = voice.search(wav, top=10)
            rows.append({
                "typed": query, "transcript": result.transcript.text, "searched": result.query, "same_words": normalise(result.query) == normalise(query),
                "typed_top": page.item_ids[:1], "voice_top": result.page.item_ids[:1],
                "same_top": page.item_ids[:1] == result.page.item_ids[:1],
                "overlap@10": len(set(page.item_ids) & set(result.page.item_ids)) / max(len(page.item_ids), 1),
                "audio_seconds": result.transcript.audio_seconds, "decode_seconds": result.transcript.decode_seconds,
            })
            print(f"{'=' if rows[-1]['same_top'] else 'x'} {query!r:32} -> {result.transcript.text!r} -> {result.query!r}", flush=True)
    audio, decode = sum(r["audio_seconds"] for r in rows), sum(r["decode_seconds"] for r in rows)
    summary = {
        "queries": len(rows),
        "same_top_result": sum(r["same_top"] for r in rows) / len(rows),
        "same_words": sum(r["same_words"] for r in rows) / len(rows),
        "overlap@10": sum(r["overlap@10"] for r in rows) / len(rows),
        "real_time_factor": decode / audio,
        "mean_decode_seconds": decode / len(rows),
        "mode": args.mode, "beam_size": args.beam_size, "threads": args.threads, "vocabulary_prompt": prompt is not None, "spelling_correction": corrector is not None, "biasing": biasing is not None,
    }
    (out / "voice.json").write_text(json.dumps({"summary": summary, "queries": rows}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"{time.time() - started:.0f}s")
