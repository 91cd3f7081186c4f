"""ImageNet-C generator: layout, JPEG q85 bytes vs the reference pipeline, determinism, resume,
bad inputs; and the atomic-write helpers it relies on."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import robustbench_assemble.corruptions as corruptions_pkg
from robustbench_assemble import make_imagenet_c as mic
from robustbench_assemble.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_writer,
    is_temp_file,
    remove_temp_files,
    temp_path_for,
)
from robustbench_assemble.corruptions import corrupt
from robustbench_assemble.datasets import ImageNetC, find_classes, index_folder, select_subset
from robustbench_assemble.images import load_benchmark_image

sys.path.insert(0, str(Path(__file__).parent))
import reference  # noqa: E402

CELLS = [("contrast", 1), ("contrast", 4), ("gaussian_noise", 1), ("gaussian_noise", 3)]
ARGS = ["--corruptions", "contrast,gaussian_noise", "--severities", "1,4,3", "--no-progress"]
# --severities 1,4,3 makes 6 cells; CELLS above are the ones checked in detail


def run(src: Path, out: Path, *extra: str) -> int:
    return mic.main(["--src", str(src), "--out", str(out), *ARGS, *extra])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def q85(array: np.ndarray) -> bytes:
    """The reference generator's save: PIL quality=85, optimize=True."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=85, optimize=True)
    return buf.getvalue()


def torchvision_crop(path: Path) -> np.ndarray:
    """The reference's input: ImageFolder's pil_loader + Resize(256) + CenterCrop(224)."""
    from torchvision import transforms as T
    from torchvision.datasets.folder import pil_loader

    return np.asarray(T.Compose([T.Resize(256), T.CenterCrop(224)])(pil_loader(str(path))))


@pytest.fixture(scope="module")
def generated(sample_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mic") / "corruptions"
    assert run(sample_dir, out, "--limit", "4", "--workers", "0") == 0
    return out


# --------------------------------------------------------------------------- layout and bytes


def test_layout_and_provenance(generated: Path, sample_dir: Path) -> None:
    _, samples = index_folder(sample_dir)
    chosen = select_subset(samples, 4)
    expected = {
        f"{c}/{s}/{x.relpath}"
        for c in ("contrast", "gaussian_noise")
        for s in (1, 3, 4)
        for x in chosen
    } | {f"{c}/{s}.json" for c in ("contrast", "gaussian_noise") for s in (1, 3, 4)}
    assert set(tree_bytes(generated)) == expected
    for c, s in CELLS:
        for x in chosen:
            with Image.open(generated / c / str(s) / x.relpath) as im:
                assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (224, 224))
    rec = json.loads((generated / "gaussian_noise" / "3.json").read_text())
    assert (rec["seed"], rec["backend"], rec["device"]) == (0, "numpy", "cpu")
    assert rec["jpeg"] == {"quality": 85, "optimize": True}


def test_bytes_match_reference_pipeline(generated: Path, sample_dir: Path) -> None:
    """contrast is deterministic: torchvision crop -> reference contrast -> PIL q85 == our file."""
    reference.load()
    _, samples = index_folder(sample_dir)
    for x in select_subset(samples, 4):
        crop = torchvision_crop(x.path)
        for s in (1, 4):
            ref = q85(reference.reference_corrupt(crop, "contrast", s))
            assert (generated / "contrast" / str(s) / x.relpath).read_bytes() == ref, x.relpath


def test_random_corruption_bytes_are_corrupt_with_the_image_seed(
    generated: Path, sample_dir: Path
) -> None:
    _, samples = index_folder(sample_dir)
    x = select_subset(samples, 4)[2]
    img = load_benchmark_image(x.path)
    for s in (1, 3):
        want = q85(
            corrupt(img, "gaussian_noise", s, seed=mic.image_rng(0, x.relpath, "gaussian_noise", s))
        )
        assert (generated / "gaussian_noise" / str(s) / x.relpath).read_bytes() == want
    # the seed really depends on each part of the key
    keys = [(0, x.relpath, "gaussian_noise", 1), (1, x.relpath, "gaussian_noise", 1),
            (0, "n0/other.JPEG", "gaussian_noise", 1), (0, x.relpath, "shot_noise", 1),
            (0, x.relpath, "gaussian_noise", 2)]  # fmt: skip
    draws = {tuple(mic.image_rng(*k).integers(0, 2**32, 4)) for k in keys}
    assert len(draws) == len(keys)


