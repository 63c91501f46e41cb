"""Archive a large video from the simulator into S3 (moto's server, real HTTP) and report peak memory.

    .venv/bin/python benchmarks/archive_memory.py --size-mib 1024

The copy runs in a child process, so its peak resident memory is the archiver's alone
(the simulator and the S3 server run elsewhere); the child's resident memory just before
the copy is printed beside it, as the baseline of the same process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import socket
import subprocess  # nosec B404  # starts moto's server, our own interpreter
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import httpx

from sora_relay.adapters.media import S3VideoArchive, make_media_client
from sora_relay.media_policy import MediaPolicy
from sora_relay.simulator import GeminiGenSimulator

MIB = 1024 * 1024
BUCKET = "bench-archive"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(  # noqa: S603  # nosec B603  # our own interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/moto-api/", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def archive_in_child(url: str, base_url: str, part_mib: int, concurrency: int, results: multiprocessing.Queue) -> None:
    s3 = boto3.client("s3")
    archive = S3VideoArchive(
        s3,
        make_media_client(MediaPolicy.parse("", base_url)),
        BUCKET,
        part_size=part_mib * MIB,
        concurrency=concurrency,
    )
    baseline = current_rss_mib()
    started = time.perf_counter()
    video = archive.copy(url, "videos/bench.mp4", "video/mp4")
    seconds = time.perf_counter() - started
    results.put({"size": video.size, "seconds": seconds, "baseline": baseline, "peak": peak_rss_mib()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    # moto accepts any credentials.
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # nosec B106
    with moto_server() as endpoint, GeminiGenSimulator(video_size=args.size_mib * MIB) as simulator:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        uuid = simulator._submit({"prompt": "benchmark"}, [])[1]["uuid"]
        url = f"{simulator.base_url}/media/{uuid}.mp4"
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue = context.Queue()
        child = context.Process(
            target=archive_in_child, args=(url, simulator.base_url, args.part_mib, args.concurrency, results)
        )
        child.start()
        figures = results.get(timeout=3600)
        child.join()

    size_mib = figures["size"] / MIB
    print(f"archive of a {size_mib:,.0f} MiB video (part {args.part_mib} MiB, {args.concurrency} parts in flight)")
    print(f"{'figure':<34}{'value':>14}")
    print(f"{'time (s)':<34}{figures['seconds']:>14.1f}")
    print(f"{'throughput (MiB/s)':<34}{size_mib / figures['seconds']:>14.1f}")
    print(f"{'resident before the copy (MiB)':<34}{figures['baseline']:>14.1f}")
    print(f"{'peak resident (MiB)':<34}{figures['peak']:>14.1f}")
    print(f"{'peak growth / video size':<34}{(figures['peak'] - figures['baseline']) / size_mib:>14.3f}")


if __name__ == "__main__":
    main()
