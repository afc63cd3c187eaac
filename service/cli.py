"""The `hiring-news` command: serve, project, keys, import, push, rebuild, and the reading
commands (roster, timeline, tree, flows, events)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
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

    # The port first: taken here (uvicorn serves on this very socket), so one already in use
    # is said in one line before anything starts.
    try:
        listener = _listen(host, port)
    except OSError as error:
        print(
            f"hiring-news: cannot listen on {host}:{port}: {error.strerror or error} "
            "(another serve? pick another --port)",
            file=sys.stderr,
        )
        return 2
    with listener, database_url(settings) as dsn:
        # The database next, with the message `keys` gives (main): the app's lifespan would
        # fail the same way, inside uvicorn, as a 60-line traceback.
        asyncio.run(_reachable(dsn))
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
            server.run(sockets=[listener])
        except _Stopped:
            pass
        except SystemExit as exit_:
            # uvicorn's own way out when the app cannot start (its log says why).
            print("hiring-news: serve could not start (see the log above)", file=sys.stderr)
            return 2 if exit_.code else 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    log.info("stopped")
    return 0


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


async def _reachable(dsn: str) -> None:
    async with migrated(dsn):
        pass


def project(settings: Settings, heartbeat: Path | None = None) -> int:
    """Run the projector alone (no HTTP) until SIGINT or SIGTERM; with `heartbeat`, keep
    that file fresh for an orchestrator's probe (service.heartbeat)."""
    from service.heartbeat import beat
    from service.projector import Projector

    async def run(dsn: str) -> None:
        async with migrated(dsn):
            pass
        projector = Projector(dsn)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(projector.stop()))
        log.info("projector starting", heartbeat=None if heartbeat is None else str(heartbeat))
        beating = None if heartbeat is None else asyncio.create_task(beat(projector, heartbeat))
        try:
            await projector.run()
        finally:
            if beating is not None:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating

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
                print("NAME\tSCOPE\tCREATED\tSTATE")
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


# ---- push: import over HTTP ------------------------------------------------------------------


def push(settings: Settings, args: argparse.Namespace) -> int:
    """`import`, over HTTP through service.client: the same keys, so the same safety."""
    from service import importing
    from service.client import Client, ClientError, ProblemError

    source = Path(args.file)
    if not source.is_file():
        print(f"hiring-news: no such file: {source}", file=sys.stderr)
        return 1
    lines = source.read_bytes().splitlines()
    stored = replayed = 0
    from service.client import Retry

    retry = Retry(total=args.retry_for)
    with progress_bar() as bar, Client(args.url, args.key or settings.client_key, retry=retry) as news:
        task = bar.add_task(f"pushing {source}", total=len(lines))
        chunk: list[tuple[int, Any]] = []

        def send() -> None:
            nonlocal stored, replayed
            try:
                answers = news.post([event for _, event in chunk])
            except ProblemError as error:
                raise importing.BadLine(_line_of(error, chunk), str(error)) from None
            stored += sum(not a.replayed for a in answers)
            replayed += sum(a.replayed for a in answers)
            bar.advance(task, len(chunk))
            chunk.clear()

        try:
            for number, line in enumerate(lines, start=1):
                event = importing.decode_line(number, line)
                if event is None:
                    bar.advance(task)
                    continue
                chunk.append((number, event))
                if len(chunk) >= importing.BATCH:
                    send()
            if chunk:
                send()
        except importing.BadLine as error:
            print(
                f"hiring-news: {source}, line {error.line}: {error.reason}\n"
                "nothing of that line's batch was stored; fix the line and push again "
                "(lines already stored are skipped)",
                file=sys.stderr,
            )
            return 1
        except ClientError as error:
            print(f"hiring-news: {args.url}: {error}", file=sys.stderr)
            return 2
    print(f"{stored} events stored, {replayed} already in the log", file=sys.stderr)
    return 0


def _line_of(error: Any, chunk: list[tuple[int, Any]]) -> int:
    """The file's line number of the event a batch's problem names (`$[i]...`)."""
    for field_error in error.errors:
        if field_error.field.startswith("$["):
            index = int(field_error.field[2 : field_error.field.index("]")])
            if index < len(chunk):
                return int(chunk[index][0])
    return int(chunk[0][0])


# ---- reading -------------------------------------------------------------------------------


