"""Tiny corpora in the exact on-disk layouts of LibriSpeech, TIMIT and Kaldi, made with espeak-ng.

Each builder synthesises a few short sentences with a few voices (one voice a speaker) and
writes them the way the real corpus ships: LibriSpeech as FLAC with ``.trans.txt`` files,
TIMIT as NIST SPHERE ``.WAV`` with ``.PHN``/``.WRD``/``.TXT``, Kaldi as recordings listed in
``wav.scp`` and cut by ``segments``. Everything takes well under a second a corpus.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import soundfile

from asr.synthesis import EspeakSynthesizer, Voice

RATE = 16000
SENTENCES = (
    "the cat sat down",
    "open the door",
    "good morning",
    "it's late now",
    "she had your dark suit",
    "all year",
)
VOICES = (
    Voice("en-us", "", 50, 160),
    Voice("en-us", "", 35, 150),
    Voice("en-gb-x-rp", "", 60, 170),
    Voice("en-us", "", 70, 165),
)


@cache
def speech(text: str, voice: Voice) -> np.ndarray:
    """``text`` spoken by ``voice``: float32 (S,) at 16 kHz (cached: the tests reuse it)."""
    return EspeakSynthesizer().synthesize(text, voice).waveform.numpy()


# --- LibriSpeech --------------------------------------------------------------------------------

# split -> [(speaker, chapter, voice index, sentence indices)]
LIBRISPEECH = {
    "train-clean-100": [("103", "1240", 0, (0, 1, 2)), ("1034", "121119", 1, (3, 1, 0))],
    "dev-clean": [("1272", "128104", 2, (0, 2))],
    "test-clean": [("1089", "134686", 3, (1, 3))],
}


def make_librispeech(root: Path, layout=None) -> dict[str, dict[str, str]]:
    """Write ``root/LibriSpeech/<split>/...``; returns ``{split: {utterance id: TEXT}}``."""
    written: dict[str, dict[str, str]] = {}
    for split, chapters in (layout or LIBRISPEECH).items():
        written[split] = {}
        for speaker, chapter, voice, sentences in chapters:
            folder = root / "LibriSpeech" / split / speaker / chapter
            folder.mkdir(parents=True, exist_ok=True)
            lines = []
            for number, sentence in enumerate(sentences):
                utterance_id = f"{speaker}-{chapter}-{number:04d}"
                text = SENTENCES[sentence].upper()
                wave = speech(SENTENCES[sentence], VOICES[voice])
                soundfile.write(folder / f"{utterance_id}.flac", wave, RATE, subtype="PCM_16")
                lines.append(f"{utterance_id} {text}\n")
                written[split][utterance_id] = text
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return written


# --- TIMIT --------------------------------------------------------------------------------------

# A TIMIT-style transcription of each sentence's words (61-phone labels).
TIMIT_WORDS = {
    "the": "dh ax",
    "cat": "kcl k ae tcl t",
    "sat": "s ae q",
    "down": "dcl d aw n",
    "open": "ow pcl p ix n",
    "door": "dcl d ao r",
    "good": "gcl g uh dcl",
    "morning": "m ao r n ix ng",
    "it's": "ih tcl s",
    "late": "l ey tcl t",
    "now": "n aw",
    "she": "sh iy",
    "had": "hv ae dcl d",
    "your": "y axr",
    "dark": "dcl d aa r kcl k",
    "suit": "s ux tcl t",
    "all": "ao l",
    "year": "y ih axr",
}
# part/dialect/speaker -> [(sentence file name, voice index, sentence index)]
TIMIT = {
    "TRAIN/DR1/FCJF0": [("SA1", 0, 4), ("SI1027", 0, 0), ("SX37", 0, 1), ("SX127", 0, 4)],
    "TRAIN/DR2/MKLW0": [("SA1", 1, 4), ("SI1571", 1, 2), ("SX131", 1, 3), ("SX221", 1, 5)],
    "TEST/DR1/FAKS0": [("SA1", 2, 4), ("SI943", 2, 0), ("SX133", 2, 5)],  # dev speaker
    "TEST/DR1/MDAB0": [("SA1", 3, 4), ("SI1039", 3, 1), ("SX139", 3, 2)],  # core test speaker
    "TEST/DR3/MXYZ0": [("SI1", 3, 3)],  # neither: in no standard split
}


def timit_phones(sentence: str) -> list[str]:
    return ["h#", *" ".join(TIMIT_WORDS[w] for w in sentence.split()).split(), "h#"]


def write_sphere(path: Path, wave: np.ndarray, utterance_id: str) -> None:
    """A 16-bit NIST SPHERE file with the header fields TIMIT's files carry."""
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    fields = [
        "database_id -s5 TIMIT",
        "database_version -s3 1.0",
        f"utterance_id -s{len(utterance_id)} {utterance_id}",
        "channel_count -i 1",
        f"sample_count -i {len(pcm)}",
        "sample_rate -i 16000",
        f"sample_min -i {int(pcm.min())}",
        f"sample_max -i {int(pcm.max())}",
        "sample_n_bytes -i 2",
        "sample_byte_format -s2 01",
        "sample_sig_bits -i 16",
    ]
    header = "NIST_1A\n   1024\n" + "".join(f"{f}\n" for f in fields) + "end_head\n"
    path.write_bytes(header.encode("ascii").ljust(1024, b" ") + pcm.tobytes())


