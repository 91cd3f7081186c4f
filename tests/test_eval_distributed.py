"""torchrun-style evaluation on CPU (gloo, 2 processes): counts equal the single-process run."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from robustbench_assemble.eval.distributed import shard_indices

pytest.importorskip("efficientnet_lite_pytorch")

MODEL = "efficientnet_lite0"
N_IMAGES = 5  # odd: the two ranks get 3 and 2 images, nothing padded or duplicated


def test_shards_cover_every_index_once():
    for n in range(0, 12):
        for world in (1, 2, 3, 5):
            got = sorted(i for r in range(world) for i in shard_indices(n, r, world))
            assert got == list(range(n))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, argv: list[str]) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    from robustbench_assemble.eval import main

    code = main(argv)
    if code != 0:
        raise SystemExit(code)


@pytest.fixture(scope="module")
def imagenet_c(sample_dir: Path, tmp_path_factory) -> Path:
    from robustbench_assemble.make_imagenet_c import main as make_c

    out = tmp_path_factory.mktemp("imagenet_c_dist")
    argv = ["--src", str(sample_dir), "--out", str(out), "--limit", str(N_IMAGES)]
    assert make_c([*argv, "--corruptions", "gaussian_noise", "--severities", "3"]) == 0
    return out


def _counts(out: Path) -> dict:
    d = json.loads((out / MODEL / "imagenet_c.json").read_text())["details"]
    return {"clean": d["clean"], "cell": d["cells"]["gaussian_noise"]["3"]}


def test_two_gloo_ranks_match_one_process(sample_dir, imagenet_c, tmp_path):
    from robustbench_assemble.eval import main

    def argv(out: Path) -> list[str]:
        return [
            "--model", MODEL, "--data", str(sample_dir), "--imagenet-c", str(imagenet_c),
            "--corruptions", "gaussian_noise", "--severities", "3", "--limit", str(N_IMAGES),
            "--out", str(out), "--no-figures", "--no-progress", "--workers", "0",
            "--batch-size", "2", "--device", "cpu",
        ]  # fmt: skip

    assert main(argv(tmp_path / "single")) == 0
    mp.spawn(_worker, args=(2, _free_port(), argv(tmp_path / "dist")), nprocs=2, join=True)
    single, dist = _counts(tmp_path / "single"), _counts(tmp_path / "dist")
    assert dist["clean"]["n"] == dist["cell"]["n"] == N_IMAGES
    assert dist == single
    meta = json.loads((tmp_path / "dist" / MODEL / "imagenet_c.json").read_text())
    assert meta["details"]["config"]["world_size"] == 2
