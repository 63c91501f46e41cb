"""Benchmark 4: archive a video from the simulator into S3 (moto's server, real HTTP): its
time against each of its two legs measured alone, and its peak memory.

    .venv/bin/python benchmarks/archive.py --size-mib 32      # a typical video: one PutObject
    .venv/bin/python benchmarks/archive.py --size-mib 1024    # above SINGLE_PUT_MAX: staged

Legs, in the same run: a plain download of the video (read and dropped), and a plain upload
of as many bytes to the same S3 the way the archiver's path uploads them (one PutObject up
to SINGLE_PUT_MAX; above it, a multipart upload of the same part size and concurrency). A
video above SINGLE_PUT_MAX is streamed to a staging key, then copied by S3 to its final key
(a server-side step the legs do not have: both figures are shown). The copy runs in a child
process of its own, so its peak resident memory is the archiver's alone.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time

import boto3
import httpx
from boto3.s3.transfer import TransferConfig
from common import print_table

from sora_relay.adapters.media import SINGLE_PUT_MAX, HashingReader, S3VideoArchive, make_media_client
from sora_relay.local.stack import MotoServerProcess
from sora_relay.media_policy import MediaPolicy
from sora_relay.simulator import GeminiGenSimulator

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
    reader = HashingReader(iter([block] * (size // MIB) + [block[: size % MIB]]), size)
    config = TransferConfig(
        multipart_threshold=part_mib * MIB, multipart_chunksize=part_mib * MIB, max_concurrency=concurrency
    )
    s3 = boto3.client("s3")
    started = time.perf_counter()
    if size <= SINGLE_PUT_MAX:
        s3.put_object(Bucket=BUCKET, Key="legs/upload.bin", Body=reader.read_whole())
    else:
        s3.upload_fileobj(reader, BUCKET, "legs/upload.bin", Config=config)  # type: ignore[arg-type]
    results.put({"download": download, "upload": time.perf_counter() - started})


def archive_in_child(
    url: str, base_url: str, part_mib: int, concurrency: int, single_put_max: int, results: multiprocessing.Queue
) -> None:
    s3 = boto3.client("s3")
    archive = S3VideoArchive(
        s3,
        make_media_client(MediaPolicy.parse("", base_url)),
        BUCKET,
        part_size=part_mib * MIB,
        concurrency=concurrency,
        single_put_max=single_put_max,
    )
    baseline = current_rss_mib()
    staged: list[float] = []
    # The moment the upload of the staged object ends, before S3's server-side copy.
    s3.meta.events.register("after-call.s3.CompleteMultipartUpload", lambda **_: staged.append(time.perf_counter()))
    started = time.perf_counter()
    video = archive.copy(url, "videos/bench.mp4", "video/mp4")
    seconds = time.perf_counter() - started
    streamed = (staged[0] - started) if staged else seconds
    results.put(
        {"size": video.size, "seconds": seconds, "streamed": streamed, "baseline": baseline, "peak": peak_rss_mib()}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    # moto accepts any credentials.
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # nosec B106
    with MotoServerProcess() as moto, GeminiGenSimulator(video_size=args.size_mib * MIB) as simulator:
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint_url
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        uuid = simulator._submit({"prompt": "benchmark"}, [])[1]["uuid"]
        url = f"{simulator.base_url}/media/{uuid}.mp4"
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue = context.Queue()
        figures = {}
        # Each run's figures, under its prefix (the legs and the archive name theirs apart).
        runs = [
            ("", legs_in_child, (url, args.size_mib * MIB, args.part_mib, args.concurrency)),
            ("", archive_in_child, (url, simulator.base_url, args.part_mib, args.concurrency, SINGLE_PUT_MAX)),
        ]
        if args.size_mib * MIB <= SINGLE_PUT_MAX:  # the same video through the staging key, as before
            runs.append(("staged_", archive_in_child, (url, simulator.base_url, args.part_mib, args.concurrency, 0)))
        for prefix, target, arguments in runs:
            child = context.Process(target=target, args=(*arguments, results))
            child.start()
            figures.update({prefix + name: value for name, value in results.get(timeout=3600).items()})
            child.join()

    size_mib = figures["size"] / MIB
    slower = max(figures["download"], figures["upload"])
    one_put = figures["size"] <= SINGLE_PUT_MAX
    rows: list[tuple[str, float]] = [
        ("download alone (s)", figures["download"]),
        (f"{'one PutObject' if one_put else 'multipart upload'} alone (s)", figures["upload"]),
        ("sum of the legs (s): a download-then-upload copy", figures["download"] + figures["upload"]),
    ]
    if not one_put:
        rows += [
            ("copy, streamed into the staged object (s)", figures["streamed"]),
            ("  / slower leg", figures["streamed"] / slower),
        ]
    rows += [
        ("archive, the final key written and verified (s)", figures["seconds"]),
        ("  / slower leg", figures["seconds"] / slower),
        ("resident memory before the copy (MiB)", figures["baseline"]),
        ("peak resident memory of the copy (MiB)", figures["peak"]),
    ]
    if "staged_seconds" in figures:
        rows += [
            ("the same through the staging key (s)", figures["staged_seconds"]),
            ("  / slower leg", figures["staged_seconds"] / slower),
            ("  peak resident memory (MiB)", figures["staged_peak"]),
        ]
    path = "one PutObject" if one_put else f"staged, part {args.part_mib} MiB, {args.concurrency} parts in flight"
    print_table(f"4. archive: a {size_mib:,.0f} MiB video ({path})", ("figure", "value"), rows)


if __name__ == "__main__":
    main()
