"""ImageNet-P storage and evaluation: HDF5 writer/reader, interrupted runs, MP4, FP end to end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import sample_files

from robustbench_assemble.datasets.imagenet_p import (
    available_datasets,
    open_imagenet_p,
    read_mp4,
    write_mp4,
)
from robustbench_assemble.evaluate_p import evaluate_imagenet_p
from robustbench_assemble.images import load_rgb
from robustbench_assemble.import_imagenet_p import import_tree
from robustbench_assemble.make_imagenet_p import CPU_GENERATOR
from robustbench_assemble.make_imagenet_p import generate as generate_with_codec
from robustbench_assemble.perturbations import make_sequence, sequence_seed
from robustbench_assemble.perturbations.storage import SequenceWriter, partial_path


def generate(*args, **kwargs):
    """Lossless frames unless a test asks for the codec: these tests are about the files and
    the metrics; tests/test_codec.py checks the codec step (about 1 s per sequence)."""
    return generate_with_codec(*args, **{"codec": "none", **kwargs})


@pytest.fixture(scope="module")
def mini_val(tmp_path_factory) -> Path:
    """A 4-class val folder of symlinks to real photos."""
    files = sample_files(4, stride=250)
    if not files:
        pytest.skip("ImageNet sample not found")
    root = tmp_path_factory.mktemp("val")
    for f in files:
        (root / f.parent.name).mkdir()
        os.symlink(f, root / f.parent.name / f.name)
    return root


def _frames(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["frames"][()]


def test_generate_writes_the_sequences(mini_val, tmp_path):
    paths = generate(
        mini_val, tmp_path, perturbations=["translate", "gaussian_noise"], difficulties=[1, 3],
        seed=4, limit=3, progress=False,
    )  # fmt: skip
    assert [p.name for p in paths] == ["translate.h5", "gaussian_noise.h5", "gaussian_noise_3.h5"]
    ds = open_imagenet_p(tmp_path, "gaussian_noise", 3)
    assert len(ds) == 3 and ds.kind == "hdf5"
    with h5py.File(paths[2], "r") as f:
        assert f.attrs["perturbation"] == "gaussian_noise" and f.attrs["difficulty"] == 3
        assert f.attrs["seed"] == 4 and bool(f.attrs["complete"])
        assert f["frames"].chunks == (1, 31, 224, 224, 3)
    for i, rel in enumerate(ds.filenames):
        frames, label = ds[i]
        want = make_sequence(
            load_rgb(mini_val / rel),
            "gaussian_noise",
            3,
            seed=sequence_seed(4, rel, "gaussian_noise", 3),
        )
        assert np.array_equal(frames, want)
        assert ds.classes[label] == rel.split("/")[0]
    # translate at difficulty 2 reads the one translate file (stride at evaluation)
    assert open_imagenet_p(tmp_path, "translate", 2).path.name == "translate.h5"
    assert ("translate", 1, "hdf5") in available_datasets(tmp_path)
    # rerunning skips finished files
    before = paths[0].stat().st_mtime_ns
    generate(
        mini_val,
        tmp_path,
        perturbations=["translate"],
        difficulties=[1],
        seed=4,
        limit=3,
        progress=False,
    )
    assert paths[0].stat().st_mtime_ns == before


def test_partial_file_is_continued_not_restarted(mini_val, tmp_path):
    """A partial file with some sequences written is completed to the same bytes."""
    full = generate(
        mini_val,
        tmp_path / "a",
        perturbations=["shot_noise"],
        difficulties=[2],
        seed=1,
        progress=False,
    )[0]
    out = tmp_path / "b"
    out.mkdir()
    target = out / "shot_noise_2.h5"
    with h5py.File(full, "r") as f:
        names = [s.decode() for s in f["filenames"][()]]
        labels, classes = f["labels"][()], [c.decode() for c in f["classes"][()]]
        first = f["frames"][1]
    w = SequenceWriter(target, perturbation="shot_noise", difficulty=2, filenames=names,
                       labels=labels, classes=classes, seed=1, generator=CPU_GENERATOR)  # fmt: skip
    w.write(1, first)  # out of order, then "killed"
    w.close()
    w = SequenceWriter(target, perturbation="shot_noise", difficulty=2, filenames=names,
                       labels=labels, classes=classes, seed=1, generator=CPU_GENERATOR)  # fmt: skip
    assert w.todo == [i for i in range(len(names)) if i != 1]
    w.close()
    generate(mini_val, out, perturbations=["shot_noise"], difficulties=[2], seed=1, progress=False)
    assert np.array_equal(_frames(target), _frames(full))
    assert not partial_path(target).exists()


def test_partial_with_other_settings_is_refused(mini_val, tmp_path):
    w = SequenceWriter(tmp_path / "rotate.h5", perturbation="rotate", difficulty=1,
                       filenames=["a/x.JPEG"], labels=[0], classes=["a"], seed=1)  # fmt: skip
    w.close()
    with pytest.raises(ValueError, match="seed"):
        SequenceWriter(tmp_path / "rotate.h5", perturbation="rotate", difficulty=1,
                       filenames=["a/x.JPEG"], labels=[0], classes=["a"], seed=2)  # fmt: skip


def test_partial_started_by_other_code_warns(tmp_path):
    """Resuming a .partial after the generator's code changed may mix two versions' sequences
    (the version string does not change between commits): a warning says so."""
    kwargs = dict(perturbation="rotate", difficulty=1, filenames=["a/x.JPEG"], labels=[0],
                  classes=["a"], seed=1)  # fmt: skip
    SequenceWriter(tmp_path / "rotate.h5", **kwargs).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same code: no warning
        SequenceWriter(tmp_path / "rotate.h5", **kwargs).close()
    with h5py.File(partial_path(tmp_path / "rotate.h5"), "r+", libver="latest") as f:
        f.attrs["code_fingerprint"] = "0" * 16
    with pytest.warns(UserWarning, match="started by other code"):
        SequenceWriter(tmp_path / "rotate.h5", **kwargs).close()


def test_a_second_writer_of_the_same_dataset_is_refused(tmp_path):
    """Two runs into one --out: the second used to take the first's open .partial for a killed
    writer's, salvage it and delete it under the first (which then died at its rename)."""
    from robustbench_assemble.perturbations.storage import WriterBusyError

    kwargs = dict(perturbation="rotate", difficulty=1, filenames=["a/x.JPEG"], labels=[0],
                  classes=["a"], seed=1)  # fmt: skip
    first = SequenceWriter(tmp_path / "rotate.h5", **kwargs)
    with pytest.raises(WriterBusyError, match="another process is writing it"):
        SequenceWriter(tmp_path / "rotate.h5", **kwargs)
    assert partial_path(tmp_path / "rotate.h5").exists()  # the first's file untouched
    other = SequenceWriter(tmp_path / "tilt.h5", **dict(kwargs, perturbation="tilt"))
    other.close()  # another dataset in the same folder: no conflict
    first.write(0, np.zeros((31, 224, 224, 3), np.uint8))
    assert first.finish() == tmp_path / "rotate.h5"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rotate.h5", "tilt.h5.partial"]
    SequenceWriter(tmp_path / "tilt.h5", **dict(kwargs, perturbation="tilt")).close()


