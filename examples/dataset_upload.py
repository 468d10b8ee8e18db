"""Upload a dataset folder to teamspace storage with a progress line, then check it.

    python examples/dataset_upload.py                       # synthetic data, built-in emulator
    python examples/dataset_upload.py --dir ./data --to lit:///datasets/mnist \\
        --url https://lightning.ai --teamspace my-team      # your data, the real service

Files go up concurrently, big ones in parallel parts; memory stays bounded by the client's
byte budget, and an interrupted upload resumes where it stopped. The progress callback
receives one shared ``TransferProgress`` (bytes and files, done and total).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiolightning import AsyncLightning, TransferProgress
from aiolightning.cli import run_script


@contextlib.asynccontextmanager
async def connect(url: str | None, teamspace: str | None) -> AsyncIterator[AsyncLightning]:
    """A client for ``url``; without one, for an emulator started just for this script."""
    if url:
        async with AsyncLightning(url, teamspace=teamspace) as client:
            yield client
        return
    from aiolightning.emulator import Emulator

    async with Emulator() as emu:
        async with AsyncLightning(
            emu.url, user_id=emu.user_id, api_key=emu.api_key, teamspace=emu.teamspace_name
        ) as client:
            yield client


def make_synthetic_dataset(root: Path, shards: int, shard_mib: int) -> None:
    """train/shard-NNNN.bin files of random bytes, plus a small labels file."""
    (root / "train").mkdir(parents=True)
    for i in range(shards):
        (root / "train" / f"shard-{i:04d}.bin").write_bytes(os.urandom(shard_mib * 2**20))
    (root / "labels.csv").write_text("".join(f"{i},{i % 10}\n" for i in range(1000)))


class ProgressLine:
    """Prints bytes done, MB/s and files done at most twice a second."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.last = 0.0

    def __call__(self, p: TransferProgress) -> None:
        now = time.perf_counter()
        if now - self.last < 0.5 and p.bytes_done < p.bytes_total:
            return
        self.last = now
        rate = p.bytes_done / max(now - self.start, 1e-9) / 1e6
        print(
            f"  {p.bytes_done / 2**20:8.1f} / {p.bytes_total / 2**20:.1f} MiB  "
            f"{rate:7.1f} MB/s  files {p.files_done}/{p.files_total}"
        )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.dir) if args.dir else Path(tmp) / "dataset"
        if not args.dir:
            make_synthetic_dataset(source, args.shards, args.shard_mib)

        async with connect(args.url, args.teamspace) as client:
            # 1. upload the folder (relative paths are kept under the destination)
            print(f"uploading {source} to {args.to}")
            uploaded = await client.storage.upload_dir(source, args.to, progress=ProgressLine())
            print(f"uploaded {len(uploaded)} files")

            # 2. list what is there now
            remote = {f.path: f.size async for f in client.storage.list(args.to, recursive=True)}
            local = {
                p.relative_to(source).as_posix(): p.stat().st_size
                for p in source.rglob("*")
                if p.is_file()
            }
            print(f"remote listing matches local files: {remote == local}")

            # 3. download one file back and compare checksums
            name = sorted(local)[0]
            back = Path(tmp) / "check.bin"
            await client.storage.download(f"{args.to.rstrip('/')}/{name}", back)
            same = sha256(back) == sha256(source / name)
            print(f"{name} round trip sha256 matches: {same}")
            return 0 if remote == local and same else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="service URL (default: start a local emulator)")
    parser.add_argument("--teamspace", help="teamspace name (default: LIGHTNING_TEAMSPACE)")
    parser.add_argument("--dir", help="folder to upload (default: make a synthetic dataset)")
    parser.add_argument("--to", default="lit:///datasets/synthetic", help="destination URL")
    parser.add_argument("--shards", type=int, default=16, help="synthetic: number of files")
    parser.add_argument("--shard-mib", type=int, default=4, help="synthetic: MiB per file")
    # like the aiolightning command: a failure is one line (no credentials: exit code 3)
    raise SystemExit(run_script(main(parser.parse_args())))