def make_timit(root: Path, layout=None) -> dict[str, str]:
    """Write ``root/TIMIT/...``; returns ``{utterance id: 61-phone transcript}`` (SA included)."""
    written = {}
    for where, sentences in (layout or TIMIT).items():
        folder = root / "TIMIT" / where
        folder.mkdir(parents=True, exist_ok=True)
        speaker = folder.name.lower()
        for name, voice, sentence in sentences:
            text = SENTENCES[sentence]
            wave = speech(text, VOICES[voice])
            write_sphere(folder / f"{name}.WAV", wave, f"{speaker[1:]}_{name.lower()}")
            phones = timit_phones(text)
            # Even boundaries: the importer only reads the labels, not their times.
            edges = np.linspace(0, len(wave), len(phones) + 1).astype(int)
            (folder / f"{name}.PHN").write_text(
                "".join(
                    f"{a} {b} {p}\n" for a, b, p in zip(edges[:-1], edges[1:], phones, strict=True)
                )
            )
            words = text.split()
            word_edges = np.linspace(edges[1], edges[-2], len(words) + 1).astype(int)
            (folder / f"{name}.WRD").write_text(
                "".join(
                    f"{a} {b} {w}\n"
                    for a, b, w in zip(word_edges[:-1], word_edges[1:], words, strict=True)
                )
            )
            (folder / f"{name}.TXT").write_text(f"0 {len(wave)} {text.capitalize()}.\n")
            written[f"{speaker}_{name.lower()}"] = " ".join(phones)
    return written


# --- Kaldi --------------------------------------------------------------------------------------


def long_recording(path: Path, sentences, voice: int, gap: float = 0.3) -> list[tuple]:
    """Sentences one after another with ``gap`` s of silence; returns (text, start, end)."""
    pieces, spans, offset = [], [], gap
    pieces.append(np.zeros(int(gap * RATE), dtype=np.float32))
    for sentence in sentences:
        wave = speech(SENTENCES[sentence], VOICES[voice])
        pieces += [wave, np.zeros(int(gap * RATE), dtype=np.float32)]
        spans.append((SENTENCES[sentence], offset, offset + len(wave) / RATE))
        offset += (len(wave) + int(gap * RATE)) / RATE
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.concatenate(pieces), RATE, subtype="PCM_16")
    return spans


def make_kaldi(root: Path) -> dict[str, dict[str, str]]:
    """``root/data/{train,test}`` Kaldi dirs over ``root/audio``; returns {dir: {utt: text}}.

    train: two long recordings cut by ``segments`` (one listed by a path relative to ``root``),
    and a third recording given as a command (``cat FILE |``). test: whole files, no segments.
    """
    audio = root / "audio"
    written: dict[str, dict[str, str]] = {"train": {}, "test": {}}
    train = root / "data" / "train"
    train.mkdir(parents=True)
    scp, segments, text, utt2spk = [], [], [], []
    for recording, speaker, voice, sentences, entry in (
        ("spkA-rec1", "spkA", 0, (0, 1, 2), "{abs}"),
        ("spkB-rec2", "spkB", 1, (3, 1), "audio/spkB-rec2.wav"),
        ("spkA-rec3", "spkA", 0, (2, 0), "cat {abs} |"),
    ):
        path = audio / f"{recording}.wav"
        spans = long_recording(path, sentences, voice)
        scp.append(f"{recording} {entry.format(abs=path)}")
        for number, (sentence, start, end) in enumerate(spans):
            utterance = f"{recording}-{number:03d}"
            segments.append(f"{utterance} {recording} {start:.2f} {end + 0.05:.2f}")
            text.append(f"{utterance} {sentence.upper()}")
            utt2spk.append(f"{utterance} {speaker}")
            written["train"][utterance] = sentence.upper()
    for name, lines in (("wav.scp", scp), ("segments", segments), ("text", text)):
        (train / name).write_text("".join(f"{line}\n" for line in lines))
    (train / "utt2spk").write_text("".join(f"{line}\n" for line in utt2spk))

    test = root / "data" / "test"
    test.mkdir(parents=True)
    scp, text = [], []
    for number, (voice, sentence) in enumerate(((2, 0), (3, 3), (2, 4))):
        utterance = f"spkC-utt{number}"
        path = audio / f"{utterance}.wav"
        soundfile.write(path, speech(SENTENCES[sentence], VOICES[voice]), RATE, subtype="PCM_16")
        scp.append(f"{utterance} {path}")
        text.append(f"{utterance} {SENTENCES[sentence].upper()}")
        written["test"][utterance] = SENTENCES[sentence].upper()
    (test / "wav.scp").write_text("".join(f"{line}\n" for line in scp))
    (test / "text").write_text("".join(f"{line}\n" for line in text))
    return written