def read(settings: Settings, args: argparse.Namespace) -> int:
    """roster, timeline, tree, flows, events: one GET, of --url or of the app in process."""
    from service import reading
    from service.client import ClientError, ProblemError

    question = _question(args)
    try:
        if args.url:
            body = asyncio.run(
                reading.ask_url(args.url, args.key or settings.client_key, question, retry_for=args.retry_for)
            )
        else:
            with database_url(settings) as dsn:
                body = asyncio.run(
                    reading.ask_local(dsn, question, read_wait_seconds=settings.read_wait_seconds)
                )
    except ProblemError as error:
        print(f"hiring-news: {error}", file=sys.stderr)
        return 1
    except ClientError as error:
        print(f"hiring-news: {args.url}: {error}", file=sys.stderr)
        return 2
    reading.show(question, body, as_json=args.json, console=reading.console())
    return 0


def _question(args: argparse.Namespace) -> Any:
    from service import reading

    match args.command:
        case "roster":
            return reading.roster(
                args.org_id,
                on=args.on,
                known_at=args.known_at,
                as_of=args.as_of,
                suborgs=args.suborgs,
                min_status=args.min_status,
            )
        case "timeline":
            return reading.timeline(args.person_id, known_at=args.known_at, as_of=args.as_of)
        case "tree":
            return reading.tree(args.org_id, on=args.on, known_at=args.known_at, as_of=args.as_of)
        case "flows":
            return reading.flows(
                args.source,
                args.target,
                since=args.since,
                until=args.until,
                known_at=args.known_at,
                as_of=args.as_of,
            )
    return reading.events(after=args.after, limit=args.limit, types=args.type)


