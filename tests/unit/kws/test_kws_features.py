"""kws feature cache on the real Speech Commands fixtures: shapes, labels, splits, values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioprobe.audio.mel import log_mel
from audioprobe.data.speech_commands import list_clips, load_clip
from audioprobe.runtime.errors import DataError
from audioprobe.kws.features import SPLITS, load_feature_cache, n_frames, write_feature_cache


@pytest.fixture(scope="module")
def sc_root(fixtures_dir):
    return fixtures_dir / "speech_commands"


def test_cache_round_trip_on_real_clips(sc_root, tmp_path):
    all_clips = list_clips(sc_root)
    # a few clips of every split, across several words
    clips = [c for s in SPLITS for c in [c for c in all_clips if c.split == s][:5]]
    meta = write_feature_cache(sc_root, clips, tmp_path, n_mels=80, n_fft=400, hop=160,
                               batch_size=4, progress=False)
    cache = load_feature_cache(tmp_path)
    assert cache.features.shape == (15, 101, 80) and cache.features.dtype == np.float32
    assert meta["split_counts"] == {"train": 5, "validation": 5, "test": 5}
    assert cache.relpaths == [c.relpath for c in clips]
    assert [cache.words[i] for i in cache.labels] == [c.word for c in clips]
    assert cache.words == sorted(set(cache.words))  # official words, in WORDS order
    for i in (0, 7, 14):
        expected = log_mel(torch.from_numpy(load_clip(sc_root, clips[i].relpath)), 16000)
        np.testing.assert_allclose(cache.features[i], expected.numpy(), rtol=0, atol=1e-5)
    x, y = cache.tensors("test", limit=3)
    assert x.shape == (3, 101, 80) and y.dtype == torch.int64
    assert list(cache.indices("validation")) == [5, 6, 7, 8, 9]


def test_frames_per_second():
    assert n_frames(160) == 101


def test_missing_cache_names_the_stage(tmp_path):
    with pytest.raises(DataError, match="kws_features"):
        load_feature_cache(tmp_path)


def test_held_out_set_mixes_words_and_is_fixed(sc_root, tmp_path):
    clips = [c for c in list_clips(sc_root) if c.split == "test"][:40]
    write_feature_cache(sc_root, clips, tmp_path, n_mels=80, n_fft=400, hop=160, progress=False)
    cache = load_feature_cache(tmp_path)
    held = cache.held_out(10)
    names = [cache.relpaths[i].rsplit("/", 1)[-1] for i in held]
    assert names == sorted(names) and len(held) == 10
    assert len({cache.labels[i] for i in held}) > len({cache.labels[i] for i in range(10)})
    assert list(cache.held_out(10)) == list(held)
    x, y = cache.tensors(held)
    assert x.shape == (10, 101, 80) and y.tolist() == [int(cache.labels[i]) for i in held]


def test_noise_segments_are_whole_seconds_of_background_files(sc_root, tmp_path):
    import soundfile as sf

    from audioprobe.data.speech_commands import BACKGROUND
    from audioprobe.kws.features import noise_segments

    files = sorted((sc_root / BACKGROUND).glob("*.wav"))
    assert files, "the fixtures carry _background_noise_"
    expected_k = sum(sf.info(str(f)).frames // 16000 for f in files)
    segs = noise_segments(sc_root, n_mels=40, n_fft=400, hop=320)
    assert segs.shape == (expected_k, n_frames(320), 40) and segs.dtype == np.float32
    first, _ = sf.read(str(files[0]), dtype="float32")
    ref = log_mel(torch.from_numpy(first[:16000]), 16000, n_mels=40, n_fft=400, hop=320)
    np.testing.assert_allclose(segs[0], ref.numpy(), rtol=0, atol=1e-4)
    assert noise_segments(tmp_path, n_mels=40, n_fft=400, hop=320).shape == (0, n_frames(320), 40)
