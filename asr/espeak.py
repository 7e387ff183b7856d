"""The ctypes binding of libespeak-ng: the constants and structures of its ``speak_lib.h``, the
signatures of the functions ``asr.synthesis`` calls, unloading a loaded copy, and the voices
its data offers."""

from __future__ import annotations

import _ctypes
import ctypes

ESPEAK_SAMPLE_RATE = 22050

# Values from espeak-ng's speak_lib.h.
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
CHARS_AUTO = 0
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
RATE, PITCH, RANGE = 1, 3, 4
EE_OK = 0
DONT_EXIT = 0x8000  # espeakINITIALIZE_DONT_EXIT: report missing data instead of exit()


class Event(ctypes.Structure):
    """espeak_EVENT; the trailing union is read as a pointer-sized field we never use."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # characters from the start of the text, 1-based
        ("length", ctypes.c_int),  # word length in characters
        ("audio_position", ctypes.c_int),  # milliseconds into the message's audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_void_p),
    ]


class VoiceInfo(ctypes.Structure):
    """espeak_VOICE as espeak_ListVoices returns it."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated name) pairs, then NUL
        ("identifier", ctypes.c_char_p),  # file under espeak-ng-data/voices, e.g. "gmw/en-US"
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event)
)


def declare(lib: ctypes.CDLL) -> None:
    """Argument and result types of the functions we call (from speak_lib.h)."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,  # text
        ctypes.c_size_t,  # size
        ctypes.c_uint,  # position
        ctypes.c_int,  # position_type
        ctypes.c_uint,  # end_position
        ctypes.c_uint,  # flags
        ctypes.c_void_p,  # unique_identifier
        ctypes.c_void_p,  # user_data
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.POINTER(VoiceInfo)]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(VoiceInfo))
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p


def unload(lib: ctypes.CDLL) -> None:
    """dlclose the library so the next load starts from its initial static state."""
    close = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary  # POSIX, Windows
    close(lib._handle)


def list_voices(lib: ctypes.CDLL, spec: VoiceInfo | None) -> list[VoiceInfo]:
    table = lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
    voices, i = [], 0
    while table[i]:
        voices.append(table[i].contents)
        i += 1
    return voices


def english_languages(lib: ctypes.CDLL) -> tuple[str, ...]:
    names = set()
    for info in list_voices(lib, None):
        # The file name is what espeak_SetVoiceByName resolves ("en" is British English).
        name = info.identifier.decode().rsplit("/", 1)[-1].lower()
        # Shavian is English written in another alphabet: it cannot read Latin text.
        if (name == "en" or name.startswith("en-")) and name != "en-shaw":
            names.add(name)
    return tuple(sorted(names))


def variants(lib: ctypes.CDLL) -> tuple[str, ...]:
    spec = VoiceInfo()
    keep_alive = ctypes.c_char_p(b"variant")  # the special language that lists variants
    spec.languages = ctypes.cast(keep_alive, ctypes.c_void_p)
    return tuple(
        sorted(info.identifier.decode().split("/", 1)[-1] for info in list_voices(lib, spec))
    )
