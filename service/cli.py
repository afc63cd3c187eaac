"""The `hiring-news` command: serve, project, keys, import, rebuild."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg

from service import auth, database
from service.logging import configure, get_logger
from service.settings import Settings

log = get_logger("hiring_news.cli")

GRACEFUL_SHUTDOWN_SECONDS = 30


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL when set; otherwise the embedded server under the data dir, for as long as needed."""
    if settings.database_url:
        yield settings.database_url
        return
    with database.embedded_server(settings.data_dir) as dsn:
        yield dsn


@contextlib.asynccontextmanager
async def migrated(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await database.connect(dsn)
    try:
        await database.migrate(conn)
        yield conn
    finally:
        await conn.close()


def serve(settings: Settings, host: str, port: int, *, projector: bool = True) -> int:
    import uvicorn

    from service.app import create_app

    with database_url(settings) as dsn:
        app = create_app(settings, dsn, projector=projector)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            server_header=False,
            # On SIGTERM uvicorn stops accepting connections and lets the requests in
            # flight finish (an append waits for its group's commit; a read for the
            # projector at most HIRING_NEWS_READ_WAIT); past this bound it closes them.
            # Then the lifespan appends what is queued, hands the projector's lock over
            # and closes the pools.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        streams = app.state.streams

        class Server(uvicorn.Server):
            async def shutdown(self, sockets: Any = None) -> None:
                # Live streams never end by themselves, and uvicorn waits for every open
                # response: end them first (their clients reconnect with Last-Event-ID).
                streams.stop()
                await super().shutdown(sockets)

        server = Server(config)
        log.info("listening", url=f"http://{host}:{port}", embedded=settings.database_url is None)
        # uvicorn turns SIGINT and SIGTERM into a graceful shutdown, then re-raises the
        # signal to the handler that was there before it. Ours raises _Stopped, so the
        # `with` above still stops the embedded server instead of the process dying.
        previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run()
        except _Stopped:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    log.info("stopped")
    return 0


def project(settings: Settings) -> int:
    """Run the projector alone (no HTTP) until SIGINT or SIGTERM."""
    from service.projector import Projector

    async def run(dsn: str) -> None:
        async with migrated(dsn):
            pass
        projector = Projector(dsn)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(projector.stop()))
        log.info("projector starting")
        await projector.run()

    with database_url(settings) as dsn:
        asyncio.run(run(dsn))
    log.info("stopped")
    return 0


