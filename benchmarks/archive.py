"""Benchmark 4: archive a video from the simulator into S3 (moto's server, real HTTP): its
time against each of its two legs measured alone, and its peak memory.

    .venv/bin/python benchmarks/archive.py --size-mib 32      # a typical video: one PutObject
    .venv/bin/python benchmarks/archive.py --size-mib 1024    # above SINGLE_PUT_MAX: spooled, in parts

Legs, in the same run: a plain download of the video (read and dropped), and a plain upload
of as many bytes to the same S3 the way the archiver's path uploads them (one PutObject from
memory up to SINGLE_PUT_MAX; above it, a multipart upload from a file on disk, of the same
part size and concurrency; S3's SHA-256 checksums on both, as the contract asks). Each leg
and the archive run `--runs` times, alternating; the medians are reported. Each run is a
child process of its own, so the archive's peak resident memory is the archiver's alone.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import tempfile
import time

import boto3
import httpx
from boto3.s3.transfer import TransferConfig
from common import print_table

from sora_relay.adapters.media.archive import SINGLE_PUT_MAX, S3VideoArchive
from sora_relay.adapters.media.client import vetted_client
from sora_relay.adapters.media.policy import MediaPolicy
from sora_relay_tools.local.stack import MotoServerProcess
from sora_relay_tools.simulator import GeminiGenSimulator

MIB = 1024 * 1024
BUCKET = "bench-archive"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def legs_in_child(url: str, size: int, part_mib: int, concurrency: int, results: multiprocessing.Queue) -> None:
    started = time.perf_counter()
    with httpx.Client(timeout=60) as client, client.stream("GET", url) as response:
        for _ in response.iter_bytes(1024 * 1024):
            pass
    download = time.perf_counter() - started
    block = b"\x5a" * MIB
    s3 = boto3.client("s3")
    if size <= SINGLE_PUT_MAX:
        body = block * (size // MIB) + block[: size % MIB]
        started = time.perf_counter()
        s3.put_object(Bucket=BUCKET, Key="legs/upload.bin", Body=body, ChecksumAlgorithm="SHA256")
        upload = time.perf_counter() - started
    else:
        config = TransferConfig(
            multipart_threshold=part_mib * MIB, multipart_chunksize=part_mib * MIB, max_concurrency=concurrency
        )
        with tempfile.TemporaryFile() as spooled:
            for _ in range(size // MIB):
                spooled.write(block)
            spooled.write(block[: size % MIB])
            spooled.flush()
            spooled.seek(0)
            started = time.perf_counter()
            extra = {"ChecksumAlgorithm": "SHA256"}
            s3.upload_fileobj(spooled, BUCKET, "legs/upload.bin", ExtraArgs=extra, Config=config)
            upload = time.perf_counter() - started
    results.put({"download": download, "upload": upload})


def archive_in_child(url: str, base_url: str, part_mib: int, concurrency: int, results: multiprocessing.Queue) -> None:
    archive = S3VideoArchive(
        boto3.client("s3"),
        vetted_client(MediaPolicy.parse("", base_url)),
        BUCKET,
        part_size=part_mib * MIB,
        concurrency=concurrency,
    )
    baseline = current_rss_mib()
    started = time.perf_counter()
    video = archive.copy(url, "videos/bench.mp4", "video/mp4", 600.0)
    seconds = time.perf_counter() - started
    results.put({"size": video.size, "seconds": seconds, "baseline": baseline, "peak": peak_rss_mib()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="Runs of each leg and of the archive; medians reported.")
    args = parser.parse_args()

    # moto accepts any credentials.
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # nosec B106
    runs: list[dict[str, float]] = []
    with MotoServerProcess() as moto, GeminiGenSimulator(video_size=args.size_mib * MIB) as simulator:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint_url
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        uuid = simulator._submit({"prompt": "benchmark"}, [])[1]["uuid"]
        url = f"{simulator.base_url}/media/{uuid}.mp4"
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue = context.Queue()
        for _ in range(args.runs):
            figures: dict[str, float] = {}
            for target, arguments in (
                (legs_in_child, (url, args.size_mib * MIB, args.part_mib, args.concurrency)),
                (archive_in_child, (url, simulator.base_url, args.part_mib, args.concurrency)),
            ):
                child = context.Process(target=target, args=(*arguments, results))
                child.start()
                figures.update(results.get(timeout=3600))
                child.join()
            runs.append(figures)

    def median(name: str) -> float:
        return statistics.median(run[name] for run in runs)

    def each(name: str) -> str:
        return " ".join(f"{run[name]:.2f}" for run in runs)

    size = runs[0]["size"]
    one_put = size <= SINGLE_PUT_MAX
    slower = max(median("download"), median("upload"))
    ratios = [run["seconds"] / max(run["download"], run["upload"]) for run in runs]
    rows: list[tuple[str, object]] = [
        ("download alone (s)", median("download")),
        (f"{'one PutObject' if one_put else 'multipart upload from disk'} alone (s)", median("upload")),
        ("sum of the legs (s): a download-then-upload copy", median("download") + median("upload")),
        ("archive, the final key written and verified (s)", median("seconds")),
        ("  / slower leg (of the medians)", median("seconds") / slower),
        ("  / slower leg, each run", " ".join(f"{ratio:.2f}" for ratio in ratios)),
        ("  archive, each run (s)", each("seconds")),
        ("resident memory before the copy (MiB)", median("baseline")),
        ("peak resident memory of the copy (MiB)", max(run["peak"] for run in runs)),
    ]
    path = "one PutObject" if one_put else f"spooled to disk, part {args.part_mib} MiB, {args.concurrency} in flight"
    print_table(
        f"4. archive: a {size / MIB:,.0f} MiB video ({path}); medians of {args.runs} runs", ("figure", "value"), rows
    )


if __name__ == "__main__":
    main()