# ---- the command line --------------------------------------------------------------------------


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option (not a flag's False), and epilogs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is False or action.default is None:
            return action.help
        return super()._get_help_string(action)


def _environment() -> str:
    from service.settings import ENVIRONMENT

    width = max(len(name) for name, _, _ in ENVIRONMENT)
    lines = [f"  {name:<{width}}  {meaning} (default: {default})" for name, default, meaning in ENVIRONMENT]
    return "environment variables:\n" + "\n".join(lines)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("hiring-news")
    except metadata.PackageNotFoundError:
        return "unknown"


def _where(command: argparse.ArgumentParser) -> None:
    """--url and --key, and --json: the reading commands' shared options."""
    command.add_argument(
        "--url",
        help="ask a running service (http://host:port) instead of the database (DATABASE_URL or embedded)",
    )
    command.add_argument("--key", help="the API key to send with --url (default: HIRING_NEWS_KEY)")
    command.add_argument("--json", action="store_true", help="print the API's JSON, exactly, for scripts")
    _retry_for(command, 30)


def _retry_for(command: argparse.ArgumentParser, seconds: float) -> None:
    command.add_argument(
        "--retry-for",
        metavar="S",
        type=float,
        default=seconds,
        help=f"with --url, retry a failing or unreachable service for up to S seconds (default: {seconds:g})",
    )


def _as_known(command: argparse.ArgumentParser) -> None:
    when = command.add_mutually_exclusive_group()
    when.add_argument("--known-at", metavar="T", help="as the log knew it at this RFC 3339 time")
    when.add_argument("--as-of", metavar="P", type=int, help="as the log stood at this position")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="hiring-news",
        description="Who works where in the AI industry, from the news: an event log and its readers.",
        epilog="Run `hiring-news COMMAND --help` for a command's options.",
    )
    root.add_argument("--version", action="version", version=f"hiring-news {_version()}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND")

    serve_cmd = commands.add_parser(
        "serve",
        help="run the HTTP API (embedded PostgreSQL unless DATABASE_URL)",
        description="Run the HTTP API: migrate, take part in the projector's election, serve.",
        formatter_class=_Help,
        epilog=_environment(),
    )
    serve_cmd.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve_cmd.add_argument("--port", type=int, default=8000, help="the port to listen on")
    serve_cmd.add_argument(
        "--no-projector",
        action="store_true",
        help="an API replica only: do not take part in the projector's election (run `project` elsewhere)",
    )

    project_cmd = commands.add_parser(
        "project",
        help="run the projector alone (one is active across all processes; others stand by)",
        formatter_class=_Help,
        epilog=_environment(),
    )
    project_cmd.add_argument(
        "--heartbeat",
        type=Path,
        metavar="FILE",
        help="rewrite FILE every 5 s while the projector's loop turns, for a container's health probe "
        "(it serves no HTTP): stale past 30 s means stuck or gone",
    )

    keys_cmd = commands.add_parser("keys", help="create, list and revoke API keys")
    keys_commands = keys_cmd.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    create = keys_commands.add_parser("create", help="create a key and print it once", formatter_class=_Help)
    create.add_argument("name", help="a name for the key (who uses it), unique")
    create.add_argument(
        "--scope",
        choices=auth.SCOPES,
        default="write",
        help="write: post events; admin: also claim.* events",
    )
    keys_commands.add_parser("list", help="list keys (never the keys themselves), with a header row")
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

    push_cmd = commands.add_parser(
        "push",
        help="import over HTTP: post a JSON-lines file to a running service, resumable",
        description="Post the events of a JSON-lines file through service.client: keyed by their "
        "content as `import` keys them (a second run stores nothing twice), batched, retried.",
    )
    push_cmd.add_argument("file", help="one event object per line")
    push_cmd.add_argument("--url", required=True, help="the service (http://host:port)")
    push_cmd.add_argument("--key", help="a write key (default: HIRING_NEWS_KEY)")
    _retry_for(push_cmd, 120)

    commands.add_parser("rebuild", help="rebuild the projections from the log (shadow tables, then swap)")

    roster_cmd = commands.add_parser(
        "roster", help="who is in an org on a day, and who may be", formatter_class=_Help
    )
    roster_cmd.add_argument("org_id")
    roster_cmd.add_argument("--on", metavar="DATE", help="the day, YYYY-MM-DD (default: today)")
    _as_known(roster_cmd)
    roster_cmd.add_argument("--suborgs", action="store_true", help="count the members of its sub-orgs too")
    roster_cmd.add_argument(
        "--min-status",
        choices=["rumor", "reported", "confirmed"],
        help="the least sure claims counted (default: reported)",
    )
    _where(roster_cmd)

    timeline_cmd = commands.add_parser("timeline", help="a person's career, stint by stint")
    timeline_cmd.add_argument("person_id")
    _as_known(timeline_cmd)
    _where(timeline_cmd)

    tree_cmd = commands.add_parser("tree", help="an org and its sub-orgs on a day")
    tree_cmd.add_argument("org_id")
    tree_cmd.add_argument("--on", metavar="DATE", help="the day, YYYY-MM-DD (default: today)")
    _as_known(tree_cmd)
    _where(tree_cmd)

    flows_cmd = commands.add_parser("flows", help="moves from one org (and its sub-orgs) to another")
    flows_cmd.add_argument("source", metavar="FROM")
    flows_cmd.add_argument("target", metavar="TO")
    flows_cmd.add_argument("--since", metavar="DATE", help="moves on or after this day")
    flows_cmd.add_argument("--until", metavar="DATE", help="moves on or before this day")
    _as_known(flows_cmd)
    _where(flows_cmd)

    events_cmd = commands.add_parser(
        "events", help="the log, a page at a time, in position order", formatter_class=_Help
    )
    events_cmd.add_argument("--after", metavar="N", type=int, default=0, help="events after this position")
    events_cmd.add_argument("--limit", type=int, default=100, help="at most this many (1 to 1000)")
    events_cmd.add_argument("--type", help="comma-separated event types")
    _where(events_cmd)
    return root


READING = frozenset({"roster", "timeline", "tree", "flows", "events"})


def main(argv: list[str] | None = None) -> int:
    root = parser()
    args: Any = root.parse_args(argv)
    if args.command is None:
        root.print_help()
        return 0
    settings = Settings.from_env()
    # The lifecycle of what a command starts (the embedded server, migrations, the app in
    # process) is `serve`'s and `project`'s business; the other commands print for people,
    # so their log says only what went wrong, unless HIRING_NEWS_LOG_LEVEL asks for more.
    quiet = args.command not in {"serve", "project"} and not os.environ.get("HIRING_NEWS_LOG_LEVEL")
    configure("warning" if quiet else settings.log_level)
    try:
        if args.command == "serve":
            return serve(settings, args.host, args.port, projector=not args.no_projector)
        if args.command == "project":
            return project(settings, args.heartbeat)
        if args.command == "keys":
            return keys(settings, args)
        if args.command == "import":
            return import_file(settings, args)
        if args.command == "push":
            return push(settings, args)
        if args.command == "rebuild":
            return rebuild(settings)
        if args.command in READING:
            return read(settings, args)
    except (OSError, asyncpg.PostgresError) as error:
        print(
            f"hiring-news: cannot reach the database ({error}); "
            "check DATABASE_URL, or unset it to use the embedded PostgreSQL",
            file=sys.stderr,
        )
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
