"""params.yaml groups `data` and `data_report`: where each dataset comes from."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from audioprobe.runtime.params import Strict


Source = Literal["embedded", "path", "url"]


LOOPBACK = ("http://127.0.0.1", "http://localhost")


class DatasetSource(Strict):
    """Where one dataset comes from; the layout on disk is always the official one.

    `path` is also a DVC dependency of `data_download@<dataset>` (dvc.yaml templates it), so
    it must name an existing folder whatever the source: the default is the committed
    placeholder folder `data/local/<dataset>`, which is also where a local copy may go.
    """

    source: Source = "embedded"
    path: str = ""  # local copy in the official layout (source: path); a dependency always
    url: str = ""  # official archive (source: url), https
    sha256: str = ""  # of the archive at `url`; verified before extraction
    allow_unverified: bool = False  # source: url with no sha256 pinned is refused unless true

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name an existing folder (it is a DVC dependency of data_download@<dataset>): "
                             "your local copy, or the placeholder data/local/<dataset>")
        return v

    @field_validator("url")
    @classmethod
    def _https(cls, v: str) -> str:
        if v and not (v.startswith(("https://", "file://")) or v.startswith(LOOPBACK)):
            raise ValueError(f"{v!r} is not https:// (plain http can be altered on the way); use the https URL")
        return v

    @field_validator("sha256")
    @classmethod
    def _hex64(cls, v: str) -> str:
        if v and not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise ValueError(f"{v!r} is not a sha256 (64 hex digits); leave it empty if none is published")
        return v


class SpeechCommandsEmbedded(Strict):
    seed: int = Field(0, ge=0)
    speakers: int = Field(100, ge=1, le=400)
    words: int = Field(35, ge=2, le=35)  # first N of the 35 official words
    noise_seconds: float = Field(20.0, gt=0.0, le=120.0)


class SpeechCommands(DatasetSource):
    path: str = "data/local/speech_commands"
    url: str = "https://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
    sha256: str = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"  # TensorFlow Datasets' pin
    embedded: SpeechCommandsEmbedded = SpeechCommandsEmbedded()


class LibriSpeechEmbedded(Strict):
    seed: int = Field(0, ge=0)
    speakers: int = Field(24, ge=1, le=400)
    utterances: int = Field(4, ge=1, le=100)  # per speaker
    min_seconds: float = Field(3.0, ge=0.5)
    max_seconds: float = Field(12.0, le=35.0)


class LibriSpeech(DatasetSource):
    path: str = "data/local/librispeech"
    url: str = "https://www.openslr.org/resources/12/train-clean-100.tar.gz"  # no sha256 published
    subset: str = "train-clean-100"
    embedded: LibriSpeechEmbedded = LibriSpeechEmbedded()


class Esc50Embedded(Strict):
    seed: int = Field(0, ge=0)
    classes: int = Field(28, ge=2)  # 18 environmental + the 10 animal classes (targets 0-9) detect needs
    clips_per_fold: int = Field(2, ge=1)  # 5 folds each


class Esc50(DatasetSource):
    path: str = "data/local/esc50"
    url: str = "https://github.com/karolpiczak/ESC-50/archive/master.zip"  # no sha256 published
    embedded: Esc50Embedded = Esc50Embedded()


class MusanEmbedded(Strict):
    seed: int = Field(0, ge=0)
    music: int = Field(12, ge=1)
    noise: int = Field(12, ge=1)
    speech: int = Field(12, ge=1)
    seconds: float = Field(4.0, gt=0.0, le=60.0)


class Musan(DatasetSource):
    path: str = "data/local/musan"
    url: str = "https://www.openslr.org/resources/17/musan.tar.gz"  # no sha256 published
    embedded: MusanEmbedded = MusanEmbedded()


class ReasonAqaEmbedded(Strict):
    seed: int = Field(0, ge=0)
    rows: int = Field(4000, ge=8)
    clips: int = Field(480, ge=4)  # distinct audio clips the questions are about


class ReasonAqa(DatasetSource):
    path: str = "data/local/reasonaqa"
    url: str = "https://zenodo.org/records/15036628/files/ReasonAQA.zip"  # no sha256 published
    embedded: ReasonAqaEmbedded = ReasonAqaEmbedded()


class Data(Strict):
    speech_commands: SpeechCommands = SpeechCommands()
    librispeech: LibriSpeech = LibriSpeech()
    esc50: Esc50 = Esc50()
    musan: Musan = Musan()
    reasonaqa: ReasonAqa = ReasonAqa()


class DataReport(Strict):
    hist_bins: int = Field(40, ge=2, le=1000)



SCHEMA = Data
SCHEMAS = {"data": Data, "data_report": DataReport}