def test_writer_without_flock_warns_and_writes(tmp_path, monkeypatch):
    """A file system without flock (some NFS/Lustre/FUSE mounts): a warning, not a crash."""
    import errno
    import fcntl

    def no_lock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_lock)
    kwargs = dict(perturbation="rotate", difficulty=1, filenames=["a/x.JPEG"], labels=[0],
                  classes=["a"], seed=1)  # fmt: skip
    with pytest.warns(UserWarning, match="cannot lock .*one writer per --out"):
        w = SequenceWriter(tmp_path / "rotate.h5", **kwargs)
    w.write(0, np.zeros((31, 224, 224, 3), np.uint8))
    assert w.finish() == tmp_path / "rotate.h5"
    assert [p.name for p in tmp_path.iterdir()] == ["rotate.h5"]


def test_a_dataset_finished_by_another_run_meanwhile_is_not_rewritten(tmp_path):
    """Between the caller's 'already complete?' check and the lock, another run may finish
    the file: the writer must not start it over (with other settings it would replace it)."""
    from robustbench_assemble.perturbations.storage import WriterBusyError

    (tmp_path / "rotate.h5").write_bytes(b"finished by the other run")
    kwargs = dict(perturbation="rotate", difficulty=1, filenames=["a/x.JPEG"], labels=[0],
                  classes=["a"], seed=1)  # fmt: skip
    with pytest.raises(WriterBusyError, match="finished by another run"):
        SequenceWriter(tmp_path / "rotate.h5", **kwargs)
    assert (tmp_path / "rotate.h5").read_bytes() == b"finished by the other run"
    assert [p.name for p in tmp_path.iterdir()] == ["rotate.h5"]  # lock released and removed