def test_read_back_with_imagenet_c_dataset(generated: Path, sample_dir: Path) -> None:
    classes = find_classes(sample_dir)
    clean = select_subset(index_folder(sample_dir)[1], 4)
    ds = ImageNetC(generated, "gaussian_noise", 3, classes)
    assert ds.relpaths == [x.relpath for x in clean]
    assert [s.label for s in ds.samples] == [x.label for x in clean]
    assert ImageNetC(generated, "contrast", 1, classes, limit=2).relpaths == [
        x.relpath for x in select_subset(index_folder(sample_dir)[1], 2)
    ]
    # the released layout (category level) is found too
    released = generated.parent / "released"
    shutil.copytree(generated / "contrast", released / "digital" / "contrast")
    assert ImageNetC(released, "contrast", 4, classes).fingerprint() == (
        ImageNetC(generated, "contrast", 4, classes).fingerprint()
    )


# --------------------------------------------------------------------------- determinism


def test_same_bytes_with_workers_and_across_runs(
    generated: Path, sample_dir: Path, tmp_path
) -> None:
    assert run(sample_dir, tmp_path / "w2", "--limit", "4", "--workers", "2") == 0
    assert tree_bytes(tmp_path / "w2") == tree_bytes(generated)
    assert run(sample_dir, tmp_path / "again", "--limit", "4", "--workers", "0") == 0
    assert tree_bytes(tmp_path / "again") == tree_bytes(generated)


def test_limit_and_seed(generated: Path, sample_dir: Path, tmp_path) -> None:
    # a smaller --limit gives a subset of the same files (per-image seeds)
    assert run(sample_dir, tmp_path / "l2", "--limit", "2", "--workers", "0") == 0
    small, big = tree_bytes(tmp_path / "l2"), tree_bytes(generated)
    images = [k for k in small if k.endswith(".JPEG")]
    assert len(images) == 2 * 6 and all(small[k] == big[k] for k in images)
    # another seed changes the random corruption only
    assert run(sample_dir, tmp_path / "s1", "--limit", "2", "--workers", "0", "--seed", "1") == 0
    other = tree_bytes(tmp_path / "s1")
    for k in images:
        assert (other[k] == small[k]) == k.startswith("contrast/"), k


