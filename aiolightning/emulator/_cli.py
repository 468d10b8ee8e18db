"""`python -m aiolightning.emulator`: serve the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import signal
import sys
from collections.abc import Sequence

from ._config import EmulatorConfig, Faults, Timings
from ._server import Emulator
from ._tls import TLSUnavailableError

__all__ = ["main", "parser"]

PROG = "python -m aiolightning.emulator"


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    d, t = Faults(), Timings()
    p = argparse.ArgumentParser(
        prog=prog,
        description="A local emulator of the Lightning AI REST API.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=0, help="same seed, same ids and credentials")
    p.add_argument(
        "--json", action="store_true", help="print one JSON line with url, user_id, api_key, ..."
    )
    p.add_argument(
        "--admin", action="store_true", help="serve /_emulator/counters and /_emulator/config"
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a private CA made at start; prints the CA file to trust "
        "(needs the 'tls' extra)",
    )
    g = p.add_argument_group("faults")
    g.add_argument("--latency", type=float, default=d.latency, help="seconds added to each request")
    g.add_argument(
        "--jitter", type=float, default=d.latency_jitter, help="extra random latency, seconds"
    )
    g.add_argument(
        "--rate-limit", type=float, default=None, help="requests/s per credential (429 above)"
    )
    g.add_argument("--rate-burst", type=float, default=None, help="token bucket size")
    g.add_argument(
        "--error-rate", type=float, default=d.error_rate, help="fraction answered 500/503"
    )
    g.add_argument(
        "--drop-rate", type=float, default=d.drop_rate, help="fraction of dropped connections"
    )
    g.add_argument(
        "--url-ttl", type=float, default=d.url_ttl, help="presigned URL lifetime, seconds"
    )
    g.add_argument(
        "--part-failure-rate",
        type=float,
        default=d.part_failure_rate,
        help="fraction of presigned part PUTs answered 500",
    )
    g.add_argument(
        "--corrupt-rate",
        type=float,
        default=d.corrupt_rate,
        help="fraction of presigned PUTs stored with one byte flipped (their ETag shows it)",
    )
    g.add_argument(
        "--upload-ttl",
        type=float,
        default=d.upload_ttl,
        help="seconds before an incomplete multipart upload expires (<= 0: never)",
    )
    g.add_argument(
        "--redirect-downloads",
        action="store_true",
        help="answer blob GETs with a 307 to a presigned URL on a second port",
    )
    g = p.add_argument_group(
        "faults after the act",
        "the request is handled and its change committed, then the answer is lost or spoiled",
    )
    g.add_argument(
        "--drop-after-rate",
        type=float,
        default=d.drop_after_rate,
        help="fraction of answers dropped: the connection is closed without a byte",
    )
    g.add_argument(
        "--error-after-rate",
        type=float,
        default=d.error_after_rate,
        help="fraction of answers replaced by a 500/502/503 (some an nginx-like HTML page)",
    )
    g.add_argument(
        "--truncate-rate",
        type=float,
        default=d.truncate_rate,
        help="fraction of answers cut in half, then the connection closed",
    )
    g.add_argument(
        "--slow-commit",
        type=float,
        default=d.slow_commit,
        help="seconds an answer is held back after the commit (a client timeout fires)",
    )
    g.add_argument(
        "--slow-commit-rate",
        type=float,
        default=d.slow_commit_rate,
        help="fraction of answers held back by --slow-commit (default: all)",
    )
    g = p.add_argument_group("timings (seconds)")
    g.add_argument(
        "--studio-start",
        type=float,
        default=t.studio_start,
        help="a studio's start, until it runs and is ready",
    )
    g.add_argument("--studio-stop", type=float, default=t.studio_stop, help="a studio's stop")
    g.add_argument(
        "--studio-switch",
        type=float,
        default=t.studio_switch,
        help="a running studio's switch of machine",
    )
    g.add_argument("--job-pending", type=float, default=t.job_pending, help="a job's time pending")
    g.add_argument(
        "--job-creating", type=float, default=t.job_creating, help="a job's time being created"
    )
    g.add_argument("--job-running", type=float, default=t.job_running, help="a job's time running")
    g.add_argument(
        "--job-finishing",
        type=float,
        default=t.job_finishing,
        help="a job's time from outcome to completed/failed",
    )
    g.add_argument("--job-stop", type=float, default=t.job_stop, help="a job's stop")
    g.add_argument(
        "--command-time",
        type=float,
        default=t.command,
        help="a studio command's run time, plus its sleeps",
    )
    g.add_argument(
        "--job-outcome",
        choices=("complete", "fail"),
        default=t.job_outcome,
        help="how every job ends (default complete)",
    )
    g.add_argument(
        "--log-lines", type=int, default=t.log_lines, help="log lines a running job prints"
    )
    g.add_argument(
        "--page-size",
        type=int,
        default=EmulatorConfig().page_size,
        help="default page size of list operations",
    )
    g.add_argument(
        "--token-ttl",
        type=float,
        default=EmulatorConfig().token_ttl,
        help="longest lifetime of a login JWT, seconds",
    )
    return p


def config_from_args(a: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        faults=Faults(
            latency=a.latency,
            latency_jitter=a.jitter,
            rate_limit=a.rate_limit,
            rate_burst=a.rate_burst,
            error_rate=a.error_rate,
            drop_rate=a.drop_rate,
            url_ttl=a.url_ttl,
            part_failure_rate=a.part_failure_rate,
            corrupt_rate=a.corrupt_rate,
            upload_ttl=a.upload_ttl,
            redirect_downloads=a.redirect_downloads,
            drop_after_rate=a.drop_after_rate,
            error_after_rate=a.error_after_rate,
            truncate_rate=a.truncate_rate,
            slow_commit=a.slow_commit,
            slow_commit_rate=a.slow_commit_rate,
        ),
        timings=Timings(
            studio_start=a.studio_start,
            studio_stop=a.studio_stop,
            studio_switch=a.studio_switch,
            job_pending=a.job_pending,
            job_creating=a.job_creating,
            job_running=a.job_running,
            job_finishing=a.job_finishing,
            job_stop=a.job_stop,
            command=a.command_time,
            job_outcome=a.job_outcome,
            log_lines=a.log_lines,
        ),
        admin=a.admin,
        page_size=a.page_size,
        token_ttl=a.token_ttl,
    )


def _exports(emu: Emulator) -> list[tuple[str, str]]:
    """The variables that point a client (ours or the official SDK) at ``emu``."""
    pairs = [
        ("LIGHTNING_CLOUD_URL", emu.url),
        ("LIGHTNING_USER_ID", emu.user_id),
        ("LIGHTNING_API_KEY", emu.api_key),
        ("LIGHTNING_TEAMSPACE", f"{emu.org_name}/{emu.teamspace_name}"),
    ]
    if emu.ca_file is not None:
        pairs.append(("REQUESTS_CA_BUNDLE", str(emu.ca_file)))
    return pairs


async def _serve(a: argparse.Namespace) -> None:
    emu = Emulator(a.seed, config_from_args(a), host=a.host, port=a.port, tls=a.tls)
    await emu.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-unix
            pass
    try:
        if a.json:
            print(json.dumps(emu.info()), flush=True)
        else:
            # shell syntax, so that the output can be eval'd or sourced
            print(f"# Lightning emulator listening on {emu.url}", flush=True)
            for name, value in _exports(emu):
                print(f"export {name}={shlex.quote(value)}", flush=True)
            print(f"# user {emu.username}, teamspace id {emu.teamspace_id}", flush=True)
            if emu.ca_file is not None:
                print("# REQUESTS_CA_BUNDLE is this run's CA, removed when it stops", flush=True)
            if a.admin:
                print(
                    f"# admin: {emu.url}/_emulator/counters, {emu.url}/_emulator/config",
                    flush=True,
                )
        await stop.wait()
    finally:
        await emu.close()


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Serve until SIGINT/SIGTERM; ``prog`` names the command in ``--help`` and usage errors."""
    a = parser(prog).parse_args(argv)
    try:
        asyncio.run(_serve(a))
    except KeyboardInterrupt:  # pragma: no cover - second ^C during shutdown
        pass
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except TLSUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