def test_interrupt_while_creating_leaves_no_partial(tmp_path, monkeypatch):
    """Ctrl-C after the file exists but before its settings are written used to leave a
    .partial that every later run refused ("started with perturbation=None")."""
    layout = SequenceWriter._layout

    def interrupted(self, f, labels, classes):
        f.create_dataset("labels", data=np.zeros(1))
        raise KeyboardInterrupt

    monkeypatch.setattr(SequenceWriter, "_layout", interrupted)
    kwargs = dict(perturbation="rotate", difficulty=1, filenames=["a/x.JPEG"], labels=[0],
                  classes=["a"], seed=1)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        SequenceWriter(tmp_path / "rotate.h5", **kwargs)
    assert list(tmp_path.iterdir()) == []  # neither a .partial nor a temporary file
    monkeypatch.setattr(SequenceWriter, "_layout", layout)
    w = SequenceWriter(tmp_path / "rotate.h5", **kwargs)
    assert w.todo == [0]
    w.close()


def test_unreadable_partial_is_restarted(tmp_path):
    partial = partial_path(tmp_path / "rotate.h5")
    partial.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # a torn file
    with pytest.warns(UserWarning, match="starting over"):
        w = SequenceWriter(tmp_path / "rotate.h5", perturbation="rotate", difficulty=1,
                           filenames=["a/x.JPEG"], labels=[0], classes=["a"], seed=0)  # fmt: skip
    assert w.todo == [0]
    w.close()