def test_resume_with_other_settings_is_refused(generated: Path, sample_dir: Path, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(generated, out)
    assert run(sample_dir, out, "--limit", "4", "--workers", "0", "--seed", "7") == 2
    assert "seed=0" in capsys.readouterr().err
    assert tree_bytes(out) == tree_bytes(generated)


# ------------------------------------------------- clovaai/assembled-cnn's validation_292_256


def clovaai_resize_and_center_crop(img: Image.Image, resize_size: int, crop_size: int):
    """Transcribed from clovaai/assembled-cnn datasets/CE_dataset/CE_validation_generator.py
    (the generator of the assembled models' mCE data)."""
    w = img.size[0]
    h = img.size[1]
    if h > w:
        new_h = int(resize_size * (h / w))
        new_w = resize_size
    else:
        new_h = resize_size
        new_w = int(resize_size * (w / h))
    resized_img = img.resize((new_w, new_h), resample=Image.BILINEAR)
    h_start = int((new_h - crop_size) / 2)
    w_start = int((new_w - crop_size) / 2)
    return resized_img.crop((w_start, h_start, w_start + crop_size, h_start + crop_size))


def test_clovaai_geometry_equals_their_generators_frames(sample_dir: Path) -> None:
    """images.resize_center_crop(geometry="clovaai") is their resize_and_center_crop on every
    sample photo, at 292 -> 256 and 256 -> 224; torchvision's rounding is not (control)."""
    from robustbench_assemble.images import load_rgb, resize_center_crop

    differs = {}
    for resize, crop in ((292, 256), (256, 224)):
        differs[resize] = 0
        for path in sorted(sample_dir.glob("*/*"))[::4]:
            image = load_rgb(path)
            theirs = np.asarray(clovaai_resize_and_center_crop(image, resize, crop))
            assert np.array_equal(resize_center_crop(image, resize, crop, "clovaai"), theirs)
            differs[resize] += not np.array_equal(resize_center_crop(image, resize, crop), theirs)
    assert differs[292] > 10 and differs[256] > 10  # ~12 % of photos shift by one pixel


def test_generates_clovaais_validation_292_256(sample_dir: Path, tmp_path: Path, capsys) -> None:
    """--resize 292 --crop 256 --geometry clovaai: their frames, the reference's corruption at
    256 px (contrast: deterministic), the q85 save; recorded and enforced on resume."""
    reference.load()
    out = tmp_path / "c256"
    argv = ["--src", str(sample_dir), "--out", str(out), "--corruptions", "contrast",
            "--severities", "2", "--limit", "3", "--workers", "0", "--no-progress"]  # fmt: skip
    frames = ["--resize", "292", "--crop", "256", "--geometry", "clovaai"]
    assert mic.main([*argv, *frames]) == 0
    _, samples = index_folder(sample_dir)
    for x in select_subset(samples, 3):
        crop = np.asarray(clovaai_resize_and_center_crop(Image.open(x.path).convert("RGB"),
                                                         292, 256))  # fmt: skip
        ref = q85(reference.reference_corrupt(crop, "contrast", 2))
        assert (out / "contrast" / "2" / x.relpath).read_bytes() == ref, x.relpath
    rec = json.loads((out / "contrast" / "2.json").read_text())
    assert rec["frames"] == {"resize": 292, "crop": 256, "geometry": "clovaai"}
    # resuming with the default frames is refused, naming the setting
    capsys.readouterr()
    assert mic.main(argv) == 2
    assert "frames=" in capsys.readouterr().err
    # a record written before frames were recorded means the default 256 -> 224 frames
    old = tmp_path / "old"
    assert mic.main(["--src", str(sample_dir), "--out", str(old), *argv[4:]]) == 0
    record = json.loads((old / "contrast" / "2.json").read_text())
    del record["frames"]
    (old / "contrast" / "2.json").write_text(json.dumps(record))
    assert mic.main(["--src", str(sample_dir), "--out", str(old), *argv[4:]]) == 0
    assert mic.main(["--src", str(sample_dir), "--out", str(old), *argv[4:], *frames]) == 2
    # files without any record are not described as frames of another size
    (old / "contrast" / "2.json").unlink()
    capsys.readouterr()
    assert mic.main(["--src", str(sample_dir), "--out", str(old), *argv[4:], *frames]) == 2
    assert "already holds 224x224 files but no record" in capsys.readouterr().err
    assert not (old / "contrast" / "2.json").exists()


# --------------------------------------------------------------------------- resume


def test_resume_writes_only_missing_files(generated: Path, sample_dir: Path, tmp_path) -> None:
    out = tmp_path / "partial"
    shutil.copytree(generated, out)
    files = sorted(p for p in out.rglob("*.JPEG"))
    removed = files[::5]
    for p in removed:
        p.unlink()
    stale = temp_path_for(files[1])
    stale.write_bytes(b"half a jpeg")
    old_mtime = {p: p.stat().st_mtime_ns for p in files if p not in removed}
    summary = mic.generate(
        sample_dir, out, corruptions=["contrast", "gaussian_noise"], severities=[1, 4, 3],
        limit=4, progress=False,
    )  # fmt: skip
    assert (summary.written, summary.skipped, summary.failed) == (
        len(removed), len(files) - len(removed), []
    )  # fmt: skip
    assert summary.stale_temp_removed == 1 and not stale.exists()
    assert tree_bytes(out) == tree_bytes(generated)
    assert all(p.stat().st_mtime_ns == t for p, t in old_mtime.items())


def test_interrupted_run_leaves_only_whole_files(
    generated: Path, sample_dir: Path, tmp_path, monkeypatch
) -> None:
    calls = {"n": 0}
    real = corruptions_pkg.corrupt

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(corruptions_pkg, "corrupt", interrupted)
    out = tmp_path / "int"
    assert run(sample_dir, out, "--limit", "4", "--workers", "0") == 130
    partial = tree_bytes(out)
    assert 6 == sum(k.endswith(".JPEG") for k in partial)
    assert not [k for k in partial if is_temp_file(k)]
    monkeypatch.setattr(corruptions_pkg, "corrupt", real)
    assert run(sample_dir, out, "--limit", "4", "--workers", "0") == 0
    assert tree_bytes(out) == tree_bytes(generated)


def test_killed_process_resumes(generated: Path, sample_dir: Path, tmp_path) -> None:
    """SIGKILL a real run (workers 0) once some files exist; the rerun completes identically."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "robustbench_assemble.make_imagenet_c", "--src", str(sample_dir),
           "--out", str(out), *ARGS, "--limit", "4", "--workers", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(out.rglob("*.JPEG"))) >= 3:
            break
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    for p in out.rglob("*.JPEG"):  # whatever exists is a whole file
        assert p.read_bytes() == (generated / p.relative_to(out)).read_bytes()
    assert run(sample_dir, out, "--limit", "4", "--workers", "0") == 0
    assert tree_bytes(out) == tree_bytes(generated)


# --------------------------------------------------------------------------- bad inputs


def _photo(seed: int, size=(300, 260)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture
def odd_src(tmp_path: Path) -> Path:
    """A val folder with grayscale, CMYK and palette photos, a truncated JPEG, a non-image."""
    src = tmp_path / "val"
    for d in ("n00000001", "n00000002", "n00000003"):
        (src / d).mkdir(parents=True)
    _photo(1).convert("L").save(src / "n00000001" / "gray.JPEG", quality=95)
    _photo(2).convert("CMYK").save(src / "n00000001" / "cmyk.JPEG", quality=95)
    _photo(3, (260, 400)).convert("P").save(src / "n00000002" / "palette.png")
    buf = io.BytesIO()
    _photo(4).save(buf, format="JPEG", quality=95)
    (src / "n00000002" / "truncated.JPEG").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (src / "n00000003" / "notes.JPEG").write_text("this is not an image\n")
    _photo(5).save(src / "n00000003" / "fine.JPEG", quality=95)
    return src


def test_gray_cmyk_palette_converted_like_pil_loader(odd_src: Path, tmp_path: Path) -> None:
    reference.load()
    out = tmp_path / "out"
    summary = mic.generate(
        odd_src, out, corruptions=["contrast"], severities=[2], progress=False
    )  # fmt: skip
    assert summary.written == 4 and len(summary.failed) == 2
    for rel, name in [("n00000001/gray.JPEG", None), ("n00000001/cmyk.JPEG", None),
                      ("n00000002/palette.png", "n00000002/palette.png.JPEG")]:  # fmt: skip
        want = q85(reference.reference_corrupt(torchvision_crop(odd_src / rel), "contrast", 2))
        got = out / "contrast" / "2" / (name or rel)
        assert got.read_bytes() == want, rel
        with Image.open(got) as im:
            assert im.format == "JPEG" and im.mode == "RGB"


def test_bad_files_reported_and_run_continues(odd_src: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert mic.main(["--src", str(odd_src), "--out", str(out), "--corruptions", "contrast",
                     "--severities", "1", "--workers", "0", "--no-progress"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert str(odd_src / "n00000002" / "truncated.JPEG") in err
    assert str(odd_src / "n00000003" / "notes.JPEG") in err
    assert "4 images" in err and "2 images failed" in err
    assert (out / "contrast" / "1" / "n00000003" / "fine.JPEG").exists()
    assert not (out / "contrast" / "1" / "n00000003" / "notes.JPEG").exists()
    # a rerun retries the failed ones only, and fails the same way
    summary = mic.generate(odd_src, out, corruptions=["contrast"], severities=[1], progress=False)
    assert (summary.written, summary.skipped, len(summary.failed)) == (0, 4, 2)


def test_strict_stops_at_first_bad_file(odd_src: Path, tmp_path: Path) -> None:
    summary = mic.generate(
        odd_src, tmp_path / "o", corruptions=["contrast"], severities=[1], strict=True,
        progress=False,
    )  # fmt: skip
    assert len(summary.failed) == 1 and "cmyk" not in summary.failed[0]
    # sorted order: n00000001/{cmyk,gray}, n00000002/{palette,truncated} -> stops there
    assert "truncated.JPEG" in summary.failed[0]
    assert summary.images == 3
    assert summary.stopped_early and "stopped early" in summary.text()
    assert "worker processes" not in summary.text()  # --workers 0: nobody else wrote files


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--severities", "0"], "severity"),
        (["--corruptions", "fogg"], "unknown corruption 'fogg'"),
        (["--limit", "0"], "--limit"),
        (["--workers", "-1"], "--workers"),
        (["--device", "tpu"], "--device must be"),
        (["--backend", "numpy", "--device", "cuda"], "numpy backend"),
        (["--crop", "16"], "--crop must be >= 32"),
        (["--resize", "200", "--crop", "224"], "--resize (200) must be >= --crop (224)"),
        (["--geometry", "cv2"], "--geometry"),
    ],
)
def test_bad_arguments(odd_src: Path, tmp_path: Path, capsys, extra, message) -> None:
    argv = ["--src", str(odd_src), "--out", str(tmp_path / "o"), "--no-progress", *extra]
    assert mic.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_src_folders(tmp_path: Path, capsys) -> None:
    out = ["--out", str(tmp_path / "o"), "--no-progress"]
    assert mic.main(["--src", str(tmp_path / "missing"), *out]) == 2
    assert "missing does not exist" in capsys.readouterr().err
    flat = tmp_path / "flat"
    flat.mkdir()
    _photo(0).save(flat / "ILSVRC2012_val_00000001.JPEG")
    assert mic.main(["--src", str(flat), *out]) == 2
    assert "no class folders" in capsys.readouterr().err
    (flat / "n01440764").mkdir()
    assert mic.main(["--src", str(flat), *out]) == 2
    assert "n01440764 holds no image files" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_unwritable_outputs_are_user_errors_naming_the_path(
    odd_src: Path, tmp_path: Path, capsys, workers
) -> None:
    """A file where a class folder belongs, or a folder at a file's name: exit status 2 and one
    line naming the path (was a FileExistsError traceback, or the folder counted as 'already
    there'), also from worker processes."""
    argv = ["--src", str(odd_src), "--corruptions", "contrast", "--severities", "1",
            "--workers", workers, "--no-progress"]  # fmt: skip
    blocked = tmp_path / "a" / "contrast" / "1" / "n00000001"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    assert mic.main([*argv, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "error: cannot write" in err and "n00000001" in err and "Traceback" not in err
    assert "a file is where a folder belongs" in err
    folder = tmp_path / "b" / "contrast" / "1" / "n00000003" / "fine.JPEG"
    folder.mkdir(parents=True)
    assert mic.main([*argv, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {folder}: Is a directory" in err
    assert ".tmp" not in err  # the final name is the culprit, not the temporary file


def test_out_inside_src_is_refused(odd_src: Path, capsys) -> None:
    """--out inside --src: a rerun would index the output as class folders and corrupt it again."""
    out = odd_src / "c"
    argv = ["--src", str(odd_src), "--out", str(out), "--corruptions", "contrast",
            "--severities", "1", "--workers", "0", "--no-progress"]  # fmt: skip
    assert mic.main(argv) == 2
    assert "is inside --src" in capsys.readouterr().err
    assert not out.exists()


def test_read_only_output_folder_is_refused_up_front(tmp_path: Path, monkeypatch) -> None:
    """A read-only --out (os.access says no; root on a read-only mount too) fails before any
    work with the path, not with an [Errno 30] traceback at the first write."""
    from robustbench_assemble.atomic import OutputError, check_output_folder

    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode)
    )
    with pytest.raises(OutputError, match=r"--out .*new/sub: cannot write there \(in .*\)"):
        check_output_folder(tmp_path / "new" / "sub")
    with pytest.raises(OutputError, match="cannot write there: read-only"):
        check_output_folder(tmp_path, "--out")
    check_output_folder(tmp_path.parent)  # writable: fine
    # a folder above that cannot be searched: Path.exists raises PermissionError
    real_exists = Path.exists

    def exists(self, *args, **kwargs):
        if self == tmp_path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(OutputError, match=r"cannot reach .* \(no permission\)"):
        check_output_folder(tmp_path / "x")


# --------------------------------------------------------------------------- torch backend


def test_torch_backend_on_cpu_deterministic_and_resumable(sample_dir: Path, tmp_path) -> None:
    if not hasattr(corruptions_pkg, "corrupt_batch"):
        pytest.skip("corrupt_batch not available")
    kw = dict(corruptions=["contrast", "gaussian_noise"], severities=[2], limit=5,
              backend="torch", batch_size=2, workers=2, progress=False)  # fmt: skip
    a, b = tmp_path / "a", tmp_path / "b"
    assert mic.generate(sample_dir, a, **kw).written == 10
    assert mic.generate(sample_dir, b, **{**kw, "workers": 0}).written == 10
    assert tree_bytes(a) == tree_bytes(b)
    victim = sorted(b.rglob("*.JPEG"))[3]
    victim.unlink()
    s = mic.generate(sample_dir, b, **kw)
    assert (s.written, s.skipped) == (1, 9)
    assert tree_bytes(a) == tree_bytes(b)
    # contrast is deterministic: the torch backend writes the reference bytes as well
    reference.load()
    for p in (a / "contrast" / "2").rglob("*.JPEG"):
        src = sample_dir / p.relative_to(a / "contrast" / "2")
        assert p.read_bytes() == q85(
            reference.reference_corrupt(torchvision_crop(src), "contrast", 2)
        )
    assert json.loads((a / "contrast" / "2.json").read_text())["batch_size"] == 2


def test_torch_backend_limit_changes_only_on_batch_boundaries(sample_dir: Path, tmp_path) -> None:
    """Torch batches are seeded from their images: growing a cell from 5 to 6 images with
    batches of 2 would recompute image 6 in a batch whose image 5 stays from the old stream."""
    if not hasattr(corruptions_pkg, "corrupt_batch"):
        pytest.skip("corrupt_batch not available")
    kw = dict(corruptions=["gaussian_noise"], severities=[2], backend="torch", batch_size=2,
              workers=0, progress=False)  # fmt: skip
    out, fresh = tmp_path / "grow", tmp_path / "fresh"
    mic.generate(sample_dir, out, limit=5, **kw)
    with pytest.raises(ValueError, match="from 5 images, this run selects 6"):
        mic.generate(sample_dir, out, limit=6, **kw)
    # 4 -> 6 on a batch boundary: the same bytes as a fresh run of 6
    mic.generate(sample_dir, tmp_path / "b", limit=4, **kw)
    mic.generate(sample_dir, tmp_path / "b", limit=6, **kw)
    mic.generate(sample_dir, fresh, limit=6, **kw)
    assert tree_bytes(tmp_path / "b" / "gaussian_noise" / "2") == tree_bytes(
        fresh / "gaussian_noise" / "2"
    )
    assert json.loads((tmp_path / "b" / "gaussian_noise" / "2.json").read_text())["images"] == 6


@pytest.mark.gpu
def test_cuda_generation_is_deterministic(sample_dir: Path, tmp_path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    args = ["--corruptions", "gaussian_noise,glass_blur,snow", "--severities", "3", "--limit", "8",
            "--device", "cuda", "--batch-size", "4", "--no-progress"]  # fmt: skip
    for name in ("a", "b"):
        assert mic.main(["--src", str(sample_dir), "--out", str(tmp_path / name), *args]) == 0
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert len([k for k in tree_bytes(tmp_path / "a") if k.endswith(".JPEG")]) == 24


@pytest.mark.slow
def test_all_corruptions_workers_and_reader(sample_dir: Path, tmp_path) -> None:
    """All 19 corruptions at severity 3 on 12 images, 2 workers vs in-process, read back."""
    args = ["--corruptions", "all", "--severities", "3", "--limit", "12", "--no-progress"]
    for name, w in (("w0", "0"), ("w2", "2")):
        argv = ["--src", str(sample_dir), "--out", str(tmp_path / name), *args, "--workers", w]
        assert mic.main(argv) == 0
    assert tree_bytes(tmp_path / "w0") == tree_bytes(tmp_path / "w2")
    classes = find_classes(sample_dir)
    clean = select_subset(index_folder(sample_dir)[1], 12)
    for c in corruptions_pkg.CORRUPTIONS:
        ds = ImageNetC(tmp_path / "w0", c, 3, classes)
        assert ds.relpaths == [x.relpath for x in clean]
        x, y = ds[5]
        assert x.shape == (3, 224, 224) and y == clean[5].label


# --------------------------------------------------------------------------- atomic helpers


def test_atomic_write_replaces_and_cleans_up(tmp_path: Path) -> None:
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    with pytest.raises(RuntimeError), atomic_writer(p) as f:
        f.write(b"half")
        raise RuntimeError("killed mid-write")
    assert p.read_bytes() == b"two"  # old content survives, no temp left
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.bin"]
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "perm", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "perm").stat().st_mode & 0o777 == 0o644


def test_atomic_json(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    atomic_write_json(p, {"b": 1, "a": [1.5, None]}, sort_keys=True)
    assert json.loads(p.read_text()) == {"a": [1.5, None], "b": 1}
    assert p.read_text().endswith("\n")
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "bad.json", {"x": object()})
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "nan.json", {"x": float("nan")}, allow_nan=False)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.json"]


def test_temp_names_recognised_and_removed(tmp_path: Path) -> None:
    t = temp_path_for(tmp_path / "x" / "ILSVRC2012_val_00000001.JPEG")
    assert t.parent == tmp_path / "x" and is_temp_file(t) and t.name.startswith(".")
    for name in ("a.JPEG", ".hidden", ".a.JPEG.tmp", "a.0123456789ab.tmp", ".a.xyz012345678.tmp"):
        assert not is_temp_file(name), name
    t.parent.mkdir()
    t.write_bytes(b"")
    keep = tmp_path / "x" / "keep.JPEG"
    keep.write_bytes(b"k")
    assert remove_temp_files(tmp_path) == [t]
    assert not t.exists() and keep.exists()
    assert remove_temp_files(tmp_path / "missing") == []


def test_backends_write_byte_identical_files_for_deterministic_corruptions(sample_dir, tmp_path):
    """On the CPU corrupt_batch is bit-identical to the reference for the 8 deterministic
    corruptions, so the torch backend writes the numpy backend's files byte for byte (3
    photos x 5 severities); random ones differ by their draws."""
    from robustbench_assemble.corruptions import DETERMINISTIC

    common = ["--src", str(sample_dir), "--limit", "3", "--no-progress",
              "--corruptions", ",".join(sorted(DETERMINISTIC))]  # fmt: skip
    assert mic.main([*common, "--out", str(tmp_path / "np"), "--workers", "0"]) == 0
    assert mic.main([*common, "--out", str(tmp_path / "t"), "--backend", "torch"]) == 0
    files = sorted(p.relative_to(tmp_path / "np") for p in (tmp_path / "np").rglob("*.JPEG"))
    assert len(files) == 3 * 5 * len(DETERMINISTIC)
    for rel in files:
        assert (tmp_path / "np" / rel).read_bytes() == (tmp_path / "t" / rel).read_bytes(), rel


def test_resume_after_a_code_change_warns(generated: Path, sample_dir: Path, tmp_path, capsys):
    """The package version does not change between commits, the engine's code does (today's
    exact CPU paths changed random corruptions' pixels): a resumed cell says so."""
    out = tmp_path / "resumed"
    shutil.copytree(generated, out)
    rec_path = out / "contrast" / "1.json"
    rec = json.loads(rec_path.read_text())
    assert len(rec["versions"]["code"]) == 16
    rec["versions"]["code"] = "0" * 16
    rec_path.write_text(json.dumps(rec))
    capsys.readouterr()
    mic.generate(sample_dir, out, corruptions=["contrast"], severities=[1], limit=4, progress=False)
    err = capsys.readouterr().err
    assert "warning:" in err and "'code': '0000000000000000'" in err
    assert "two code or library versions" in err
