"""Dataset readers: val folder indexing (vs torchvision ImageFolder), --limit subset, ImageNet-C
layouts, fingerprints."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_assemble.datasets import (
    ImageNetC,
    ImageNetVal,
    available_cells,
    corrupted_relpath,
    find_cell,
    find_classes,
    fingerprint,
    index_cell,
    index_folder,
    interleave_classes,
    select_subset,
)

# --------------------------------------------------------------------------- synthetic trees


def _write_jpeg(path: Path, size=(40, 30), value: int = 0, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path, format="JPEG", quality=90)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """3 classes: a (3 images, mixed-case extensions), b (1), c (2 + a sub-folder image)."""
    root = tmp_path / "val"
    _write_jpeg(root / "n0000000a" / "img_2.JPEG", value=1)
    _write_jpeg(root / "n0000000a" / "img_1.jpg", value=2)
    _write_jpeg(root / "n0000000a" / "img_3.jpeg", value=3)
    _write_jpeg(root / "n0000000b" / "img_9.JPEG", value=4)
    _write_jpeg(root / "n0000000c" / "x_1.JPEG", value=5)
    _write_jpeg(root / "n0000000c" / "sub" / "x_0.JPEG", value=6)
    # not images: ignored like ImageFolder (extension) / hidden files and temp files
    (root / "n0000000a" / "notes.txt").write_text("hello")
    (root / "n0000000b" / "._img_9.JPEG").write_bytes(b"\x00\x05\x16\x07")
    (root / "n0000000c" / ".x_1.JPEG.0123456789ab.tmp").write_bytes(b"partial")
    (root / "README").write_text("top-level file, not a class")
    return root


# --------------------------------------------------------------------------- imagenet.py


def test_index_matches_torchvision_imagefolder(tree: Path) -> None:
    from torchvision.datasets import ImageFolder

    # hidden files are the one deliberate difference (ImageFolder would try to decode them)
    (tree / "n0000000b" / "._img_9.JPEG").unlink()
    ref = ImageFolder(str(tree))
    classes, samples = index_folder(tree)
    assert classes == ref.classes
    assert [(str(s.path), s.label) for s in samples] == sorted(ref.samples)


def test_index_labels_relpaths_and_hidden_files(tree: Path) -> None:
    classes, samples = index_folder(tree)
    assert classes == ["n0000000a", "n0000000b", "n0000000c"]
    assert [s.relpath for s in samples] == [
        "n0000000a/img_1.jpg",
        "n0000000a/img_2.JPEG",
        "n0000000a/img_3.jpeg",
        "n0000000b/img_9.JPEG",
        "n0000000c/sub/x_0.JPEG",
        "n0000000c/x_1.JPEG",
    ]
    assert [s.label for s in samples] == [0, 0, 0, 1, 2, 2]
    assert samples[4].wnid == "n0000000c"


def test_index_with_given_class_list(tree: Path) -> None:
    classes = ["n00000000", "n0000000a", "n0000000b", "n0000000c", "n0000000z"]
    got, samples = index_folder(tree, classes)
    assert got == classes
    assert {s.wnid: s.label for s in samples} == {"n0000000a": 1, "n0000000b": 2, "n0000000c": 3}
    with pytest.raises(ValueError, match="n0000000c"):
        index_folder(tree, ["n0000000a", "n0000000b"])


def test_index_errors_name_the_folder(tmp_path: Path, tree: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_classes(tmp_path / "nowhere")
    f = tmp_path / "file.JPEG"
    f.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="file.JPEG"):
        find_classes(f)
    flat = tmp_path / "flat"
    _write_jpeg(flat / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(FileNotFoundError, match="no class folders in .*flat"):
        index_folder(flat)
    (tree / "n0000000d").mkdir()
    (tree / "n0000000d" / "readme.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="n0000000d holds no image files"):
        index_folder(tree)


def test_select_subset_round_robin(tree: Path) -> None:
    _, samples = index_folder(tree)
    order = [s.relpath for s in interleave_classes(samples)]
    assert order == [
        "n0000000a/img_1.jpg",
        "n0000000b/img_9.JPEG",
        "n0000000c/sub/x_0.JPEG",
        "n0000000a/img_2.JPEG",
        "n0000000c/x_1.JPEG",
        "n0000000a/img_3.jpeg",
    ]
    four = select_subset(samples, 4)
    assert [s.relpath for s in four] == sorted(order[:4])
    # independent of the order the samples come in
    assert select_subset(list(reversed(samples)), 4) == four
    assert select_subset(samples, None) == samples
    assert select_subset(samples, 100) == samples
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="limit"):
            select_subset(samples, bad)


def test_select_subset_one_per_class_on_the_sample(sample_dir: Path) -> None:
    _, samples = index_folder(sample_dir)
    sub = select_subset(samples, 10)
    assert [s.label for s in sub] == list(range(10))


def test_fingerprint_stable_and_sensitive(tree: Path, tmp_path: Path) -> None:
    _, samples = index_folder(tree)
    fp = fingerprint(samples)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fingerprint(reversed(samples)) == fp
    moved = tmp_path / "elsewhere" / "val"
    shutil.copytree(tree, moved)
    assert fingerprint(index_folder(moved)[1]) == fp  # location does not matter
    (moved / "n0000000b" / "img_9.JPEG").write_bytes(b"different size")
    assert fingerprint(index_folder(moved)[1]) != fp
    assert fingerprint(samples[:-1]) != fp


def test_imagenet_val_matches_torchvision_transforms(sample_dir: Path) -> None:
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    ds = ImageNetVal(sample_dir, limit=3)
    ref = ImageFolder(str(sample_dir))
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.PILToTensor()])
    for i, s in enumerate(ds.samples):
        x, y = ds[i]
        assert x.dtype == torch.uint8 and x.shape == (3, 224, 224)
        assert y == ref.class_to_idx[s.wnid]
        assert torch.equal(x, tf(ref.loader(str(s.path))))
    # another evaluation size (the assembled ResNets: 292 -> 256) and a transform
    ds2 = ImageNetVal(sample_dir, resize=292, crop=256, limit=1, transform=lambda t: t.float())
    x, _ = ds2[0]
    tf2 = T.Compose([T.Resize(292), T.CenterCrop(256), T.PILToTensor()])
    assert x.dtype == torch.float32
    assert torch.equal(x, tf2(ref.loader(str(ds2.samples[0].path))).float())
    assert ds.fingerprint() == fingerprint(ds.samples)


# --------------------------------------------------------------------------- imagenet_c.py


def _make_cell(root: Path, relpaths, size=(224, 224)) -> None:
    for i, r in enumerate(relpaths):
        _write_jpeg(root / r, size=size, value=100 + i)


def test_find_cell_both_layouts(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    _make_cell(ours / "contrast" / "2", ["n0000000a/a.JPEG"])
    released = tmp_path / "released"
    _make_cell(released / "digital" / "contrast" / "2", ["n0000000a/a.JPEG"])
    _make_cell(released / "noise" / "gaussian_noise" / "5", ["n0000000a/a.JPEG"])
    assert find_cell(ours, "contrast", 2) == ours / "contrast" / "2"
    assert find_cell(released, "contrast", 2) == released / "digital" / "contrast" / "2"
    assert available_cells(released) == {"gaussian_noise": (5,), "contrast": (2,)}
    assert available_cells(ours) == {"contrast": (2,)}

    with pytest.raises(FileNotFoundError, match=r"contrast severity 3 .*severities 2 only"):
        find_cell(ours, "contrast", 3)
    with pytest.raises(FileNotFoundError, match=r"fog severity 1 .*weather/fog/1.*absent"):
        find_cell(released, "fog", 1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_cell(tmp_path / "missing", "fog", 1)
    with pytest.raises(ValueError, match="unknown corruption"):
        find_cell(ours, "fogg", 1)
    with pytest.raises(ValueError, match="severity"):
        find_cell(ours, "fog", 0)
    _make_cell(ours / "digital" / "contrast" / "2", ["n0000000a/a.JPEG"])
    with pytest.raises(ValueError, match="exists twice"):
        find_cell(ours, "contrast", 2)


def test_imagenet_c_dataset_decodes_without_resize(tmp_path: Path) -> None:
    classes = ["n0000000a", "n0000000b", "n0000000c"]
    cell = tmp_path / "c" / "blur" / "zoom_blur" / "4"
    _make_cell(cell, ["n0000000c/z.JPEG", "n0000000c/y.JPEG"])
    _write_jpeg(cell / "n0000000c" / "odd.JPEG", size=(230, 224), value=7)  # not 224 wide
    ds = ImageNetC(tmp_path / "c", "zoom_blur", 4, classes)
    assert ds.relpaths == ["n0000000c/odd.JPEG", "n0000000c/y.JPEG", "n0000000c/z.JPEG"]
    for i, s in enumerate(ds.samples):
        x, y = ds[i]
        assert y == 2  # label from the given class order, not the cell's own folders
        ref = np.asarray(Image.open(s.path).convert("RGB"))
        assert x.dtype == torch.uint8
        assert torch.equal(x, torch.from_numpy(ref).permute(2, 0, 1))
    assert ds[0][0].shape == (3, 224, 230)  # served as stored: never resized


def test_imagenet_c_subset_matches_clean_subset(tree: Path, tmp_path: Path) -> None:
    classes, clean = index_folder(tree)
    root = tmp_path / "c"
    _make_cell(root / "fog" / "1", [corrupted_relpath(s.relpath) for s in clean])
    for limit in (1, 2, 4, 5):
        want = [s.relpath for s in select_subset(clean, limit)]
        assert ImageNetC(root, "fog", 1, classes, limit=limit).relpaths == want
        by_rel = ImageNetC(root, "fog", 1, classes, relpaths=want)
        assert by_rel.relpaths == want
        assert [s.label for s in by_rel.samples] == [s.label for s in select_subset(clean, limit)]
    (root / "fog" / "1" / "n0000000a" / "img_1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 requested .*n0000000a/img_1.jpg"):
        index_cell(
            root, "fog", 1, classes, relpaths=["n0000000a/img_1.jpg", "n0000000b/img_9.JPEG"]
        )
    with pytest.raises(ValueError, match="either"):
        index_cell(root, "fog", 1, classes, relpaths=[], limit=1)


def test_corrupted_relpath_keeps_jpeg_names() -> None:
    assert corrupted_relpath("n01/ILSVRC2012_val_00000293.JPEG") == (
        "n01/ILSVRC2012_val_00000293.JPEG"
    )
    assert corrupted_relpath("n01/a.jpg") == "n01/a.jpg"
    assert corrupted_relpath("n01/a.png") == "n01/a.png.JPEG"


def test_imagenet_c_fingerprint_stable(tmp_path: Path) -> None:
    classes = ["n0000000a"]
    _make_cell(tmp_path / "a" / "snow" / "3", ["n0000000a/1.JPEG", "n0000000a/2.JPEG"])
    shutil.copytree(tmp_path / "a" / "snow", tmp_path / "b" / "weather" / "snow")
    fa = ImageNetC(tmp_path / "a", "snow", 3, classes).fingerprint()
    fb = ImageNetC(tmp_path / "b", "snow", 3, classes).fingerprint()
    assert fa == fb  # same files in either layout
    assert ImageNetC(tmp_path / "a", "snow", 3, classes, limit=1).fingerprint() != fa