def test_killed_run_resumes_to_identical_file(mini_val, tmp_path):
    """SIGKILL the CLI mid-file, rerun it: the result equals an uninterrupted run."""
    reference = generate(
        mini_val, tmp_path / "ref", perturbations=["motion_blur"], difficulties=[1], progress=False
    )[0]
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "robustbench_assemble.make_imagenet_p", "--src", str(mini_val),
           "--out", str(out), "--perturbations", "motion_blur", "--difficulties", "1",
           "--workers", "0", "--no-progress", "--codec", "none"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = partial_path(out / "motion_blur.h5")
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with h5py.File(partial, "r", swmr=True) as f:
                done = int(f["completed"][()].sum())
        except (OSError, KeyError):
            done = 0
        if done >= 1:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial.exists() and not (out / "motion_blur.h5").exists()
    rel = sorted(p.relative_to(mini_val).as_posix() for p in mini_val.rglob("*.JPEG"))
    wnids = sorted(p.name for p in mini_val.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the completed sequences are salvaged, not restarted
        w = SequenceWriter(
            out / "motion_blur.h5", perturbation="motion_blur", difficulty=1, filenames=rel,
            labels=[0, 1, 2, 3], classes=wnids, seed=0, generator=CPU_GENERATOR,
        )  # fmt: skip
    assert len(w.todo) <= 4 - done
    w.close()
    generate(mini_val, out, perturbations=["motion_blur"], difficulties=[1], progress=False)
    assert np.array_equal(_frames(out / "motion_blur.h5"), _frames(reference))


def test_ctrl_c_stops_cleanly_and_resumes(mini_val, tmp_path):
    """SIGINT (Ctrl-C) with worker processes: exit 130 with one line, no traceback, and the
    partial file resumes to the same bytes as an uninterrupted run."""
    out = tmp_path / "run"
    # codec x264 (the default): ~1.5 s a sequence, time to interrupt
    cmd = [sys.executable, "-m", "robustbench_assemble.make_imagenet_p", "--src", str(mini_val),
           "--out", str(out), "--perturbations", "shot_noise", "--difficulties", "1",
           "--workers", "2", "--no-progress"]  # fmt: skip
    # a shell's background job starts with SIGINT ignored, and so would the child: restore it
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    partial = partial_path(out / "shot_noise.h5")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not partial.exists():
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not (out / "shot_noise.h5").exists()
    resumed = generate_with_codec(mini_val, out, perturbations=["shot_noise"], difficulties=[1],
                                  progress=False)[0]  # fmt: skip
    fresh = generate_with_codec(mini_val, tmp_path / "fresh", perturbations=["shot_noise"],
                                difficulties=[1], progress=False)[0]  # fmt: skip
    assert np.array_equal(_frames(resumed), _frames(fresh))


@pytest.mark.slow
def test_worker_count_does_not_change_bytes(mini_val, tmp_path):
    a = generate(
        mini_val,
        tmp_path / "a",
        perturbations=["speckle_noise"],
        difficulties=[1],
        workers=0,
        progress=False,
    )[0]
    b = generate(
        mini_val,
        tmp_path / "b",
        perturbations=["speckle_noise"],
        difficulties=[1],
        workers=2,
        progress=False,
    )[0]
    assert np.array_equal(_frames(a), _frames(b))


def test_device_and_batch_size_arguments(mini_val, tmp_path):
    with pytest.raises(ValueError, match="--device"):
        generate(mini_val, tmp_path, perturbations=["rotate"], device="tpu", progress=False)
    with pytest.raises(ValueError, match="--batch-size"):
        generate(mini_val, tmp_path, perturbations=["rotate"], batch_size=0, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            generate(mini_val, tmp_path, perturbations=["rotate"], device="cuda", progress=False)
    # a partial file of the other generator is not continued (its random frames differ)
    w = SequenceWriter(tmp_path / "rotate.h5", perturbation="rotate", difficulty=1,
                       filenames=["a/x.JPEG"], labels=[0], classes=["a"], seed=0,
                       generator="torch-cuda")  # fmt: skip
    w.close()
    with pytest.raises(ValueError, match="generator"):
        SequenceWriter(tmp_path / "rotate.h5", perturbation="rotate", difficulty=1,
                       filenames=["a/x.JPEG"], labels=[0], classes=["a"], seed=0,
                       generator="numpy-2")  # fmt: skip


def test_batched_torch_path_does_not_depend_on_batch_size(mini_val):
    """The --device cuda producer, run on the CPU: same frames for batch sizes 1 and 3."""
    from robustbench_assemble.make_imagenet_p import _cuda_results
    from robustbench_assemble.perturbations.torch_backend import make_sequence_batch

    files = sorted(mini_val.rglob("*.JPEG"))[:3]
    jobs = [(i, str(f), f"{f.parent.name}/{f.name}", "gaussian_noise", 2, 9, "none")
            for i, f in enumerate(files)]  # fmt: skip
    one = dict(_cuda_results(jobs, None, 1, "cpu"))
    three = dict(_cuda_results(jobs, None, 3, "cpu"))
    assert one.keys() == three.keys() == {0, 1, 2}
    for i, job in enumerate(jobs):
        assert one[i] == three[i]
        want = make_sequence_batch(
            [load_rgb(files[i])], "gaussian_noise", 2, [sequence_seed(9, job[2], job[3], 2)]
        )[0].numpy()
        assert zlib.decompress(one[i]) == want.tobytes()


@pytest.mark.gpu
def test_generate_on_cuda(mini_val, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    paths = generate(mini_val, tmp_path, perturbations=["shot_noise", "rotate", "snow"],
                     difficulties=[1], seed=3, device="cuda", batch_size=3,
                     progress=False)  # fmt: skip
    for path in paths:
        with h5py.File(path, "r") as f:
            name = str(f.attrs["perturbation"])
            assert f.attrs["generator"] == ("numpy-2" if name == "snow" else "torch-cuda")
    ds = open_imagenet_p(tmp_path, "rotate")
    for i, rel in enumerate(ds.filenames):
        cpu = make_sequence(load_rgb(mini_val / rel), "rotate")
        d = np.abs(ds[i][0].astype(int) - cpu)
        assert d.max() <= 1 and (d > 0).mean() < 0.02
    again = generate(mini_val, tmp_path / "again", perturbations=["shot_noise"],
                     difficulties=[1], seed=3, device="cuda", batch_size=2,
                     progress=False)[0]  # fmt: skip
    assert np.array_equal(_frames(again), _frames(tmp_path / "shot_noise.h5"))


def test_mp4_round_trip_and_import(mini_val, tmp_path):
    """Write release-style MP4s, read them directly and through an HDF5 import."""
    tree = tmp_path / "ImageNet-P"
    originals = {}
    for f in sorted(mini_val.rglob("*.JPEG"))[:2]:
        seq = make_sequence(load_rgb(f), "rotate")
        dest = tree / "rotate" / f.parent.name / (f.stem + ".mp4")
        dest.parent.mkdir(parents=True)
        write_mp4(dest, seq, noise=False, preset="ultrafast")
        originals[f"{f.parent.name}/{f.stem}"] = seq
    videos = open_imagenet_p(tree, "rotate")
    assert videos.kind == "mp4" and sorted(videos.filenames) == sorted(originals)
    for i, name in enumerate(videos.filenames):
        frames, _ = videos[i]
        assert frames.shape == (31, 224, 224, 3)
        err = np.abs(frames.astype(float) - originals[name])
        assert err.mean() < 3.0  # codec error (crf 20), not a different image
    imported = import_tree(tree, tmp_path / "h5", progress=False)
    assert [p.name for p in imported] == ["rotate.h5"]
    h5 = open_imagenet_p(tmp_path / "h5", "rotate")
    assert h5.filenames == videos.filenames and h5.labels == videos.labels
    for i in range(len(h5)):
        assert np.array_equal(h5[i][0], read_mp4(videos.paths[i]))
    # labels are ImageNet-1k indices, not the tree's own 0..K-1
    wnids = list(__import__("robustbench_assemble.datasets").datasets.imagenet_wnids())
    assert h5.labels == [wnids.index(f.split("/")[0]) for f in h5.filenames]

    # the tree grows (or another one is imported into the same --out): refused, not kept stale
    extra = sorted(mini_val.rglob("*.JPEG"))[2]
    dest = tree / "rotate" / extra.parent.name / (extra.stem + ".mp4")
    dest.parent.mkdir(parents=True)
    write_mp4(dest, make_sequence(load_rgb(extra), "rotate"), noise=False, preset="ultrafast")
    with pytest.raises(ValueError, match="another image list"):
        import_tree(tree, tmp_path / "h5", progress=False)
    with pytest.raises(NotADirectoryError, match="--out"):
        import_tree(tree, tmp_path / "h5" / "rotate.h5", progress=False)


class _Tiny(torch.nn.Module):
    """A fixed random classifier: pooled colours -> 1000 logits."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.pool = torch.nn.AdaptiveAvgPool2d(8)
        self.fc = torch.nn.Linear(192, 1000)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(1000, 192, generator=g) * 3)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.pool(x).flatten(1))


def _reference_metrics(scores: list[np.ndarray], noise: bool, step: int) -> tuple[float, float]:
    """ImageNet-P/test.py's flip_prob and ranking_dist('top5'), written out from its definition."""
    from scipy.stats import rankdata

    cum = np.cumsum(np.asarray([0] + [1] * 5 + [0] * 994))
    fp = t5d = 0.0
    for vid in scores:
        preds = vid.argmax(1)
        ranks = [np.uint16(rankdata(-frame, method="ordinal")) for frame in vid]
        flips, dists = [], []
        for i in range(1 if noise else step):
            prev, perm1 = preds[i], ranks[i]
            for j in range(i + (1 if noise else step), len(vid), 1 if noise else step):
                flips.append(int(prev != preds[j]))
                sigma = ranks[j][np.argsort(perm1)]
                dists.append(np.sum(np.abs(cum[:5] - cum[sigma - 1][:5])))
                if not noise:
                    prev, perm1 = preds[j], ranks[j]
        fp += np.mean(flips) / len(scores)
        t5d += np.mean(dists) / len(scores)
    return fp, t5d


def test_flip_probability_end_to_end(mini_val, tmp_path):
    generate(
        mini_val,
        tmp_path,
        perturbations=["gaussian_noise", "translate"],
        difficulties=[1],
        progress=False,
    )
    model = _Tiny().eval()
    res = evaluate_imagenet_p(
        model, tmp_path, perturbations=["gaussian_noise"], batch_size=64, progress=False
    )
    res.update(
        evaluate_imagenet_p(
            model, tmp_path, perturbations=["translate"], difficulties=[1, 2], batch_size=64,
            cache_dir=tmp_path / "cache", progress=False,
        )
    )  # fmt: skip
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    for name, d in [("gaussian_noise", 1), ("translate", 1), ("translate", 2)]:
        ds = open_imagenet_p(tmp_path, name, d)
        scores = []
        for i in range(len(ds)):
            x = torch.from_numpy(ds[i][0]).permute(0, 3, 1, 2).float() / 255  # ToTensor
            with torch.no_grad():
                scores.append(model((x - mean) / std).numpy())  # Normalize, no resize
        fp, t5d = _reference_metrics(scores, "noise" in name, d)
        got = res[(name, d)]
        assert got["n_videos"] == len(ds)
        assert got["flip_probability"] == pytest.approx(fp, abs=1e-12)
        assert got["top5_distance"] == pytest.approx(t5d, abs=1e-9)
    assert res[("translate", 1)]["frames_per_video"] == 41
    # cached predictions are reused: the same numbers without the model
    broken = torch.nn.Sequential()  # would fail if called
    again = evaluate_imagenet_p(broken, tmp_path, perturbations=["translate"], difficulties=[2],
                                cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
    assert again[("translate", 2)] == res[("translate", 2)]
    shutil.rmtree(tmp_path / "cache")

    # a missing dataset (no gaussian_noise_2.h5 here) is an error before any model call
    class Uncallable(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("the model ran before the missing dataset was found")

    with pytest.raises(FileNotFoundError, match="gaussian_noise"):
        evaluate_imagenet_p(Uncallable(), tmp_path, perturbations=["translate", "gaussian_noise"],
                            difficulties=[1, 2], progress=False)  # fmt: skip


@pytest.mark.parametrize("name", ["rotate", "gaussian_noise"])
def test_mp4_reader_equals_the_reference_loader(mini_val, tmp_path, name):
    """The reference read the MP4s with OpenCV's VideoCapture (BGR, then RGB); PyAV gives the
    same pixels (both are FFmpeg; yuv444p as the release, crf 20 / tune grain)."""
    cv2 = pytest.importorskip("cv2")
    frames = make_sequence(load_rgb(next(mini_val.rglob("*.JPEG"))), name, 1, seed=0)
    path = tmp_path / "v.mp4"
    write_mp4(path, frames, noise="noise" in name)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        pytest.skip("this OpenCV build cannot read MP4 (no FFmpeg backend)")
    reference = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        reference.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert np.array_equal(read_mp4(path), np.stack(reference))


def test_cli_lists_take_spaces_or_commas(mini_val, tmp_path, capsys):
    """`--perturbations a,b` (eval's and make_imagenet_c's spelling) and `a b` alike; a bad
    difficulty is a one-line error naming the flag."""
    from robustbench_assemble.make_imagenet_p import main

    argv = ["--src", str(mini_val), "--limit", "2", "--workers", "0", "--codec", "none",
            "--no-progress"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "a"), "--perturbations", "rotate,gaussian_noise",
                 "--difficulties", "1,2"]) == 0  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "b"), "--perturbations", "rotate", "gaussian_noise",
                 "--difficulties", "1", "2"]) == 0  # fmt: skip
    names = ["gaussian_noise.h5", "gaussian_noise_2.h5", "rotate.h5"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == names
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == names
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "c"), "--difficulties", "1,x"]) == 2
    assert "--difficulties: expected integers 1..3, got 'x'" in capsys.readouterr().err