class _Stopped(Exception):
    """Raised by the signal handler once uvicorn has shut down gracefully."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def keys(settings: Settings, args: argparse.Namespace) -> int:
    async def run(dsn: str) -> int:
        async with migrated(dsn) as conn:
            if args.keys_command == "create":
                try:
                    key = await auth.create(conn, args.name, args.scope)
                except asyncpg.UniqueViolationError:
                    print(f"a key named {args.name!r} exists already; pick another name", file=sys.stderr)
                    return 1
                # The key alone on stdout, so `KEY=$(hiring-news keys create ...)` works.
                print(key)
                print(
                    f"created key {args.name!r} ({args.scope}); it is shown only this once", file=sys.stderr
                )
            elif args.keys_command == "list":
                for row in await auth.listing(conn):
                    state = f"revoked {row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else "active"
                    print(f"{row['name']}\t{row['scope']}\t{row['created_at']:%Y-%m-%d %H:%M}\t{state}")
            elif args.keys_command == "revoke":
                if not await auth.revoke(conn, args.name):
                    print(f"no active key named {args.name!r} (see `hiring-news keys list`)", file=sys.stderr)
                    return 1
                print(f"revoked key {args.name!r}", file=sys.stderr)
        return 0

    with database_url(settings) as dsn:
        return asyncio.run(run(dsn))


def import_file(settings: Settings, args: argparse.Namespace) -> int:
    from importlib import resources

    from service import importing
    from service.projector import settle

    if args.example:
        source = resources.files("service.examples").joinpath(f"{args.example}.jsonl")
        label = f"example {args.example}"
    else:
        source = Path(args.file)
        label = str(source)
        if not source.is_file():
            print(f"hiring-news: no such file: {source}", file=sys.stderr)
            return 1
    data = source.read_bytes()
    lines = data.splitlines()

    async def run(dsn: str) -> importing.Report:
        async with migrated(dsn) as conn:
            with progress_bar() as bar:
                task = bar.add_task(f"importing {label}", total=len(lines))
                report = await importing.import_lines(conn, lines, progress=lambda n: bar.advance(task, n))
                if not args.no_wait and report.last_position:
                    # Answers reflect the import once the projection has reached its last
                    # event: project here if no projector runs, else wait for it.
                    start = int(await conn.fetchval("SELECT position FROM projection_checkpoint"))
                    projecting = bar.add_task("projecting", total=max(report.last_position - start, 1))
                    await settle(
                        dsn,
                        report.last_position,
                        progress=lambda p: bar.update(projecting, completed=max(p - start, 0)),
                    )
                return report

    with database_url(settings) as dsn:
        try:
            report = asyncio.run(run(dsn))
        except importing.BadLine as error:
            print(
                f"hiring-news: {label}, line {error.line}: {error.reason}\n"
                "nothing of that line's batch was stored; fix the line and run the import again "
                "(lines already stored are skipped)",
                file=sys.stderr,
            )
            return 1
    print(f"{report.stored} events stored, {report.replayed} already in the log", file=sys.stderr)
    return 0


def rebuild(settings: Settings) -> int:
    from service.rebuild import rebuild as run_rebuild

    with database_url(settings) as dsn, progress_bar() as bar:
        task = bar.add_task("rebuilding projections", total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        position = asyncio.run(run_rebuild(dsn, progress=show))
    print(f"projections rebuilt from the log up to position {position}", file=sys.stderr)
    return 0


def progress_bar() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        # The bar goes to stderr so stdout stays clean for what a command prints.
        console=Console(stderr=True),
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="hiring-news", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser(
        "serve", help="run the HTTP API (embedded PostgreSQL unless DATABASE_URL)"
    )
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument(
        "--no-projector",
        action="store_true",
        help="an API replica only: do not take part in the projector's election (run `project` elsewhere)",
    )

    commands.add_parser(
        "project",
        help="run the projector alone (one is active across all processes; others stand by)",
    )

    keys_cmd = commands.add_parser("keys", help="create, list and revoke API keys")
    keys_commands = keys_cmd.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("name")
    create.add_argument("--scope", choices=auth.SCOPES, default="write")
    keys_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = keys_commands.add_parser("revoke", help="revoke a key, at once, on every process")
    revoke.add_argument("name")

    import_cmd = commands.add_parser("import", help="append the events of a JSON-lines file, in batches")
    what = import_cmd.add_mutually_exclusive_group(required=True)
    what.add_argument("file", nargs="?", help="one event object per line")
    what.add_argument("--example", choices=["article"], help="a data set shipped with the package")
    import_cmd.add_argument(
        "--no-wait",
        action="store_true",
        help="exit once the events are stored, without waiting for the projection to reflect them",
    )

    commands.add_parser("rebuild", help="rebuild the projections from the log (shadow tables, then swap)")
    return root


def main(argv: list[str] | None = None) -> int:
    args: Any = parser().parse_args(argv)
    settings = Settings.from_env()
    configure(settings.log_level)
    try:
        if args.command == "serve":
            return serve(settings, args.host, args.port, projector=not args.no_projector)
        if args.command == "project":
            return project(settings)
        if args.command == "keys":
            return keys(settings, args)
        if args.command == "import":
            return import_file(settings, args)
        if args.command == "rebuild":
            return rebuild(settings)
    except (OSError, asyncpg.PostgresError) as error:
        print(
            f"hiring-news: cannot reach the database: {error}\n"
            "check DATABASE_URL, or unset it to use the embedded PostgreSQL",
            file=sys.stderr,
        )
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
